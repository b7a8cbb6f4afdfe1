/** The options and the report of `logfunnel verify` (verify.ts). */

export interface VerifyOptions {
  /**
   * Record field naming the producer (pino's `pid` by default; the CLI's `--key`). A pid is
   * not unique when several loggers share a process (worker threads): give each its own field.
   */
  producerKey?: string
  /** Record field holding the producer's sequence number 0, 1, 2, ... */
  seqKey?: string
  /** Record field holding the time (pino's `time`: ms since the epoch, or an ISO string). */
  timeKey?: string
  /** Records each producer should have written; fewer count as `missing`, more as `extra`. */
  expect?: number
  /** Records (lines with the producer key) the whole log should hold; fewer are `missing`, more `extra`. */
  expectTotal?: number
  /**
   * Each producer's sequence is checked from its lowest number in the log, not from 0: for a file
   * or a set whose older records are gone by design (rotated away, `--rotate-keep`). Not with
   * `expect` (which counts from 0).
   */
  fromFirst?: boolean
}

/** What `verify` found in a log file. Only `torn`, `gaps`, `duplicates` and `reordered` are defects. */
export interface VerifyReport {
  /** Lines read, torn ones included. */
  lines: number
  /** Distinct values of the producer key. */
  producers: number
  /** Lines that are not one complete JSON object, and a final line without its newline. */
  torn: number
  /** Sequence numbers in `[0, max]` of a producer that never appeared: lost records. */
  gaps: number
  /** Lines repeating a sequence number their producer already wrote. */
  duplicates: number
  /** Lines whose sequence number is lower than one their producer wrote before them. */
  reordered: number
  /** Complete JSON lines without a producer key or sequence number, e.g. a drop notice. */
  unkeyed: number
  /** Lines without a sequence number whose time is earlier than the previous such line of the same producer. */
  timeBackwards: number
  /**
   * Records short of `expect` (per producer, a lost tail included) or `expectTotal`, each counted
   * once: with both, the larger of the two checks' counts (`checks` has each), as the total's
   * deficit takes in the producers' (it is net: an extra record of one producer makes up for a
   * missing one of another).
   */
  missing: number
  /** Records beyond `expect` (per producer) or `expectTotal`, each counted once, as `missing`. */
  extra: number
  /** With `expect` or `expectTotal`: what each check given found (a record can fail both). */
  checks?: { expect?: ExpectCheck, expectTotal?: ExpectCheck }
  /** Numbered rotated files absent from the middle of the set (`app.log.1` and `.3`, no `.2`). */
  missingFiles: number
  /** No defect: `torn`, `gaps`, `duplicates`, `reordered`, `timeBackwards`, `missing`, `extra` and `missingFiles` are all 0. */
  ok: boolean
  /** Up to `MAX_EXAMPLES` descriptions of the first defects: line defects first, then gaps. */
  examples: string[]
}

/** What one of the count checks (`expect`, `expectTotal`) found. */
export interface ExpectCheck {
  missing: number
  extra: number
}
