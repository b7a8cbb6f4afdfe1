/** A UTF-16 code unit encodes to at most 3 UTF-8 bytes (a surrogate pair: 4 bytes for 2 units). */
const MAX_UTF8_BYTES_PER_UNIT = 3

/** The most bytes `text` can take in UTF-8, known without encoding it. */
export function worstCaseBytes (text: string): number {
  return text.length * MAX_UTF8_BYTES_PER_UNIT
}

/**
 * The batch being filled: text in, whole `\n`-terminated lines encoded straight into one
 * buffer, sealed into a payload of its exact size. A chunk may end mid-line; the rest of the
 * line waits for the next chunk. A line is never split across batches.
 */
export class OpenBatch {
  readonly #maxBatchBytes: number
  #partial = ''
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

  /** True while the last chunk ended mid-line. */
  get hasPartial (): boolean {
    return this.#partial.length > 0
  }

  /** Joins `chunk` to the waiting part of a line; returns the whole lines, keeps the rest. */
  completeLines (chunk: string): string | undefined {
    let text = chunk
    if (this.#partial.length > 0) {
      text = this.#partial + chunk
      this.#partial = ''
    }
    const last = text.lastIndexOf('\n')
    if (last === -1) {
      this.#partial = text
      return undefined
    }
    if (last === text.length - 1) return text
    this.#partial = text.slice(last + 1)
    return text.slice(0, last + 1)
  }

  /** True when `bytes` more fit in this batch without passing `maxBatchBytes`. */
  fitsWithinBatch (bytes: number): boolean {
    return bytes <= this.#maxBatchBytes - this.#bytes
  }

  /** True when `bytes` more fit in the buffer as it is. */
  fits (bytes: number): boolean {
    return this.#bytes + bytes <= this.#buf.length
  }

  /** Encodes whole lines that fit (see `fitsWithinBatch`) in one go; returns how many. */
  appendAll (text: string): number {
    this.#bytes += this.#buf.write(text, this.#bytes)
    let n = 0
    let i = text.indexOf('\n')
    while (i !== -1) {
      n++
      i = text.indexOf('\n', i + 1)
    }
    this.#records += n
    return n
  }

  /**
   * Encodes one line of at most `size` bytes. The caller seals first when it does not fit; a
   * line larger than a batch then gets a buffer (and a batch) of its own size.
   */
  appendLine (line: string, size: number): void {
    if (size > this.#buf.length && this.#bytes === 0) this.#buf = Buffer.allocUnsafe(size)
    this.#bytes += this.#buf.write(line, this.#bytes)
    this.#records++
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
