import { closeSync, ftruncateSync, openSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { checkSpoolDir } from '../shared/dir-check.js'
import { makeDirsSync } from '../shared/make-dirs.js'
import type { ResolvedProducerOptions } from '../shared/options.js'
import { countLines, encodeHeader } from '../shared/protocol.js'
import { currentThread, encodeSpoolEntryStart, encodeSpoolPreamble, endpointKey, OPEN_ENTRY_LENGTH, processStartTime, SPOOL_ENTRY_OVERHEAD, SPOOL_SEGMENT_BYTES, spoolFileName } from '../shared/spool.js'
import { EARLY_ENTRIES_INDEX, EARLY_RECORDS_INDEX, EARLY_STATE_INDEX, EARLY_WRITTEN_INDEX } from './sender-requests.js'

/**
 * The early phase of a funnel() destination made in a worker thread: from funnel() until its
 * sender thread is connected to the writer (about 0.2 s, 0.8 s for four threads starting
 * together on 2 cores), or judges it away. A worker thread can be ended by `worker.terminate()`
 * at any moment (pools end idle threads so), and then neither it nor its sender thread runs any
 * code: lines waiting in the ring, or in a sender that has not connected yet, were lost. So in
 * the early phase the logging thread writes each line synchronously to the producer's spool
 * segment 0, and not to the ring: each log call returns with its line in the file. The lines
 * go there as the producer's first batches (seq 0, 1, 2, ..., base 0), each line appended to an
 * open entry (shared/spool.ts OPEN_ENTRY_LENGTH) until that holds `maxBatchBytes`, so that a
 * line costs one write and the batches are full ones (with an entry per line, 40,000 lines
 * logged at once went out as 4,900 to 17,700 one-line batches). The segment names the thread
 * that writes it: the writer takes it, and removes it, once that thread is gone
 * (spool-ingest.ts), so a thread ended in the phase loses nothing it logged, and leaves nothing
 * behind in a process that lives on.
 *
 * The hand-over (early-hand-over.ts) uses three words of the control array. The logging thread begins an append by
 * raising the count from n to n + 1 (compare-and-swap, only while CLOSED is clear), appends the
 * line, sets the number of entries in the segment, then raises `written`. The sender thread
 * ends the phase by setting CLOSED (connected, the writer judged away, a flush, a close, the
 * first line in the ring), waits until `written` equals the count, reads the segment's k
 * entries back and takes them as its batches 0..k-1 (BatchSender): it sends them itself, and
 * removes the segment once the writer has receipted them; should the writer be away, the
 * sender hands it over (`.spool`) before its own spool copies (segments 1 on). A line the
 * logging thread cannot put there (a chunk ending mid-line, over `maxFrameBytes` or the phase's
 * bound, an fs error) ends the phase from that side, and it and every later line go to the
 * ring. Lines never go to both: no line is in the segment that the sender does not read back.
 */

/** Set in the state word once the phase has ended; the bits below count the appends begun. */
export const CLOSED = 1 << 30
/** The segment the logging thread writes in the early phase; the sender's own ones follow it. */
export const EARLY_SEGMENT = 0
/** The segment a sender with an early phase starts its own spool at. */
export const AFTER_EARLY_SEGMENT = EARLY_SEGMENT + 1

/** The entry the logging thread appends lines to: where it starts in the file, its seq, what it holds. */
interface OpenEntry {
  at: number
  seq: number
  bytes: number
  records: number
}

/** Logging-thread side: appends lines while the phase lasts. */
export class EarlySpool {
  readonly #control: Int32Array
  readonly #dir: string
  readonly #path: string
  readonly #endpoint: string
  readonly #producerId: Buffer
  readonly #made: string
  readonly #maxFrameBytes: number
  /** An entry holds at most this much: one batch for the sender. */
  readonly #entryBytes: number
  /** The phase ends before the segment passes this (its lines wait in the sender's memory once it takes them). */
  readonly #maxBytes: number
  #fd = -1
  /** The file's size: every write goes at an offset (an entry is closed in place, so no O_APPEND). */
  #bytes = 0
  #entries = 0
  #records = 0
  #open: OpenEntry | undefined
  #ended = false

  /** `made`: when `producerId` was made (SpoolPreamble.made). */
  constructor (control: Int32Array, options: ResolvedProducerOptions & { spoolDir: string }, producerId: Buffer, made: string) {
    this.#made = made
    this.#control = control
    this.#dir = options.spoolDir
    this.#path = join(options.spoolDir, spoolFileName(producerId.toString('hex'), process.pid, EARLY_SEGMENT))
    this.#endpoint = options.endpoint
    this.#producerId = producerId
    this.#maxFrameBytes = options.maxFrameBytes
    this.#entryBytes = Math.min(options.maxBatchBytes, options.maxFrameBytes)
    this.#maxBytes = Math.min(options.highWaterMark, SPOOL_SEGMENT_BYTES)
  }

  /**
   * Puts a chunk of whole lines in the spool, in the producer's next batch. False once the
   * phase has ended (this chunk too goes to the ring then, and so does everything after it).
   */
  append (chunk: string): boolean {
    if (this.#ended) return false
    if (chunk.length === 0) return true
    const c = this.#control
    const state = Atomics.load(c, EARLY_STATE_INDEX)
    if ((state & CLOSED) !== 0) return this.end()
    const payload = Buffer.from(chunk)
    const open = this.#open
    const joins = open !== undefined && open.bytes + payload.length <= this.#entryBytes
    const grows = joins ? payload.length : SPOOL_ENTRY_OVERHEAD + payload.length
    if (payload[payload.length - 1] !== 10 || payload.length > this.#maxFrameBytes || this.#bytes + grows > this.#maxBytes) return this.#close()
    // Only the sender thread changes the word meanwhile, and only by setting CLOSED.
    if (Atomics.compareExchange(c, EARLY_STATE_INDEX, state, state + 1) !== state) return this.end()
    const records = countLines(payload)
    try {
      if (joins) {
        this.#writeAll(payload, this.#bytes)
        open.bytes += payload.length
        open.records += records
      } else {
        this.#startEntry(payload, records)
      }
    } catch {
      // The file is as it was: the line goes to the ring, and so does every later one.
      Atomics.or(c, EARLY_STATE_INDEX, CLOSED)
      Atomics.add(c, EARLY_WRITTEN_INDEX, 1)
      Atomics.notify(c, EARLY_WRITTEN_INDEX)
      return this.end()
    }
    this.#records += records
    Atomics.store(c, EARLY_ENTRIES_INDEX, this.#entries)
    Atomics.store(c, EARLY_RECORDS_INDEX, this.#records)
    Atomics.add(c, EARLY_WRITTEN_INDEX, 1)
    if ((Atomics.load(c, EARLY_STATE_INDEX) & CLOSED) !== 0) Atomics.notify(c, EARLY_WRITTEN_INDEX)
    return true
  }

  /**
   * Closes the open entry in place (its length and records) and starts the next one with
   * `payload`, in one write: a thread ended between the two leaves whole entries only.
   */
  #startEntry (payload: Buffer, records: number): void {
    if (this.#fd === -1) this.#openFile()
    const open = this.#open
    if (open !== undefined) {
      const header = encodeHeader({ records: open.records, seq: open.seq, base: 0, producerId: this.#producerId })
      this.#writeAll(encodeSpoolEntryStart(header, open.bytes), open.at, false)
    }
    const header = encodeHeader({ records, seq: this.#entries, base: 0, producerId: this.#producerId })
    const at = this.#bytes
    this.#writeAll(Buffer.concat([encodeSpoolEntryStart(header, OPEN_ENTRY_LENGTH), payload]), at)
    this.#open = { at, seq: this.#entries, bytes: payload.length, records }
    this.#entries++
  }

  #openFile (): void {
    checkSpoolDir(this.#dir)
    makeDirsSync(this.#dir, 0o700)
    this.#fd = openSync(this.#path, 'w', 0o600)
    try {
      // The thread too: once it is gone (terminated) the writer takes the segment and removes it, the process living on.
      const thread = currentThread()
      this.#writeAll(encodeSpoolPreamble({ endpoint: endpointKey(this.#endpoint), pid: process.pid, start: processStartTime(process.pid) ?? null, made: this.#made, ...(thread === undefined ? {} : { thread }) }), 0)
    } catch (err) {
      this.#removeFile()
      throw err
    }
  }

  /**
   * Writes `buf` at `at`: at the file's end (`grows`), or over bytes already there. Throws
   * with the file as it was: a part written at the end (ENOSPC part-way) is cut off again.
   */
  #writeAll (buf: Buffer, at: number, grows = true): void {
    let written = 0
    try {
      while (written < buf.length) written += writeSync(this.#fd, buf, written, buf.length - written, at + written)
    } catch (err) {
      if (grows && written > 0) {
        try {
          ftruncateSync(this.#fd, at)
        } catch {}
      }
      throw err
    }
    if (grows) this.#bytes = at + buf.length
  }

  /** Ends the phase from this side (the sender thread sees CLOSED). */
  #close (): boolean {
    Atomics.or(this.#control, EARLY_STATE_INDEX, CLOSED)
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
    if (this.#entries === 0) {
      this.#removeFile()
      return false
    }
    try {
      closeSync(this.#fd)
    } catch {}
    this.#fd = -1
    return false
  }

  #removeFile (): void {
    try {
      closeSync(this.#fd)
    } catch {}
    this.#fd = -1
    try {
      unlinkSync(this.#path)
    } catch {}
  }
}
