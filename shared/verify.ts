import { basename } from 'node:path'
import { InvalidOptionError } from './errors.js'
import { holdFiles, readChunks, releaseFiles, type HeldFile } from './read-chunks.js'
import { MAX_FRAME_BYTES } from './options.js'
import { SeqSet } from './seq-set.js'
import type { ExpectCheck, VerifyOptions, VerifyReport } from './verify-types.js'

/** Most defect descriptions a report carries; the counters still count every defect. */
export const MAX_EXAMPLES = 10

/**
 * A line longer than this is torn without being parsed: no frame, hence no record, can pass
 * `MAX_FRAME_BYTES`, and V8 cannot build strings past ~512 MiB anyway.
 */
export const MAX_LINE_BYTES = MAX_FRAME_BYTES

const NEWLINE = 0x0a

export type { ExpectCheck, VerifyOptions, VerifyReport } from './verify-types.js'

interface ProducerState {
  seen: SeqSet
  max: number
  /** The lowest sequence number seen. */
  min: number
  /** Lines with the producer key, with or without a sequence number. */
  records: number
  /** Sequence numbers at or past `expect`: records the producer should not have written. */
  pastExpect: number
  lastTime: number
}

/**
 * Checks the lines of a log file written by many producers, one line at a time, in file
 * order. Each producer is expected to write sequence numbers 0, 1, 2, ... with none lost,
 * repeated or out of order. Memory grows with the sequence numbers seen (one bit each), not
 * with the lines.
 *
 * Throws `LOGFUNNEL_ERR_INVALID_OPTION` at construction when a key is not a non-empty string.
 *
 * @example
 * ```ts
 * const verifier = new Verifier({ producerKey: 'pid', seqKey: 'seq' })
 * verifier.add('{"pid":1,"seq":0}', 1)
 * verifier.add('{"pid":1,"seq":2}', 2)
 * verifier.report() // { lines: 2, gaps: 1, ok: false, examples: ['producer 1: 1 missing, first 1'], ... }
 * ```
 */
export class Verifier {
  readonly #producerKey: string
  readonly #seqKey: string
  readonly #timeKey: string
  readonly #expect: number | undefined
  readonly #expectTotal: number | undefined
  readonly #fromFirst: boolean
  readonly #producers = new Map<string, ProducerState>()
  readonly #examples: string[] = []
  #file = ''
  #lines = 0
  #torn = 0
  #duplicates = 0
  #reordered = 0
  #unkeyed = 0
  #timeBackwards = 0
  #missingFiles = 0

  constructor ({ producerKey = 'pid', seqKey = 'seq', timeKey = 'time', expect, expectTotal, fromFirst = false }: VerifyOptions = {}) {
    for (const [name, key] of [['producerKey', producerKey], ['seqKey', seqKey], ['timeKey', timeKey]] as const) {
      if (typeof key !== 'string' || key.length === 0) throw new InvalidOptionError(`${name} must be a non-empty string`)
    }
    for (const [name, count] of [['expect', expect], ['expectTotal', expectTotal]] as const) {
      if (count !== undefined && (!Number.isSafeInteger(count) || count < 0)) {
        throw new InvalidOptionError(`${name} must be a non-negative integer, got ${String(count)}`)
      }
    }
    this.#producerKey = producerKey
    this.#seqKey = seqKey
    this.#timeKey = timeKey
    this.#expect = expect
    this.#expectTotal = expectTotal
    if (fromFirst && expect !== undefined) throw new InvalidOptionError('fromFirst and expect do not go together: expect counts each producer\'s records from seq 0')
    this.#fromFirst = fromFirst
  }

  /** Names the file the next lines come from, for examples; line numbers then count within it. */
  startFile (name: string): void {
    this.#file = `${name} `
  }

  /** Counts `count` numbered rotated files absent from the middle of the set (see `orderLogSet`). */
  addMissingFiles (count: number, names: string[]): void {
    this.#missingFiles += count
    if (count > 0) this.#example(`missing rotated file${count === 1 ? '' : 's'}: ${names.join(', ')}`)
  }

