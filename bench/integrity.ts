import { verifyFile } from '../shared/verify.js'

/** The defects a run's file can have; all zero for a correct strategy. */
export interface Defects {
  torn: number
  lost: number
  duplicated: number
  reordered: number
}

/** What the harness checked in a run's file. */
export interface Integrity extends Defects {
  /** Lines in the file, torn ones included. */
  lines: number
  /** Distinct producers (pids) seen. */
  producers: number
  /** Complete JSON lines without pid/seq: not a defect, but not a record either. */
  unkeyed: number
  ok: boolean
  /** verify's first defect descriptions. */
  examples: string[]
}

/**
 * Verifies a run's file against what was logged: `expectedRecords` records with `pid` and
 * `seq`. A record counts as present when it is one complete line, once; `lost` is every
 * expected record not present that way (gaps, a missing tail, and the records a torn line
 * ate), so `lost = expected - (lines - torn - unkeyed - duplicated)`.
 *
 * Rejects with `LOGFUNNEL_ERR_FILE` when the file cannot be read.
 *
 * @example
 * ```ts
 * const integrity = await checkIntegrity('/tmp/run/flock.log', 4 * 20_000)
 * if (!integrity.ok) console.log(describeDefects(integrity)) // '2 torn, 3 lost'
 * ```
 */
export async function checkIntegrity (file: string, expectedRecords: number): Promise<Integrity> {
  const report = await verifyFile(file, { producerKey: 'pid', seqKey: 'seq' })
  const present = report.lines - report.torn - report.unkeyed - report.duplicates
  const defects: Defects = {
    torn: report.torn,
    lost: Math.max(0, expectedRecords - present),
    duplicated: report.duplicates,
    reordered: report.reordered
  }
  return {
    ...defects,
    lines: report.lines,
    producers: report.producers,
    unkeyed: report.unkeyed,
    ok: defectCount(defects) === 0,
    examples: report.examples
  }
}

/** Sum of all defect counts. */
export function defectCount (defects: Defects): number {
  return defects.torn + defects.lost + defects.duplicated + defects.reordered
}

/** Adds defect counts up, e.g. over the runs of one cell. */
export function addDefects (a: Defects, b: Defects): Defects {
  return { torn: a.torn + b.torn, lost: a.lost + b.lost, duplicated: a.duplicated + b.duplicated, reordered: a.reordered + b.reordered }
}

/** `'3 torn, 1 lost'`, `'none'`, or `'n/a'` for a strategy without a file (null counts). */
export function describeDefects (defects: { [K in keyof Defects]: number | null }): string {
  const counts: Array<[string, number | null]> = [
    ['torn', defects.torn], ['lost', defects.lost], ['duplicated', defects.duplicated], ['reordered', defects.reordered]
  ]
  if (counts.some(([, n]) => n === null)) return 'n/a'
  const parts = counts.filter(([, n]) => n !== null && n > 0).map(([what, n]) => `${n} ${what}`)
  return parts.length === 0 ? 'none' : parts.join(', ')
}

/** No defects yet. */
export const NO_DEFECTS: Readonly<Defects> = Object.freeze({ torn: 0, lost: 0, duplicated: 0, reordered: 0 })
