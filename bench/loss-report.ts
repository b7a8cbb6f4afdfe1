import type { LossResult } from './loss-scenarios.js'
import type { Spread } from './stats.js'
import { STRATEGIES } from './strategies.js'

/**
 * The markdown of the loss scenarios: per producer count and record size, one row per
 * strategy with the exit scenario's and the restart scenario's lost / duplicated records
 * (from verify of the file), the exit scenario's records/s and timings, and the restart's
 * writer downtime and tail. A scenario that was not run has no column; a strategy that does
 * not take part says why (`n/a (no writer)`, `n/a (no file)`).
 *
 * @example
 * ```ts
 * process.stdout.write(formatLossTables(report.lossScenarios))
 * ```
 */
export function formatLossTables (results: LossResult[]): string {
  const out: string[] = []
  const groups = new Map<string, LossResult[]>()
  for (const r of results) {
    const key = `${r.producers}/${r.recordBytes}`
    groups.set(key, [...(groups.get(key) ?? []), r])
  }
  for (const rows of groups.values()) out.push(groupTable(rows))
  return out.join('\n\n')
}

function groupTable (rows: LossResult[]): string {
  const first = rows[0] as LossResult
  const exit = rows.filter((r) => r.scenario === 'exit')
  const restart = rows.filter((r) => r.scenario === 'restart')
  const runs = Math.max(...rows.map((r) => r.runs))
  const restarts = restart[0]?.restarts ?? 0
  const intro = [
    `Loss scenarios: ${first.producers} producers x ${first.recordsPerProducer} records of ${first.recordBytes} B, ${runs} run${runs === 1 ? '' : 's'} per strategy; ` +
      'lost / duplicated from verify of the file (funnel: after the writer ingested the spool), summed over the runs.'
  ]
  if (exit.length > 0) {
    intro.push('exit: every producer calls process.exit() right after its last log call (no flush, no close); ' +
      'records/s from "go" until every record is in the file.')
  }
  if (restart.length > 0) {
    intro.push(`restart: ${restarts} graceful writer restart${restarts === 1 ? '' : 's'} (SIGTERM, new writer on the same file) per run ` +
      'while the producers log at a steady pace; tail = from the last log call until every record is in the file.')
  }
  const header = ['strategy']
  if (exit.length > 0) header.push('exit: lost / duplicated', 'exit: records/s', 'exit: ms until producers gone / all in file')
  if (restart.length > 0) header.push('restart: lost / duplicated', 'restart: writer down ms / tail ms')
  header.push('notes')
  const table = [`| ${header.join(' | ')} |`, `|${header.map((h, i) => i === 0 || h === 'notes' || h.includes('lost') ? '---' : '--:').join('|')}|`]
  for (const strategy of STRATEGIES) {
    const e = exit.find((r) => r.strategy === strategy)
    const s = restart.find((r) => r.strategy === strategy)
    if (e === undefined && s === undefined) continue
    const cells: string[] = [strategy]
    if (exit.length > 0) {
      cells.push(lostCell(e), e?.recordsPerSec === null || e === undefined ? '-' : kilo(e.recordsPerSec),
        e?.producersMs === null || e === undefined || e.completeMs === null ? '-' : `${ms(e.producersMs)} / ${ms(e.completeMs)}`)
    }
    if (restart.length > 0) {
      cells.push(lostCell(s), s?.writerDownMs === null || s === undefined || s.tailMs === null ? '-' : `${ms(s.writerDownMs)} / ${ms(s.tailMs)}`)
    }
    cells.push([...notes(e), ...notes(s)].join('; ') || '-')
    table.push(`| ${cells.join(' | ')} |`)
  }
  return [...intro, '', ...table].join('\n')
}

function lostCell (r: LossResult | undefined): string {
  if (r === undefined) return '-'
  if (r.status === 'no-writer') return 'n/a (no writer)'
  if (r.status === 'no-file') return 'n/a (no file)'
  const extra = [r.torn !== null && r.torn > 0 ? `${r.torn} torn` : '', r.reordered !== null && r.reordered > 0 ? `${r.reordered} reordered` : '']
    .filter((x) => x !== '')
  const main = `${String(r.lost)} / ${String(r.duplicated)}`
  return extra.length === 0 ? main : `${main} (${extra.join(', ')})`
}

function notes (r: LossResult | undefined): string[] {
  if (r === undefined || r.status !== 'measured') return []
  const out: string[] = []
  const what = r.scenario
  if (r.complete === false) out.push(`${what}: **file incomplete at the deadline**`)
  if (r.spooledBatches !== null && r.spooledBatches > 0) out.push(`${what}: ${r.spooledBatches} batches via the spool`)
  if (r.outOfSequence !== null && r.outOfSequence > 0) out.push(`${what}: ${r.outOfSequence} batches refused out of sequence, resent`)
  if (r.failedExits.length > 0) out.push(`${what}: **producer exit codes ${r.failedExits.join(', ')}**`)
  if (r.finishErrors.length > 0) out.push(`${what}: **finish failed: ${r.finishErrors.join(', ')}**`)
  return out
}

function ms (s: Spread): string {
  return s.min === s.max ? s.median.toFixed(0) : `${s.median.toFixed(0)} (${s.min.toFixed(0)}-${s.max.toFixed(0)})`
}

function kilo (s: Spread): string {
  const k = (n: number): string => `${(n / 1000).toFixed(1)}k`
  return s.min === s.max ? k(s.median) : `${k(s.median)} (${k(s.min)}-${k(s.max)})`
}
