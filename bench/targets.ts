import type { IngestResult } from './ingest.js'
import { describeDefects } from './integrity.js'
import type { LossResult } from './loss-scenarios.js'
import type { CellResult } from './run-cell.js'
import { spread, type Spread } from './stats.js'
import type { Strategy } from './strategies.js'

/** The producer counts the targets are stated for (issue 11); a cell not run is skipped. */
export const TARGET_PRODUCERS = [4, 8, 16] as const
const SMALL = 100
const LARGE = 1024

export type TargetStatus = 'met' | 'missed' | 'n/a'

/** One target as measured. */
export interface TargetResult {
  target: string
  /** What was measured, with the figures it was computed from. */
  measured: string
  /** The measured ratio (or difference, for CPU), when there is one. */
  ratio: number | null
  status: TargetStatus
}

/** `strategy` records/s >= `factor` x `versus`'s, same producers and record size. */
interface SpeedTarget { kind: 'speed', strategy: Strategy, versus: Strategy, factor: number, size: number }
/** funnel's CPU per record (producers + writer) <= noop's + `plusUs`. */
interface CpuTarget { kind: 'cpu', plusUs: number, size: number }
/** funnel's writer CPU per record <= `maxUs`. */
interface WriterTarget { kind: 'writer', maxUs: number, size: number }
/** funnel's log.info percentile <= `factor` x null's. */
interface LatencyTarget { kind: 'latency', percentile: 'p99Us' | 'p999Us', factor: number, size: number }
/** funnel-transport's CPU per record, producers + writer, <= pino-transport's (issue 19). */
interface TransportCpuTarget { kind: 'transport-cpu', size: number }

type CellTarget = SpeedTarget | CpuTarget | WriterTarget | LatencyTarget | TransportCpuTarget

/** Issue 11's targets that compare cells, and issue 19's for the transport's CPU. */
const CELL_TARGETS: readonly CellTarget[] = [
  { kind: 'speed', strategy: 'funnel', versus: 'null', factor: 1.3, size: SMALL },
  { kind: 'speed', strategy: 'funnel', versus: 'null', factor: 1.0, size: LARGE },
  { kind: 'speed', strategy: 'funnel', versus: 'flock', factor: 3, size: SMALL },
  { kind: 'speed', strategy: 'funnel', versus: 'append', factor: 1.3, size: LARGE },
  { kind: 'cpu', plusUs: 0.6, size: SMALL },
  { kind: 'cpu', plusUs: 1.5, size: LARGE },
  { kind: 'writer', maxUs: 0.25, size: SMALL },
  { kind: 'latency', percentile: 'p99Us', factor: 1, size: SMALL },
  { kind: 'latency', percentile: 'p99Us', factor: 1, size: LARGE },
  { kind: 'latency', percentile: 'p999Us', factor: 2, size: SMALL },
  { kind: 'latency', percentile: 'p999Us', factor: 2, size: LARGE },
  { kind: 'speed', strategy: 'funnel-transport', versus: 'pino-transport', factor: 1, size: SMALL },
  { kind: 'speed', strategy: 'funnel-transport', versus: 'pino-transport', factor: 1, size: LARGE },
  { kind: 'transport-cpu', size: SMALL },
  { kind: 'transport-cpu', size: LARGE }
]
const ZERO_DEFECT_STRATEGIES: Strategy[] = ['funnel', 'funnel-nofsync', 'funnel-checkpoints', 'funnel-transport']
const INGEST_FACTOR = 0.75

/**
 * Checks issue 11's targets against a run's results, one row per target and cell (4, 8 and 16
 * producers, where both cells were run): funnel against null, flock and append; funnel's CPU
 * per record against noop's; the writer's CPU per 100-byte record; funnel's p99 and p99.9
 * against null's; funnel-transport against pino-transport (records/s, and CPU per record:
 * issue 19); zero defects for the logfunnel
 * strategies; writer-ingest against its ceiling; no loss in the exit and restart scenarios.
 * A target none of whose cells were run is one `n/a` row.
 */
