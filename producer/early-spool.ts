import { closeSync, ftruncateSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { checkSpoolDir } from '../shared/dir-check.js'
import { makeDirsSync } from '../shared/make-dirs.js'
import { MAX_FRAME_BYTES, type ResolvedProducerOptions } from '../shared/options.js'
import { countLines, encodeHeader } from '../shared/protocol.js'
import { encodeSpoolEntry, encodeSpoolPreamble, endpointKey, parseSpool, parseSpoolPreamble, processStartTime, SPOOL_SEGMENT_BYTES, spoolFileName } from '../shared/spool.js'
import { EARLY_STATE_INDEX, EARLY_WRITTEN_INDEX } from './sender-requests.js'

/**
 * The early phase of a funnel() destination made in a worker thread: from funnel() until its
 * sender thread is connected to the writer (about 0.2 s, 0.8 s for four threads starting
 * together on 2 cores), or judges it away. A worker thread can be ended by `worker.terminate()`
 * at any moment (pools end idle threads so), and then neither it nor its sender thread runs any
 * code: lines waiting in the ring, or in a sender that has not connected yet, were lost. So in
 * the early phase the logging thread writes each line synchronously to the producer's spool
 * segment 0, as the producer's next batch (seq 0, 1, 2, ..., base 0), and not to the ring;
 * the writer takes that segment once it has not changed for a second, or once the process has
 * ended (spool-ingest.ts), so a thread ended then loses nothing it logged.
 *
 * The hand-over uses two words of the control array. The logging thread reserves seq n by
 * raising the count from n to n + 1 (compare-and-swap, only while CLOSED is clear), appends the
 * entry, then raises `written`. The sender thread ends the phase by setting CLOSED (connected,
 * the writer judged away, a flush, a close, the first line in the ring), waits until `written`
 * equals the count, reads the segment's k entries back and takes them as its batches 0..k-1
 * (BatchSender): it sends them itself, and removes the segment once the writer has receipted
 * them; should the writer be away, the sender hands it over (`.spool`) before its own spool
 * copies (segments 1 on). A line the logging thread cannot put there (a chunk ending mid-line,
 * over `maxFrameBytes` or the phase's bound, an fs error) ends the phase from that side, and it
 * and every later line go to the ring. Lines never go to both: no seq is taken twice.
 */

/** Set in the state word once the phase has ended; the bits below count the seqs reserved. */
const CLOSED = 1 << 30
/** The segment the logging thread writes in the early phase; the sender's own ones follow it. */
export const EARLY_SEGMENT = 0
/** The segment a sender with an early phase starts its own spool at. */
export const AFTER_EARLY_SEGMENT = EARLY_SEGMENT + 1
/** How long the sender thread waits at most between checks of `written` (it is notified). */
const WRITTEN_RECHECK_MS = 10

/** Logging-thread side: appends lines while the phase lasts. */
export class EarlySpool {
  readonly #control: Int32Array
  readonly #dir: string
  readonly #path: string
  readonly #endpoint: string
  readonly #producerId: Buffer
  readonly #maxFrameBytes: number
  /** The phase ends before the segment passes this (its lines wait in the sender's memory once it takes them). */
  readonly #maxBytes: number
  #fd = -1
  #bytes = 0
  #entries = 0
  #ended = false

  constructor (control: Int32Array, options: ResolvedProducerOptions & { spoolDir: string }, producerId: Buffer) {
    this.#control = control
    this.#dir = options.spoolDir
    this.#path = join(options.spoolDir, spoolFileName(producerId.toString('hex'), process.pid, EARLY_SEGMENT))
    this.#endpoint = options.endpoint
    this.#producerId = producerId
    this.#maxFrameBytes = options.maxFrameBytes
    this.#maxBytes = Math.min(options.highWaterMark, SPOOL_SEGMENT_BYTES)
  }

  /**
   * Puts a chunk of whole lines in the spool as the producer's next batch. False once the phase
   * has ended (this chunk too goes to the ring then, and so does everything after it).
   */
  append (chunk: string): boolean {
    if (this.#ended) return false
    if (chunk.length === 0) return true
    const state = Atomics.load(this.#control, EARLY_STATE_INDEX)
    if ((state & CLOSED) !== 0) return this.end()
    const payload = Buffer.from(chunk)
    if (payload[payload.length - 1] !== 10 || payload.length > this.#maxFrameBytes || this.#bytes + payload.length > this.#maxBytes) return this.#close()
    // Only the sender thread changes the word meanwhile, and only by setting CLOSED.
    if (Atomics.compareExchange(this.#control, EARLY_STATE_INDEX, state, state + 1) !== state) return this.end()
    const entry = Buffer.concat(encodeSpoolEntry(encodeHeader({ records: countLines(payload), seq: state, base: 0, producerId: this.#producerId }), payload))
    try {
      this.#write(entry)
    } catch {
      // The seq goes back: the sender never waits for an entry that is not there.
      for (let s = Atomics.load(this.#control, EARLY_STATE_INDEX); ;) {
        const was = Atomics.compareExchange(this.#control, EARLY_STATE_INDEX, s, ((s & ~CLOSED) - 1) | CLOSED)
        if (was === s) break
        s = was
      }
      Atomics.notify(this.#control, EARLY_WRITTEN_INDEX)
      return this.end()
    }
    this.#entries++
    Atomics.add(this.#control, EARLY_WRITTEN_INDEX, 1)
    if ((Atomics.load(this.#control, EARLY_STATE_INDEX) & CLOSED) !== 0) Atomics.notify(this.#control, EARLY_WRITTEN_INDEX)
    return true
  }

  /** Appends a whole entry, or leaves the file as it was and throws. */
  #write (entry: Buffer): void {
    if (this.#fd === -1) {
      checkSpoolDir(this.#dir)
      makeDirsSync(this.#dir, 0o700)
      this.#fd = openSync(this.#path, 'a', 0o600)
      const preamble = encodeSpoolPreamble({ endpoint: endpointKey(this.#endpoint), pid: process.pid, start: processStartTime(process.pid) ?? null })
      this.#writeAll(preamble, 0)
    }
    this.#writeAll(entry, this.#bytes)
  }

  #writeAll (buf: Buffer, before: number): void {
    let written = 0
    try {
      while (written < buf.length) written += writeSync(this.#fd, buf, written)
    } catch (err) {
      // A part written (ENOSPC part-way) is cut off again: the entry's line goes to the ring.
      if (written > 0) {
        try {
          ftruncateSync(this.#fd, before)
        } catch {}
      }
      throw err
    }
    this.#bytes = before + buf.length
  }

  /** Ends the phase from this side (the sender thread sees CLOSED). */
  #close (): boolean {
    for (let s = Atomics.load(this.#control, EARLY_STATE_INDEX); (s & CLOSED) === 0;) {
      const was = Atomics.compareExchange(this.#control, EARLY_STATE_INDEX, s, s | CLOSED)
      if (was === s) break
      s = was
    }
    return this.end()
  }

  /**
   * The phase is over: the file is closed (the sender thread reads it by name). One that holds
   * no entry (its first one failed) is removed. Returns false, for append().
   */
  end (): boolean {
    if (this.#ended) return false
    this.#ended = true
    if (this.#fd === -1) return false
    try {
      closeSync(this.#fd)
    } catch {}
    this.#fd = -1
    if (this.#entries === 0) {
      try {
        unlinkSync(this.#path)
      } catch {}
    }
    return false
  }
}

/** What the early phase left for the sender: `count` batches in `path`, read back (`batches`) unless the file could not be read. */
export interface EarlyBatches {
  path: string
  count: number
  batches: Array<{ payload: Buffer, records: number }> | undefined
}

/** Sender-thread side: ends the phase and takes what it holds. */
export class EarlyHandOver {
  readonly #control: Int32Array
  readonly #path: string
  readonly #onClosed: () => void

  /** `onClosed`: tells the logging thread, so that it closes the segment (EarlySpool.end()). */
  constructor (control: Int32Array, spoolDir: string, producerId: Buffer, onClosed: () => void) {
    this.#control = control
    this.#path = join(spoolDir, spoolFileName(producerId.toString('hex'), process.pid, EARLY_SEGMENT))
    this.#onClosed = onClosed
  }

  /**
   * Sets CLOSED, waits for the entry being appended (a write of a few microseconds), and reads
   * the segment's entries back, in order. `batches` is undefined, with `count` entries in the
   * file, when it could not be read (EMFILE): the sender then leaves them to the writer there.
   */
  close (): EarlyBatches {
    const c = this.#control
    for (let s = Atomics.load(c, EARLY_STATE_INDEX); (s & CLOSED) === 0;) {
      const was = Atomics.compareExchange(c, EARLY_STATE_INDEX, s, s | CLOSED)
      if (was === s) break
      s = was
    }
    let count: number
    for (;;) {
      const written = Atomics.load(c, EARLY_WRITTEN_INDEX)
      count = Atomics.load(c, EARLY_STATE_INDEX) & ~CLOSED
      if (written === count) break
      Atomics.wait(c, EARLY_WRITTEN_INDEX, written, WRITTEN_RECHECK_MS)
    }
    this.#onClosed()
    return { path: this.#path, count, batches: count === 0 ? [] : this.#readBack(count) }
  }

  #readBack (count: number): EarlyBatches['batches'] {
    let buf: Buffer
    try {
      buf = readFileSync(this.#path)
    } catch {
      return undefined
    }
    const preamble = parseSpoolPreamble(buf)
    if (typeof preamble !== 'object') return undefined
    const { entries } = parseSpool(buf, MAX_FRAME_BYTES, preamble.bytes)
    if (entries.length < count || entries.slice(0, count).some((e, seq) => e.header.seq !== seq)) return undefined
    return entries.slice(0, count).map((e) => ({ payload: e.payload, records: e.header.records }))
  }
}
