import type { IngestResult } from './ingest.js'
import { describeDefects } from './integrity.js'
import type { CellResult } from './run-cell.js'
import type { Strategy } from './strategies.js'

/** The producer counts and record size the targets are stated for. */
export const TARGET_PRODUCERS = [4, 8] as const
export const TARGET_RECORD_BYTES = 100

export type TargetStatus = 'met' | 'missed' | 'n/a'

/** One target as measured. */
export interface TargetResult {
  target: string
  /** What was measured, with the figures it was computed from. */
  measured: string
  /** The measured ratio, when there is one. */
  ratio: number | null
  status: TargetStatus
}

/** funnel throughput >= `factor` x another strategy's, same producers and record size. */
interface SpeedTarget { kind: 'speed', versus: Strategy, factor: number }
/** funnel p99 latency <= `factor` x another strategy's. */
interface LatencyTarget { kind: 'p99', versus: Strategy, factor: number }

const CELL_TARGETS: Array<SpeedTarget | LatencyTarget> = [
  { kind: 'speed', versus: 'null', factor: 0.9 },
  { kind: 'speed', versus: 'flock', factor: 2.5 },
  { kind: 'speed', versus: 'append', factor: 1.2 },
  { kind: 'p99', versus: 'null', factor: 1.5 }
]
const ZERO_DEFECT_STRATEGIES: Strategy[] = ['funnel', 'funnel-transport']
const INGEST_FACTOR = 0.5

/**
 * Checks the targets against a run's results: funnel against null, flock and append
 * at 4 and 8 producers with 100-byte records, funnel's p99 against null's, zero defects for
 * the logfunnel strategies, and writer-ingest against the plain-file ceiling. A target whose
 * cells were not run, or whose baseline is defective (it has no speed), is `n/a`.
 */
export function evaluateTargets (results: CellResult[], ingest: IngestResult | null): TargetResult[] {
  const targets: TargetResult[] = []
  const find = (strategy: Strategy, producers: number): CellResult | undefined =>
    results.find((r) => r.strategy === strategy && r.producers === producers && r.recordBytes === TARGET_RECORD_BYTES)
  for (const t of CELL_TARGETS) {
    for (const producers of TARGET_PRODUCERS) {
      const label = t.kind === 'speed'
        ? `funnel >= ${t.factor}x ${t.versus} records/s (${producers} producers, ${TARGET_RECORD_BYTES} B)`
        : `funnel p99 <= ${t.factor}x ${t.versus} p99 (${producers} producers, ${TARGET_RECORD_BYTES} B)`
      targets.push(compare(label, t, find('funnel', producers), find(t.versus, producers)))
    }
  }
  for (const strategy of ZERO_DEFECT_STRATEGIES) {
    const cells = results.filter((r) => r.strategy === strategy)
    const label = `zero defects for ${strategy} (every cell, every run)`
    if (cells.length === 0) {
      targets.push({ target: label, measured: 'not run', ratio: null, status: 'n/a' })
      continue
    }
    const bad = cells.filter((r) => r.defective)
    const measured = bad.length === 0
      ? `0 defects in ${cells.length} cells`
      : bad.map((r) => `${r.producers}x${r.recordBytes} B: ${describeDefects(r.defects)}`).join('; ')
    targets.push({ target: label, measured, ratio: null, status: bad.length === 0 ? 'met' : 'missed' })
  }
  const label = `writer-ingest >= ${INGEST_FACTOR}x ceiling MB/s`
  if (ingest === null) {
    targets.push({ target: label, measured: 'not run', ratio: null, status: 'n/a' })
  } else if (ingest.writerMbPerSec === null || ingest.ratio === null) {
    targets.push({ target: label, measured: `writer DEFECTIVE: ${describeDefects(ingest.defects)}`, ratio: null, status: 'missed' })
  } else {
    const ratio = ingest.ratio.median
    targets.push({
      target: label,
      measured: `${fmt(ratio)}x (${ingest.writerMbPerSec.median.toFixed(0)} vs ${ingest.ceilingMbPerSec.median.toFixed(0)} MB/s)`,
      ratio,
      status: ratio >= INGEST_FACTOR ? 'met' : 'missed'
    })
  }
  return targets
}

function compare (label: string, t: SpeedTarget | LatencyTarget, funnel: CellResult | undefined, other: CellResult | undefined): TargetResult {
  if (funnel === undefined || other === undefined) {
    return { target: label, measured: `not run (${funnel === undefined ? 'funnel' : t.versus} missing)`, ratio: null, status: 'n/a' }
  }
  if (t.kind === 'p99') {
    const ratio = funnel.p99Us.median / other.p99Us.median
    return {
      target: label,
      measured: `${fmt(ratio)}x (${funnel.p99Us.median.toFixed(1)} vs ${other.p99Us.median.toFixed(1)} us)`,
      ratio,
      status: ratio <= t.factor ? 'met' : 'missed'
    }
  }
  if (funnel.recordsPerSec === null) {
    return { target: label, measured: `funnel DEFECTIVE: ${describeDefects(funnel.defects)}`, ratio: null, status: 'missed' }
  }
  if (other.recordsPerSec === null) {
    return { target: label, measured: `${t.versus} DEFECTIVE (${describeDefects(other.defects)}): it has no speed to compare`, ratio: null, status: 'n/a' }
  }
  const ratio = funnel.recordsPerSec.median / other.recordsPerSec.median
  return {
    target: label,
    measured: `${fmt(ratio)}x (${kilo(funnel.recordsPerSec.median)} vs ${kilo(other.recordsPerSec.median)} records/s)`,
    ratio,
    status: ratio >= t.factor ? 'met' : 'missed'
  }
}

function fmt (ratio: number): string {
  return ratio.toFixed(2)
}

function kilo (n: number): string {
  return `${(n / 1000).toFixed(0)}k`
}
