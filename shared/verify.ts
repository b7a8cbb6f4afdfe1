import { createReadStream } from 'node:fs'
import { InvalidOptionError, LogfunnelError } from './errors.js'
import { MAX_FRAME_BYTES } from './options.js'

/** Most defect descriptions a report carries; the counters still count every defect. */
export const MAX_EXAMPLES = 10

/**
 * A line longer than this is torn without being parsed: no frame, hence no record, can pass
 * `MAX_FRAME_BYTES`, and V8 cannot build strings past ~512 MiB anyway.
 */
export const MAX_LINE_BYTES = MAX_FRAME_BYTES

/** Read size of `verifyFile`: large reads keep a file of several hundred MB to few chunks. */
const READ_CHUNK_BYTES = 1024 * 1024
const NEWLINE = 0x0a

/** 4096 sequence numbers (512 bytes) per bitset page: 1M records of one producer cost 128 KiB. */
const PAGE_BITS = 4096
const PAGE_BYTES = PAGE_BITS / 8

export interface VerifyOptions {
  /** Record field naming the producer (pino's `pid` by default). */
  producerKey?: string
  /** Record field holding the producer's sequence number 0, 1, 2, ... */
  seqKey?: string
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
  /** `torn + gaps + duplicates + reordered === 0` */
  ok: boolean
  /** Up to `MAX_EXAMPLES` descriptions of the first defects: line defects first, then gaps. */
  examples: string[]
}

/** The sequence numbers one producer wrote, as a sparse bitset of fixed-size pages. */
class SeqSet {
  readonly #pages = new Map<number, Uint8Array>()
  #size = 0

  get size (): number {
    return this.#size
  }

  /** Adds `seq`; false when it was already there. */
  add (seq: number): boolean {
    // Division, not `>>>`: a sequence number may pass 2^32.
    const index = Math.floor(seq / PAGE_BITS)
    let page = this.#pages.get(index)
    if (page === undefined) {
      page = new Uint8Array(PAGE_BYTES)
      this.#pages.set(index, page)
    }
    const bit = seq - index * PAGE_BITS
    const mask = 1 << (bit & 7)
    if ((page[bit >>> 3] & mask) !== 0) return false
    page[bit >>> 3] |= mask
    this.#size++
    return true
  }

  /** The lowest number in `[0, end)` not in the set, or -1. Stops at the first absent page. */
  firstMissing (end: number): number {
    for (let index = 0; index * PAGE_BITS < end; index++) {
      const page = this.#pages.get(index)
      if (page === undefined) return index * PAGE_BITS
      for (let i = 0; i < PAGE_BYTES; i++) {
        if (page[i] === 0xff) continue
        for (let bit = 0; bit < 8; bit++) {
          if ((page[i] & (1 << bit)) === 0) {
            const seq = index * PAGE_BITS + i * 8 + bit
            return seq < end ? seq : -1
          }
        }
      }
    }
    return -1
  }
}

interface ProducerState {
  seen: SeqSet
  max: number
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
  readonly #producers = new Map<string, ProducerState>()
  readonly #examples: string[] = []
  #lines = 0
  #torn = 0
  #duplicates = 0
  #reordered = 0
  #unkeyed = 0

  constructor ({ producerKey = 'pid', seqKey = 'seq' }: VerifyOptions = {}) {
    if (typeof producerKey !== 'string' || producerKey.length === 0) {
      throw new InvalidOptionError('producerKey must be a non-empty string')
    }
    if (typeof seqKey !== 'string' || seqKey.length === 0) {
      throw new InvalidOptionError('seqKey must be a non-empty string')
    }
    this.#producerKey = producerKey
    this.#seqKey = seqKey
  }

  /**
   * Checks one line, without its newline. `lineNumber` (1-based) only appears in examples.
   * Pass `complete = false` for a final line the file ended without a newline: it is torn.
   */
  add (line: string, lineNumber: number, complete = true): void {
    this.#lines++
    if (!complete) {
      this.#torn++
      this.#example(`line ${lineNumber}: torn (no trailing newline)`)
      return
    }
    const record = parseObject(line)
    if (record === undefined) {
      this.#torn++
      this.#example(`line ${lineNumber}: torn (not one JSON object)`)
      return
    }
    const producerValue = record[this.#producerKey]
    const seq = record[this.#seqKey]
    if (producerValue === undefined || producerValue === null || !isSeq(seq)) {
      this.#unkeyed++
      return
    }
    const producer = String(producerValue)
    let state = this.#producers.get(producer)
    if (state === undefined) {
      state = { seen: new SeqSet(), max: -1 }
      this.#producers.set(producer, state)
    }
    if (!state.seen.add(seq)) {
      this.#duplicates++
      this.#example(`producer ${producer}: seq ${seq} duplicated at line ${lineNumber}`)
    } else if (seq < state.max) {
      this.#reordered++
      this.#example(`producer ${producer}: seq ${seq} at line ${lineNumber} after seq ${state.max}`)
    } else {
      state.max = seq
    }
  }

  /** The counts so far; gaps are counted here, so a report may be taken at any point. */
  report (): VerifyReport {
    const examples = [...this.#examples]
    let gaps = 0
    for (const [producer, { seen, max }] of this.#producers) {
      const missing = max + 1 - seen.size
      if (missing === 0) continue
      gaps += missing
      if (examples.length < MAX_EXAMPLES) {
        examples.push(`producer ${producer}: ${missing} missing, first ${seen.firstMissing(max + 1)}`)
      }
    }
    const defects = this.#torn + gaps + this.#duplicates + this.#reordered
    return {
      lines: this.#lines,
      producers: this.#producers.size,
      torn: this.#torn,
      gaps,
      duplicates: this.#duplicates,
      reordered: this.#reordered,
      unkeyed: this.#unkeyed,
      ok: defects === 0,
      examples
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

function isSeq (value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

/** Chunks of the file; a read failure becomes `LOGFUNNEL_ERR_FILE`, the consumer's own errors do not. */
async function * readChunks (path: string): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: READ_CHUNK_BYTES })) {
      yield chunk as Buffer
    }
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err)
    throw new LogfunnelError('LOGFUNNEL_ERR_FILE', `cannot read log file ${path}: ${reason}`, { cause: err })
  }
}

/**
 * Streams a log file through a `Verifier` and resolves with its report. Memory stays near
 * one read chunk plus the longest line; a line longer than `MAX_LINE_BYTES` is counted as
 * torn without being held. A last line without its newline is torn.
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
  const verifier = new Verifier(opts)
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
  for await (const chunk of readChunks(path)) {
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
  return verifier.report()
}

/**
 * A short human summary: one line of counts, then the examples indented.
 *
 * @example
 * ```ts
 * formatReport(report)
 * // 'ok: 4000 lines, 4 producers, 0 torn, 0 gaps, 0 duplicates, 0 reordered, 1 unkeyed'
 * ```
 */
export function formatReport (report: VerifyReport): string {
  const counts = `${report.lines} lines, ${report.producers} producers, ${report.torn} torn, ` +
    `${report.gaps} gaps, ${report.duplicates} duplicates, ${report.reordered} reordered, ${report.unkeyed} unkeyed`
  const head = `${report.ok ? 'ok' : 'DEFECTS'}: ${counts}`
  return [head, ...report.examples.map((example) => `  ${example}`)].join('\n')
}