export function evaluateTargets (results: CellResult[], ingest: IngestResult | null, loss: LossResult[] = []): TargetResult[] {
  const targets: TargetResult[] = []
  const find = (strategy: Strategy, producers: number, size: number): CellResult | undefined =>
    results.find((r) => r.strategy === strategy && r.producers === producers && r.recordBytes === size)
  for (const t of CELL_TARGETS) {
    const rows: TargetResult[] = []
    for (const producers of TARGET_PRODUCERS) {
      const at = `(${producers} x ${t.size} B)`
      const funnel = find(t.kind === 'speed' ? t.strategy : t.kind === 'transport-cpu' ? 'funnel-transport' : 'funnel', producers, t.size)
      if (funnel === undefined) continue
      if (t.kind === 'speed') {
        const other = find(t.versus, producers, t.size)
        if (other !== undefined) rows.push(speed(`${t.strategy} >= ${t.factor}x ${t.versus} records/s ${at}`, t, funnel, other))
      } else if (t.kind === 'cpu') {
        const noop = find('noop', producers, t.size)
        if (noop !== undefined) rows.push(cpu(`funnel CPU/record (producers + writer) <= noop + ${t.plusUs} us ${at}`, t, funnel, noop))
      } else if (t.kind === 'transport-cpu') {
        const other = find('pino-transport', producers, t.size)
        if (other !== undefined) rows.push(transportCpu(`funnel-transport CPU/record (producers + writer) <= pino-transport's ${at}`, funnel, other))
      } else if (t.kind === 'writer') {
        const writer = funnel.writerCpuUsPerRecord.median
        rows.push({ target: `funnel writer CPU <= ${t.maxUs} us/record ${at}`, measured: `${writer.toFixed(2)} us`, ratio: writer, status: writer <= t.maxUs ? 'met' : 'missed' })
      } else {
        const other = find('null', producers, t.size)
        if (other !== undefined) rows.push(latency(t, at, funnel, other))
      }
    }
    targets.push(...(rows.length > 0 ? rows : [{ target: describe(t), measured: 'not run', ratio: null, status: 'n/a' as const }]))
  }
  for (const strategy of ZERO_DEFECT_STRATEGIES) {
    const cells = results.filter((r) => r.strategy === strategy)
    if (cells.length === 0) continue
    const bad = cells.filter((r) => r.defective)
    const measured = bad.length === 0
      ? `0 defects in ${cells.length} cells`
      : bad.map((r) => `${r.producers}x${r.recordBytes} B: ${describeDefects(r.defects)}`).join('; ')
    targets.push({ target: `zero defects for ${strategy} (every cell, every run)`, measured, ratio: null, status: bad.length === 0 ? 'met' : 'missed' })
  }
  targets.push(ingestTarget(ingest))
  const measuredLoss = loss.filter((r) => r.status === 'measured' && (r.strategy === 'funnel' || r.strategy === 'funnel-transport'))
  if (measuredLoss.length > 0) {
    const bad = measuredLoss.filter((r) => r.lost !== 0 || r.duplicated !== 0 || r.torn !== 0 || r.reordered !== 0)
    const measured = bad.length === 0
      ? `0 lost / 0 duplicated in ${measuredLoss.map((r) => `${r.scenario} ${r.strategy}`).join(', ')}`
      : bad.map((r) => `${r.scenario} ${r.strategy}: ${String(r.lost)} lost / ${String(r.duplicated)} duplicated`).join('; ')
    targets.push({ target: 'loss scenarios (exit, restart): 0 lost / 0 duplicated for funnel and funnel-transport', measured, ratio: null, status: bad.length === 0 ? 'met' : 'missed' })
  }
  return targets
}

function describe (t: CellTarget): string {
  switch (t.kind) {
    case 'speed': return `${t.strategy} >= ${t.factor}x ${t.versus} records/s (${t.size} B)`
    case 'cpu': return `funnel CPU/record <= noop + ${t.plusUs} us (${t.size} B)`
    case 'writer': return `funnel writer CPU <= ${t.maxUs} us/record (${t.size} B)`
    case 'transport-cpu': return `funnel-transport CPU/record <= pino-transport's (${t.size} B)`
    case 'latency': return `funnel log.info ${label(t.percentile)} <= ${t.factor === 1 ? '' : `${t.factor}x `}null's (${t.size} B)`
  }
}

function label (percentile: 'p99Us' | 'p999Us'): string {
  return percentile === 'p99Us' ? 'p99' : 'p99.9'
}

