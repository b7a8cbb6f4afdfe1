import { countLines, NEWLINE } from '../shared/protocol.js'

/**
 * A batch at least this many bytes is handed over as it is (its buffer goes with it, a new one
 * is taken); a smaller one is copied into a payload of its own size, so a trickle of small
 * batches does not hold a whole batch buffer each. Batches are sealed at the end of the sender
 * thread's tick, often before they are full, so the bound is far below `maxBatchBytes`.
 */
const MIN_HAND_OVER_BYTES = 16 * 1024
/** Buffers kept for reuse when the batches in flight come back. */
const SPARE_BUFFERS = 8

/**
 * The batch being filled: whole `\n`-terminated lines, already encoded, copied into one buffer
 * and sealed into a payload. A line is never split across batches.
 *
 * A batch's buffer becomes its payload (no copy); `release()` takes it back once the writer
 * has it, so steady logging reuses a few buffers instead of allocating (and faulting in) a
 * fresh one per batch. At most `maxHandedOver` buffers are out at once: the memory of batches
 * in flight stays within `maxHandedOver * maxBatchBytes` however small they are; past that a
 * batch is copied to its own size.
 */
export class OpenBatch {
  #maxBatchBytes: number
  readonly #maxHandedOver: number
  #buf: Buffer
  #bytes = 0
  #records = 0
  readonly #spare: Buffer[] = []
  /** Payloads that are whole batch buffers (handed over) and not yet released. */
  readonly #handedOver = new WeakSet<ArrayBufferLike>()
  #out = 0

  constructor (maxBatchBytes: number, maxHandedOver = Infinity) {
    this.#maxBatchBytes = maxBatchBytes
    this.#maxHandedOver = Math.max(1, maxHandedOver)
    this.#buf = Buffer.allocUnsafeSlow(maxBatchBytes)
  }

  get bytes (): number {
    return this.#bytes
  }

  /** The batch size: `maxBatchBytes`, or the writer's smaller limit (lower()). */
  get maxBatchBytes (): number {
    return this.#maxBatchBytes
  }

  /** The batch size from now on (the writer's smaller limit); the batch being filled may be over it. */
  lower (maxBatchBytes: number): void {
    if (maxBatchBytes >= this.#maxBatchBytes) return
    this.#maxBatchBytes = maxBatchBytes
    this.#spare.length = 0
  }

  get records (): number {
    return this.#records
  }

  /**
   * Appends `bytes` (`records` whole lines), calling `seal` to hand over the batch when they do
   * not fit in it; lines larger than a batch together (a transport's chunk, a ring slot over
   * `maxBatchBytes`) are cut into full batches, a line never split.
   */
  add (bytes: Buffer, records: number, seal: () => void): void {
    if (this.fitsWithinBatch(bytes.length)) {
      this.appendBytes(bytes, records)
    } else if (bytes.length <= this.#maxBatchBytes) {
      seal()
      this.appendBytes(bytes, records)
    } else {
      let start = this.appendLines(bytes, 0)
      while (start < bytes.length) {
        seal()
        start = this.appendLines(bytes, start)
      }
    }
  }

  /** True when `bytes` more fit in this batch without passing `maxBatchBytes`. */
  fitsWithinBatch (bytes: number): boolean {
    return bytes <= this.#maxBatchBytes - this.#bytes
  }

  /**
   * Copies whole lines already encoded (`records` of them). The caller seals first when they
   * do not fit; bytes larger than a batch then get a buffer (and a batch) of their own size.
   */
  appendBytes (bytes: Uint8Array, records: number): void {
    if (bytes.length > this.#buf.length && this.#bytes === 0) this.#buf = Buffer.allocUnsafe(bytes.length)
    this.#buf.set(bytes, this.#bytes)
    this.#bytes += bytes.length
    this.#records += records
  }

  /**
   * Appends, from `start`, the longest run of whole lines of `bytes` that fits in this batch,
   * and returns where it stopped: `bytes.length` when all of it went in, `start` when not even
   * one line fits (the caller seals and calls again). An empty batch always takes at least one
   * line: a line larger than a batch gets a batch of its own.
   */
  appendLines (bytes: Buffer, start: number): number {
    const room = this.#maxBatchBytes - this.#bytes
    let end = room > 0 ? bytes.lastIndexOf(NEWLINE, start + room - 1) + 1 : 0
    if (end <= start) {
      if (this.#bytes > 0) return start
      end = bytes.indexOf(NEWLINE, start) + 1
    }
    const run = bytes.subarray(start, end)
    this.appendBytes(run, countLines(run))
    return end
  }

  /** The filled part as a payload, and its line count; empties the batch. */
  take (): { payload: Buffer, records: number } | undefined {
    if (this.#records === 0) return undefined
    let payload: Buffer
    if (this.#buf.length === this.#maxBatchBytes && this.#bytes >= Math.min(MIN_HAND_OVER_BYTES, this.#maxBatchBytes) && this.#out < this.#maxHandedOver) {
      payload = this.#buf.subarray(0, this.#bytes)
      this.#handedOver.add(this.#buf.buffer)
      this.#out++
      this.#buf = this.#spare.pop() ?? Buffer.allocUnsafeSlow(this.#maxBatchBytes)
    } else {
      payload = Buffer.from(this.#buf.subarray(0, this.#bytes))
      if (this.#buf.length !== this.#maxBatchBytes) this.#buf = Buffer.allocUnsafeSlow(this.#maxBatchBytes)
    }
    const sealed = { payload, records: this.#records }
    this.#bytes = 0
    this.#records = 0
    return sealed
  }

  /**
   * Gives back a payload the sender is done with (receipted, spooled or abandoned). A handed-over
   * buffer is kept for reuse only when `reusable`: nothing else can read it any more, that is,
   * the writer has receipted the batch and it was sent once (a socket write keeps a reference
   * to the buffer, not a copy, so a second copy of a resent batch may still wait in its queue).
   */
  release (payload: Buffer, reusable: boolean): void {
    const arrayBuffer = payload.buffer
    if (!this.#handedOver.has(arrayBuffer)) return
    this.#handedOver.delete(arrayBuffer)
    this.#out--
    if (reusable && this.#spare.length < SPARE_BUFFERS) this.#spare.push(Buffer.from(arrayBuffer, payload.byteOffset, this.#maxBatchBytes))
  }
}
