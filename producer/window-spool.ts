import { renameSync, unlinkSync } from 'node:fs'
import { debuglog } from 'node:util'
import { encodeHeader } from '../shared/protocol.js'
import { SPOOL_SUFFIX, SPOOL_TMP_SUFFIX } from '../shared/spool.js'
import type { SendWindow, WindowBatch } from './send-window.js'
import { SpoolWriter } from './spool-writer.js'

const debug = debuglog('logfunnel')

/** The sender's spool counters (SenderStats' fields), updated in place. */
export interface SpoolCounters {
  spooled: number
  spooledRecords: number
  spoolErrors: number
  spoolCopies: number
  lastSpoolError: string | null
}

/**
 * A sender's window and its spool: batches without a receipt moved there (at exit, on an
 * abandoned close, with `onFull: 'spool'`) or copied there (receipts stalled, `spoolAfterMs`).
 * Every entry carries its batch's header, so the writer checks and orders spooled batches like
 * network ones and skips whichever copy of a batch comes second. Synchronous: usable at exit.
 */
export class WindowSpool {
  readonly #writer: SpoolWriter | undefined
  readonly #producerId: Buffer
  readonly #counters: SpoolCounters
  /** Highest sequence moved to the spool; while it is unreceipted, no later batch goes ahead of it (SpoolPolicy). */
  #movedThrough = -1
  /** Highest sequence in the spool as a copy (copied, or the early segment's): not appended again. */
  #copiedThrough = -1
  /**
   * Highest sequence of the copies asked for (copyNew: the writer judged away, a flush's
   * deadline; the early segment when the writer counted as away as the phase ended); while it
   * is unreceipted, new batches are copied too. The early segment alone does not start that:
   * a phase ended while the connection was still being made (a line in the ring, a flush) had
   * every later batch copied and the early segment handed over, and the writer read each batch
   * twice (`spoolAfterMs: 0` too).
   */
  #copyingThrough = -1
  /**
   * The early phase's segment (early-spool.ts), not handed over, and its last batch: removed
   * once that is receipted, handed over before this spool writes anything of its own.
   */
  #early: { path: string, last: number } | undefined

  /** `made`: when the producer was made (SpoolPreamble.made); `firstSegment`: the number of the first segment it writes (after an early phase's). */
  constructor (dir: string | undefined, producerId: Buffer, made: string, endpoint: string, counters: SpoolCounters, firstSegment = 0) {
    this.#producerId = producerId
    this.#counters = counters
    if (dir !== undefined) this.#writer = new SpoolWriter(dir, producerId.toString('hex'), endpoint, (err) => this.#onError(err), firstSegment, made)
  }

  /**
   * The early phase's batches 0..`last` are in the segment at `path`: copies (the sender holds
   * them too), or, with `moved`, there only (they could not be read back), and then the writer
   * gets the segment at once. With `writerAway` (not connected `spoolAfterMs` after the start)
   * the copies go on with the batches that follow, as after copyNew().
   */
  adoptEarly (path: string, last: number, moved: boolean, writerAway: boolean): void {
    this.#early = { path, last }
    if (moved) {
      this.#movedThrough = last
      this.#handOverEarly()
    } else {
      this.#copiedThrough = last
      if (writerAway) this.#copyingThrough = last
    }
  }

  /** The writer has every batch through `seq`: the early segment, once all of it is, is removed. */
  receipted (seq: number): void {
    const early = this.#early
    if (early === undefined || seq < early.last) return
    this.#early = undefined
    try {
      unlinkSync(early.path)
    } catch (err) {
      // Left in place, the writer takes it (every batch a duplicate) once this process has ended.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') debug('removing the early spool segment failed: %o', err)
    }
  }

  /** The early segment goes to the writer (renamed `.spool`): it must take it before the segments that follow. */
  #handOverEarly (): void {
    const early = this.#early
    if (early === undefined) return
    this.#early = undefined
    try {
      renameSync(early.path, early.path.slice(0, -SPOOL_TMP_SUFFIX.length) + SPOOL_SUFFIX)
    } catch (err) {
      // Not renamed, the writer takes it once it has not changed for a second (spool-ingest.ts).
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') debug('handing the early spool segment over failed: %o', err)
    }
  }

  /** The next spool segment of this producer (0 with no spool). */
  get nextSegment (): number {
    return this.#writer?.nextSegment ?? 0
  }

  /** True while batches from `firstSeq` on are in the spool: the writer must take them before any later one. */
  moving (firstSeq: number): boolean {
    return this.#movedThrough >= firstSeq
  }

  /** True while copies from `firstSeq` on wait for their receipt: new batches are copied too. */
  copying (firstSeq: number): boolean {
    return this.#copyingThrough >= firstSeq
  }

  #append (batch: WindowBatch & { payload: Buffer }, base: number): void {
    this.#handOverEarly();
    (this.#writer as SpoolWriter).append(encodeHeader({ records: batch.records, seq: batch.seq, base, producerId: this.#producerId }), batch.payload)
  }

  /**
   * Moves every batch held in memory without a receipt to the spool, oldest first, so the spool
   * alone holds the producer's sequence from the first unreceipted batch on (`release` gets each
   * payload back). Returns false when there is no spool or it cannot be written.
   */
  moveAll (window: SendWindow, release: (payload: Buffer) => void): boolean {
    if (this.#writer === undefined) return false
    try {
      const base = window.firstSeq
      window.moveToSpool((batch) => {
        if (batch.seq > this.#copiedThrough) this.#append(batch, base)
        release(batch.payload)
        this.#movedThrough = batch.seq
        this.#counters.spooled++
        this.#counters.spooledRecords += batch.records
      })
    } catch (err) {
      this.#onError(err)
      return false
    }
    return true
  }

  /**
   * Copies the batches without a receipt that are not in the spool yet, keeping them in memory.
   * Returns false when there is no spool or it cannot be written.
   */
  copyNew (window: SendWindow): boolean {
    if (this.#writer === undefined) return false
    try {
      const base = window.firstSeq
      for (const batch of window.batches) {
        if (batch.seq <= this.#copiedThrough || batch.payload === undefined) continue
        this.#append(batch as WindowBatch & { payload: Buffer }, base)
        batch.copied = true
        this.#copiedThrough = batch.seq
        this.#counters.spoolCopies++
      }
    } catch (err) {
      this.#onError(err)
      return false
    } finally {
      this.#copyingThrough = this.#copiedThrough
    }
    return true
  }

  /** Hands the open segment to the writer. */
  seal (): void {
    this.#handOverEarly()
    try {
      this.#writer?.seal()
    } catch (err) {
      this.#onError(err)
    }
  }

  #onError (err: unknown): void {
    this.#counters.spoolErrors++
    this.#counters.lastSpoolError = failureText(err)
    debug('spool write failed: %o', err)
  }
}

/** A failure as said: its code first (`EACCES: permission denied, open '...'`, `LOGFUNNEL_ERR_UNSAFE_ENDPOINT: refusing ...`). */
function failureText (err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  const code = (err as NodeJS.ErrnoException).code
  return code === undefined || err.message.startsWith(code) ? err.message : `${code}: ${err.message}`
}
