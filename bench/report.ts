import type { IngestResult } from './ingest.js'
import { describeDefects } from './integrity.js'
import { formatLossTables } from './loss-report.js'
import type { LossResult } from './loss-scenarios.js'
import { formatMachine, type Machine } from './machine.js'
import type { CellResult } from './run-cell.js'
import type { Spread } from './stats.js'
import { FSYNC_LABELS } from './strategies.js'
import type { TargetResult } from './targets.js'

/** Everything a bench run produced: the JSON file's content. */
export interface BenchReport {
  machine: Machine
  /** `quick` or `custom`. */
  profile: string
  startedAt: string
  wallSec: number
  /** The effective options (after the profile and the flags). */
  options: Record<string, unknown>
  results: CellResult[]
  ingest: IngestResult | null
  targets: TargetResult[]
  /** The exit and restart scenarios: one row per scenario x strategy x producers x size. */
  lossScenarios: LossResult[]
}

/**
 * The markdown a bench run prints: a heading with the machine, the table of cells, the
 * writer-ingest table and the targets (when the throughput scenario ran), and the loss
 * scenarios' table. A defective cell shows its defects instead of a speed.
 */
export function formatMarkdown (report: BenchReport): string {
  const out: string[] = []
  out.push(`### logfunnel bench: ${report.profile} profile, ${report.startedAt}, ${report.wallSec.toFixed(0)} s wall`)
  out.push('')
  out.push(`Machine: ${formatMachine(report.machine)}`)
  out.push('')
  if (report.results.length > 0) out.push(cellTable(report.results), '')
  if (report.ingest !== null) out.push(ingestTable(report.ingest), '')
  if (report.results.length > 0 || report.ingest !== null) out.push(targetTable(report.targets), '')
  if (report.lossScenarios.length > 0) out.push(formatLossTables(report.lossScenarios), '')
  return out.join('\n')
}

function cellTable (results: CellResult[]): string {
  const first = results[0] as CellResult
  const load = first.durationMs === null ? `${first.recordsPerProducer} records` : `for ${(first.durationMs / 1000).toFixed(1)} s`
  const warmups = new Set(results.map((r) => r.warmup))
  const warmup = warmups.size === 1 ? `${first.warmup} warm-up run${first.warmup === 1 ? '' : 's'} per cell` : "a warm-up run before each strategy's first cell"
  const rows = [
    `Throughput from "go" until the last record is in the file (funnel: receipted; rsyslog: in rsyslogd's file); each producer logs ${load} per run; ` +
      `median (min-max) of ${first.repeats} runs after ${warmup}. fsync: the writer's policy (batch = its default), ` +
      'never for the strategies that write with no fsync. x noop: records/s against noop (pino dropping its lines) in the same cell. ' +
      'CPU: microseconds per record of the producer processes (all threads) + the writer (rsyslog: rsyslogd).',
    '',
    '| strategy | fsync | producers | payload B | records/producer | records/s | x noop | MB/s | log.info us p50 / p99 / p99.9 / max | CPU us/record producers + writer = total | other load (cores) | peak RSS MB producer / writer | defects |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|'
  ]
  for (const r of results) {
    const speed = r.recordsPerSec === null ? `**DEFECTIVE: ${describeDefects(r.defects)}**` : range(r.recordsPerSec, kilo)
    const noop = results.find((n) => n.strategy === 'noop' && n.producers === r.producers && n.recordBytes === r.recordBytes)
    const ratio = r.recordsPerSec === null || noop?.recordsPerSec == null ? '-' : (r.recordsPerSec.median / noop.recordsPerSec.median).toFixed(2)
    const mb = r.mbPerSec === null ? '-' : r.mbPerSec.median.toFixed(1)
    const latency = [r.p50Us, r.p99Us, r.p999Us, r.maxUs].map((s) => us(s.median)).join(' / ')
    const writerCpu = r.writerRssMb === null ? '-' : r.writerCpuUsPerRecord.median.toFixed(2)
    const cpu = `${r.producerCpuUsPerRecord.median.toFixed(2)} + ${writerCpu} = ${r.cpuSecPerMillion.median.toFixed(2)}`
    const rss = `${r.producerRssMb.median.toFixed(0)} / ${r.writerRssMb === null ? '-' : r.writerRssMb.median.toFixed(0)}`
    rows.push(`| ${r.strategy} | ${FSYNC_LABELS[r.strategy]} | ${r.producers} | ${r.recordBytes} | ${r.recordsPerProducer} | ${speed} | ${ratio} | ${mb} | ` +
      `${latency} | ${cpu} | ${r.otherCores.median.toFixed(2)} | ${rss} | ${describeDefects(r.defects)} |`)
  }
  return rows.join('\n')
}

function ingestTable (ingest: IngestResult): string {
  const writer = ingest.writerMbPerSec === null ? `**DEFECTIVE: ${describeDefects(ingest.defects)}**` : range(ingest.writerMbPerSec, (n) => n.toFixed(0))
  return [
    `writer-ingest: ${ingest.pushers} processes push ${(ingest.totalBytes / 2 ** 20).toFixed(0)} MiB as plain ${ingest.frameBytes / 1024} KiB frames; ` +
      'ceiling: the same bytes with fs.writeSync in 64 KiB chunks (both end with fsync).',
    '',
    '| scenario | pushers | MiB | writer MB/s | ceiling MB/s | writer / ceiling | writer CPU s per GB | writer peak RSS MB | defects |',
    '|---|--:|--:|--:|--:|--:|--:|--:|---|',
    `| writer-ingest | ${ingest.pushers} | ${(ingest.totalBytes / 2 ** 20).toFixed(0)} | ${writer} | ${range(ingest.ceilingMbPerSec, (n) => n.toFixed(0))} | ` +
      `${ingest.ratio === null ? '-' : ingest.ratio.median.toFixed(2)} | ${ingest.writerCpuSecPerGB.median.toFixed(2)} | ` +
      `${ingest.writerRssMb.median.toFixed(0)} | ${describeDefects(ingest.defects)} |`
  ].join('\n')
}

function targetTable (targets: TargetResult[]): string {
  const rows = ['Targets (this machine):', '', '| target | measured | result |', '|---|---|---|']
  for (const t of targets) rows.push(`| ${t.target} | ${t.measured} | ${t.status} |`)
  return rows.join('\n')
}

function range (s: Spread, format: (n: number) => string): string {
  return `${format(s.median)} (${format(s.min)}-${format(s.max)})`
}

function kilo (n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(1)}k`
}

function us (n: number): string {
  return n < 10 ? n.toFixed(2) : n < 1000 ? n.toFixed(1) : n.toFixed(0)
}
