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

/**
 * Keeps a trailing partial line until the rest of it arrives. A kept tail is joined to the
 * start of the next chunk only up to that chunk's first line end: thread-stream hands over up to
 * 4 MiB at once, and joining a tail to all of it made V8 copy the whole chunk into a new string
 * (about 3 ns per byte on the measuring machine, as much as decoding it; bench/README.md).
 */
export class LineFramer {
  #partial = ''

  /** True while the last chunk ended mid-line. */
  get hasPartial (): boolean {
    return this.#partial.length > 0
  }

  /**
   * Calls `each` with the whole lines of `chunk` (after the kept tail), each piece ending in
   * `\n`: none, one, or two pieces (the tail joined to the chunk's first line, then the rest);
   * a partial tail is kept.
   */
  take (chunk: string, each: (text: string) => void): void {
    let from = 0
    if (this.#partial.length > 0) {
      const first = chunk.indexOf('\n')
      if (first === -1) {
        this.#partial += chunk
        return
      }
      from = first + 1
      each(this.#partial + chunk.slice(0, from))
      this.#partial = ''
      if (from === chunk.length) return
    }
    if (chunk.charCodeAt(chunk.length - 1) === 10) {
      each(from === 0 ? chunk : chunk.slice(from))
      return
    }
    const last = chunk.lastIndexOf('\n')
    this.#partial = chunk.slice(Math.max(last + 1, from))
    if (last + 1 > from) each(chunk.slice(from, last + 1))
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

/**
 * What a destination's write() was given, as text. pino writes strings; sonic-boom (pino's own
 * destination) also takes a Buffer (it writes `'' + data`), so a Buffer or Uint8Array is decoded
 * as UTF-8 here. Anything else throws at the call, as a Node stream's write() does, before
 * anything is kept; before, a Buffer threw "chunk.charCodeAt is not a function" from deep in the
 * ring and the record was lost.
 */
export function chunkText (chunk: unknown): string {
  if (typeof chunk === 'string') return chunk
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('utf8')
  const received = chunk === null ? 'null' : typeof chunk
  throw Object.assign(new TypeError(`write() takes a string (a line of JSON ending in \\n) or a Buffer, not ${received}`), { code: 'ERR_INVALID_ARG_TYPE' })
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