  /**
   * Checks one line, without its newline. `lineNumber` (1-based) only appears in examples.
   * Pass `complete = false` for a final line the file ended without a newline: it is torn.
   */
  add (line: string, lineNumber: number, complete = true): void {
    this.#lines++
    const at = `${this.#file}line ${lineNumber}`
    if (!complete) {
      this.#torn++
      this.#example(`${at}: torn (no trailing newline)`)
      return
    }
    const record = parseObject(line)
    if (record === undefined) {
      this.#torn++
      this.#example(`${at}: torn (not one JSON object)`)
      return
    }
    const producerValue = record[this.#producerKey]
    const seq = record[this.#seqKey]
    if (producerValue === undefined || producerValue === null) {
      this.#unkeyed++
      return
    }
    const producer = String(producerValue)
    let state = this.#producers.get(producer)
    if (state === undefined) {
      state = { seen: new SeqSet(), max: -1, min: Infinity, records: 0, pastExpect: 0, lastTime: -Infinity }
      this.#producers.set(producer, state)
    }
    state.records++
    if (!isSeq(seq)) {
      // Without a counter, time is the only order to check; with one, the counter decides
      // (and a clock stepped back by NTP is not a defect of the log).
      this.#unkeyed++
      const time = timeOf(record[this.#timeKey])
      if (time === undefined) return
      if (time < state.lastTime) {
        this.#timeBackwards++
        this.#example(`producer ${producer}: time ${time} at ${at} before ${state.lastTime}`)
      } else {
        state.lastTime = time
      }
      return
    }
    if (!state.seen.add(seq)) {
      this.#duplicates++
      this.#example(`producer ${producer}: seq ${seq} duplicated at ${at}`)
      return
    }
    if (this.#expect !== undefined && seq >= this.#expect) state.pastExpect++
    if (seq < state.min) state.min = seq
    if (seq < state.max) {
      this.#reordered++
      this.#example(`producer ${producer}: seq ${seq} at ${at} after seq ${state.max}`)
    } else {
      state.max = seq
    }
  }

  /** The counts so far; gaps and expectations are counted here, so a report may be taken at any point. */
  report (): VerifyReport {
    const examples = [...this.#examples]
    const example = (text: string): void => {
      if (examples.length < MAX_EXAMPLES) examples.push(text)
    }
    let gaps = 0
    const byProducer: ExpectCheck = { missing: 0, extra: 0 }
    let keyed = 0
    for (const [producer, state] of this.#producers) {
      keyed += state.records
      const { seen, max } = state
      const from = this.#fromFirst && seen.size > 0 ? state.min : 0
      const absent = max + 1 - from - seen.size
      if (absent > 0) {
        gaps += absent
        example(`producer ${producer}: ${absent} missing, first ${seen.firstMissing(max + 1, from)}`)
      }
      if (this.#expect === undefined) continue
      // With a sequence, the count is the distinct numbers below `expect` (gaps are counted
      // apart, so only a lost tail adds here); without, the lines of the producer.
      const [short, over] = seen.size > 0
        ? [Math.max(0, this.#expect - (max + 1)), state.pastExpect]
        : [Math.max(0, this.#expect - state.records), Math.max(0, state.records - this.#expect)]
      if (short > 0) example(`producer ${producer}: ${short} of ${this.#expect} expected records missing`)
      if (over > 0) example(`producer ${producer}: ${over} records beyond the ${this.#expect} expected`)
      byProducer.missing += short
      byProducer.extra += over
    }
    const checks: NonNullable<VerifyReport['checks']> = {}
    if (this.#expect !== undefined) checks.expect = byProducer
    if (this.#expectTotal !== undefined) {
      const total = { missing: Math.max(0, this.#expectTotal - keyed), extra: Math.max(0, keyed - this.#expectTotal) }
      if (total.missing > 0) example(`in total: ${total.missing} of ${this.#expectTotal} expected records missing`)
      if (total.extra > 0) example(`in total: ${total.extra} records beyond the ${this.#expectTotal} expected`)
      checks.expectTotal = total
    }
    // Both checks see the same lost record (its producer short, the total short): counted once.
    const given = Object.values(checks)
    const missing = Math.max(0, ...given.map((c) => c.missing))
    const extra = Math.max(0, ...given.map((c) => c.extra))
    const defects = this.#torn + gaps + this.#duplicates + this.#reordered + this.#timeBackwards + missing + extra + this.#missingFiles
    return {
      lines: this.#lines,
      producers: this.#producers.size,
      torn: this.#torn,
      gaps,
      duplicates: this.#duplicates,
      reordered: this.#reordered,
      unkeyed: this.#unkeyed,
      timeBackwards: this.#timeBackwards,
      missing,
      extra,
      missingFiles: this.#missingFiles,
      ok: defects === 0,
      examples,
      ...(given.length > 0 ? { checks } : {})
    }
  }

  #example (text: string): void {
    if (this.#examples.length < MAX_EXAMPLES) this.#examples.push(text)
  }
}

function parseObject (line: string): Record<string, unknown> | undefined {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    return undefined
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? value as Record<string, unknown>
    : undefined
}

/** pino's `time`: a number of ms, or an ISO string (`pino.stdTimeFunctions.isoTime`). */
function timeOf (value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value
  if (typeof value !== 'string') return undefined
  const ms = Date.parse(value)
  return Number.isNaN(ms) ? undefined : ms
}

function isSeq (value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

/** Streams one file's lines into `verifier`; a last line without its newline is torn. */
async function feedFile (verifier: Verifier, file: HeldFile): Promise<void> {
  let parts: Buffer[] = []
  let partBytes = 0
  let oversized = false
  let lineNumber = 0
  const takeLine = (last: Buffer): string => {
    // An oversized line is handed over as an empty string, which parses as torn.
    const line = oversized
      ? ''
      : parts.length === 0
        ? last.toString('utf8')
        : Buffer.concat([...parts, last], partBytes + last.length).toString('utf8')
    parts = []
    partBytes = 0
    oversized = false
    return line
  }
  for await (const chunk of readChunks(file)) {
    let start = 0
    let nl = chunk.indexOf(NEWLINE, start)
    while (nl !== -1) {
      const piece = chunk.subarray(start, nl)
      if (partBytes + piece.length > MAX_LINE_BYTES) oversized = true
      verifier.add(takeLine(piece), ++lineNumber)
      start = nl + 1
      nl = chunk.indexOf(NEWLINE, start)
    }
    if (start < chunk.length && !oversized) {
      parts.push(chunk.subarray(start))
      partBytes += chunk.length - start
      if (partBytes > MAX_LINE_BYTES) {
        oversized = true
        parts = []
      }
    }
  }
  if (partBytes > 0 || oversized) verifier.add(takeLine(Buffer.alloc(0)), ++lineNumber, false)
}

/**
 * Streams a log file through a `Verifier` and resolves with its report. Memory stays near
 * one read chunk plus the longest line; a line longer than `MAX_LINE_BYTES` is counted as
 * torn without being held. A last line without its newline is torn. A name ending in `.gz`
 * is gunzipped as it is read.
 *
 * Rejects with `LOGFUNNEL_ERR_FILE` when the file cannot be read (missing, a directory) and
 * `LOGFUNNEL_ERR_INVALID_OPTION` for a bad key.
 *
 * @example
 * ```ts
 * const report = await verifyFile('./logs/app.log', { producerKey: 'pid', seqKey: 'seq' })
 * if (!report.ok) console.error(formatReport(report))
 * ```
 */
export async function verifyFile (path: string, opts: VerifyOptions = {}): Promise<VerifyReport> {
  return await verifyFiles([path], opts)
}

/**
 * Checks several files as one log, in the order given (oldest first: `orderLogSet` in
 * `log-set.ts` sorts a rotated set): each producer's records may continue from one file into
 * the next. Each file must end in a newline, since rotation never splits a line. Examples
 * name the file and its line. `missingFiles` are rotated files known to be absent from the
 * set, each a defect.
 *
 * Rejects as `verifyFile` does, for the first file that cannot be read.
 *
 * @example
 * ```ts
 * const report = await verifyFiles(['app.log.2.gz', 'app.log.1', 'app.log'], { expect: 20000 })
 * ```
 */
export async function verifyFiles (paths: string[], opts: VerifyOptions = {}, missingFiles: string[] = []): Promise<VerifyReport> {
  const verifier = new Verifier(opts)
  verifier.addMissingFiles(missingFiles.length, missingFiles.map((path) => basename(path)))
  // Every file opened before any is read: a set still being rotated is read as it was then.
  const held = holdFiles(paths)
  try {
    for (const file of held) {
      if (paths.length > 1) verifier.startFile(basename(file.path))
      await feedFile(verifier, file)
    }
  } finally {
    releaseFiles(held)
  }
  return verifier.report()
}
