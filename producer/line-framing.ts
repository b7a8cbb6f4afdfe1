import { countLines } from '../shared/protocol.js'

/**
 * Turning what pino writes into whole lines, for both producer paths: funnel()'s ring
 * (line-ring.ts) and the transport target (transport.ts). pino writes one line per call, but a
 * destination may be handed pieces (thread-stream's buffer wraps mid-line), and only whole lines
 * may reach a batch: a line is never split across two batches or two files.
 */

/**
 * A UTF-16 code unit encodes to at most 3 UTF-8 bytes (a surrogate pair, 2 units, to 4), so
 * `text.length * 3` bounds its UTF-8 size without encoding it.
 */
export const MAX_UTF8_BYTES_PER_UNIT = 3

/** True when `text` surely encodes to at most `limit` bytes (checked without encoding it). */
export function surelyWithin (text: string, limit: number): boolean {
  return text.length * MAX_UTF8_BYTES_PER_UNIT <= limit
}

/** Keeps a trailing partial line until the rest of it arrives. */
export class LineFramer {
  #partial = ''

  /** True while the last chunk ended mid-line. */
  get hasPartial (): boolean {
    return this.#partial.length > 0
  }

  /** The whole lines so far (possibly ''), each ending in `\n`; a partial tail is kept. */
  take (chunk: string): string {
    let text = chunk
    if (this.#partial.length > 0) {
      text = this.#partial + chunk
      this.#partial = ''
    }
    if (text.charCodeAt(text.length - 1) === 10) return text
    const last = text.lastIndexOf('\n')
    this.#partial = text.slice(last + 1)
    return last === -1 ? '' : text.slice(0, last + 1)
  }

  /** At the end: the kept partial line completed with `\n`, or ''. */
  end (): string {
    if (this.#partial.length === 0) return ''
    const line = this.#partial + '\n'
    this.#partial = ''
    return line
  }
}

/**
 * Splits encoded whole lines into runs of lines within `maxFrameBytes` (`accept(bytes, records)`)
 * and lines over it (`reject(lineBytes)`), in order.
 */
export function splitTooLarge (bytes: Buffer, maxFrameBytes: number, accept: (run: Buffer, records: number) => void, reject: (lineBytes: number) => void): void {
  let from = 0
  let records = 0
  for (let start = 0; start < bytes.length;) {
    const end = bytes.indexOf(10, start) + 1
    if (end - start > maxFrameBytes) {
      if (records > 0) accept(bytes.subarray(from, start), records)
      reject(end - start)
      from = end
      records = 0
    } else {
      records++
    }
    start = end
  }
  if (records > 0) accept(bytes.subarray(from), records)
}

export { countLines }

/** Calls `fn` the first time only: one warning for a kind of problem, not one per record. */
export function once<A extends unknown[]> (fn: (...args: A) => void): (...args: A) => void {
  let called = false
  return (...args) => {
    if (called) return
    called = true
    fn(...args)
  }
}
