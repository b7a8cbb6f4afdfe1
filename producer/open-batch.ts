/**
 * A batch at least this full is handed over as it is (its buffer goes with it, a new one is
 * taken); a smaller one is copied into a payload of its own size, so a trickle of small batches
 * does not hold a whole batch buffer each. Under load batches are full: no copy, no new memory.
 */
const HAND_OVER_FRACTION = 4
/** Buffers kept for reuse: enough for the batches in flight under load (EAGER_SEAL_BATCHES). */
const SPARE_BUFFERS = 8

/**
 * The batch being filled: whole `\n`-terminated lines, already encoded, copied into one buffer
 * and sealed into a payload. A line is never split across batches.
 *
 * A full batch's buffer becomes its payload (no copy); `recycle()` takes it back once the
 * writer has it, so steady logging reuses a few buffers instead of allocating (and faulting in)
 * a fresh one per batch.
 */
export class OpenBatch {
  readonly #maxBatchBytes: number
  #buf: Buffer
  #bytes = 0
  #records = 0
  readonly #spare: Buffer[] = []
  /** Payloads that are whole batch buffers (handed over), so recycling takes only those. */
  readonly #handedOver = new WeakSet<ArrayBufferLike>()

  constructor (maxBatchBytes: number) {
    this.#maxBatchBytes = maxBatchBytes
    this.#buf = Buffer.allocUnsafeSlow(maxBatchBytes)
  }

  get bytes (): number {
    return this.#bytes
  }

  get records (): number {
    return this.#records
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

  /** The filled part as a payload, and its line count; empties the batch. */
  take (): { payload: Buffer, records: number } | undefined {
    if (this.#records === 0) return undefined
    let payload: Buffer
    if (this.#buf.length === this.#maxBatchBytes && this.#bytes * HAND_OVER_FRACTION >= this.#maxBatchBytes) {
      payload = this.#buf.subarray(0, this.#bytes)
      this.#handedOver.add(this.#buf.buffer)
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
   * Takes back a handed-over payload's buffer for reuse. Only once nothing else can read it:
   * the writer has receipted the batch, and it was sent once (zeromq.js sends a buffer without
   * copying it, so a second copy of a resent batch may still wait in libzmq's queue).
   */
  recycle (payload: Buffer): void {
    const arrayBuffer = payload.buffer
    if (!this.#handedOver.has(arrayBuffer) || this.#spare.length >= SPARE_BUFFERS) return
    this.#handedOver.delete(arrayBuffer)
    this.#spare.push(Buffer.from(arrayBuffer, payload.byteOffset, this.#maxBatchBytes))
  }
}
