/**
 * The batch being filled: whole `\n`-terminated lines, already encoded, copied into one buffer
 * and sealed into a payload of its exact size. A line is never split across batches.
 */
export class OpenBatch {
  readonly #maxBatchBytes: number
  #buf: Buffer
  #bytes = 0
  #records = 0

  constructor (maxBatchBytes: number) {
    this.#maxBatchBytes = maxBatchBytes
    this.#buf = Buffer.allocUnsafe(maxBatchBytes)
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

  /** The filled part as a payload of its own, and its line count; empties the batch. */
  take (): { payload: Buffer, records: number } | undefined {
    if (this.#records === 0) return undefined
    const sealed = { payload: Buffer.from(this.#buf.subarray(0, this.#bytes)), records: this.#records }
    if (this.#buf.length !== this.#maxBatchBytes) this.#buf = Buffer.allocUnsafe(this.#maxBatchBytes)
    this.#bytes = 0
    this.#records = 0
    return sealed
  }
}
