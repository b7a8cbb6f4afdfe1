/** Producers named per kind of notice; past it, the counts in the summary's `rejected` go on alone. */
const NAMED_PRODUCERS = 64

/**
 * Warnings about input that a reject count alone would not explain: batches over the writer's
 * `maxFrameBytes` (a configuration mismatch, not a bad record: the producer batched up to its
 * own `maxFrameBytes`/`maxBatchBytes`, and is told through the too-large receipt flag), and
 * lines dropped from messages whose other lines were written. Each is said once per producer.
 */
export class InputNotices {
  readonly #maxFrameBytes: number
  readonly #warn: (event: object) => void
  readonly #tooLarge = new Set<string>()
  readonly #linesDropped = new Set<string>()

  constructor (maxFrameBytes: number, warn: (event: object) => void) {
    this.#maxFrameBytes = maxFrameBytes
    this.#warn = warn
  }

  /** A batch of `bytes` over `maxFrameBytes` from the producer. */
  tooLarge (producerId: Buffer, bytes: number): void {
    const key = producerId.toString('hex')
    if (!firstOf(this.#tooLarge, key)) return
    this.#warn({
      event: 'batch-too-large',
      producerId: key,
      bytes,
      maxFrameBytes: this.#maxFrameBytes,
      hint: 'the producer\'s maxFrameBytes (and maxBatchBytes) should not exceed the writer\'s --max-frame-bytes: its batches over it go through the spool'
    })
  }

  /** `lines` lines of a message from `source` (a producer id, or 'plain') were not UTF-8; `written` were. */
  linesDropped (source: string, lines: number, written: number): void {
    if (firstOf(this.#linesDropped, source)) this.#warn({ event: 'lines-dropped', reason: 'invalid_utf8', producerId: source, lines, written })
  }
}

function firstOf (seen: Set<string>, key: string): boolean {
  if (seen.has(key) || seen.size >= NAMED_PRODUCERS) return false
  seen.add(key)
  return true
}