function speed (target: string, t: SpeedTarget, mine: CellResult, other: CellResult): TargetResult {
  if (mine.recordsPerSec === null) {
    return { target, measured: `${t.strategy} DEFECTIVE: ${describeDefects(mine.defects)}`, ratio: null, status: 'missed' }
  }
  // A baseline that tears lines has no speed in the table; the target still compares against
  // what it measured, and says so (pino-transport tears a line every ~4 MiB per process).
  const theirs = other.recordsPerSec?.median ?? spread(other.samples.map((s) => s.recordsPerSec)).median
  const note = other.recordsPerSec === null ? `; ${t.versus} DEFECTIVE (${describeDefects(other.defects)}), its speed as measured` : ''
  const ratio = mine.recordsPerSec.median / theirs
  return {
    target,
    measured: `${fmt(ratio)}x (${kilo(mine.recordsPerSec.median)} vs ${kilo(theirs)} records/s)${note}${load(mine, other)}`,
    ratio,
    status: ratio >= t.factor ? 'met' : 'missed'
  }
}

function cpu (target: string, t: CpuTarget, funnel: CellResult, noop: CellResult): TargetResult {
  const above = funnel.cpuSecPerMillion.median - noop.cpuSecPerMillion.median
  return {
    target,
    measured: `noop + ${above.toFixed(2)} us (${funnel.cpuSecPerMillion.median.toFixed(2)} = ${funnel.producerCpuUsPerRecord.median.toFixed(2)} producers + ` +
      `${funnel.writerCpuUsPerRecord.median.toFixed(2)} writer, vs ${noop.cpuSecPerMillion.median.toFixed(2)} us)`,
    ratio: above,
    status: above <= t.plusUs ? 'met' : 'missed'
  }
}

/** The same job's cost: the transport's CPU and its writer's, against pino-transport's (no writer; a defective one as measured). */
function transportCpu (target: string, mine: CellResult, other: CellResult): TargetResult {
  const ratio = mine.cpuSecPerMillion.median / other.cpuSecPerMillion.median
  return {
    target,
    measured: `${fmt(ratio)}x (${mine.cpuSecPerMillion.median.toFixed(2)} = ${mine.producerCpuUsPerRecord.median.toFixed(2)} producers + ` +
      `${mine.writerCpuUsPerRecord.median.toFixed(2)} writer, vs ${other.cpuSecPerMillion.median.toFixed(2)} us)`,
    ratio,
    status: ratio <= 1 ? 'met' : 'missed'
  }
}

function latency (t: LatencyTarget, at: string, funnel: CellResult, other: CellResult): TargetResult {
  const mine: Spread = funnel[t.percentile]
  const theirs: Spread = other[t.percentile]
  const ratio = mine.median / theirs.median
  return {
    target: `funnel log.info ${label(t.percentile)} <= ${t.factor === 1 ? '' : `${t.factor}x `}null's ${at}`,
    measured: `${fmt(ratio)}x (${mine.median.toFixed(1)} vs ${theirs.median.toFixed(1)} us)`,
    ratio,
    status: ratio <= t.factor ? 'met' : 'missed'
  }
}

function ingestTarget (ingest: IngestResult | null): TargetResult {
  const target = `writer-ingest >= ${INGEST_FACTOR}x ceiling MB/s`
  if (ingest === null) return { target, measured: 'not run', ratio: null, status: 'n/a' }
  if (ingest.writerMbPerSec === null || ingest.ratio === null) {
    return { target, measured: `writer DEFECTIVE: ${describeDefects(ingest.defects)}`, ratio: null, status: 'missed' }
  }
  const ratio = ingest.ratio.median
  return {
    target,
    measured: `${fmt(ratio)}x (${ingest.writerMbPerSec.median.toFixed(0)} vs ${ingest.ceilingMbPerSec.median.toFixed(0)} MB/s)`,
    ratio,
    status: ratio >= INGEST_FACTOR ? 'met' : 'missed'
  }
}

/** Notes the other load when the two cells ran under very different noise. */
function load (a: CellResult, b: CellResult): string {
  const most = Math.max(a.otherCores.median, b.otherCores.median)
  return most >= 0.5 ? `; other load ${a.otherCores.median.toFixed(2)} / ${b.otherCores.median.toFixed(2)} cores` : ''
}

function fmt (ratio: number): string {
  return ratio.toFixed(2)
}

function kilo (n: number): string {
  return `${(n / 1000).toFixed(0)}k`
}
