import { EventEmitter } from 'node:events'
import { randomBytes } from 'node:crypto'
import { debuglog } from 'node:util'
import { CloseTimeoutError, ClosedError, FlushTimeoutError, RecordTooLargeError } from '../shared/errors.js'
import type { ResolvedProducerOptions } from '../shared/options.js'
import { producerMade } from '../shared/spool.js'
import { encodeHeader, PRODUCER_ID_BYTES } from '../shared/protocol.js'
import { takeEarlyBatches, type EarlyHandOver, type SenderStart } from './early-hand-over.js'
import { AFTER_EARLY_SEGMENT } from './early-spool.js'
import { OpenBatch } from './open-batch.js'
import { ReceiptTimeout } from './receipt-timeout.js'
import { ReceiptWaiters, type Settled } from './receipt-waiters.js'
import { faultAfterBatches } from './sender-faults.js'
import { SenderRoom } from './sender-room.js'
import type { SpoolPosition } from './sender-requests.js'
import { dropNotice, newSenderStats, type SenderStats } from './sender-stats.js'
import { SendWindow } from './send-window.js'
import { SpoolPolicy } from './spool-policy.js'
import { WriterLink } from './writer-link.js'

const debug = debuglog('logfunnel')

/**
 * A batch is sealed at the end of a tick only while fewer than this many batches wait for a
 * receipt; otherwise it keeps filling until a receipt arrives or it is full. Under load this
 * grows batches (fewer, larger frames for the writer); when idle, lines leave at once.
 */
const EAGER_SEAL_BATCHES = 4

/**
 * The producer side of the protocol: turns written text into batches of whole lines, sends
 * them over PUSH with one send in flight, holds each batch until the writer's receipt (SUB)
 * covers it, and goes back to the first unreceipted batch when receipts stall (go-back-N).
 *
 * Input is whole lines already encoded (`writeBytes`): funnel()'s ring, or the transport
 * target's chunks. Backpressure: `writeBytes()` always takes what it is given; with
 * `onFull: 'drop'` it drops the records that do not fit under `highWaterMark`; with `'block'`
 * the caller checks `hasRoom` and awaits `waitForRoom()` before writing more.
 *
 * Events: `'reject'` ({ code, bytes }) for a record over `maxFrameBytes`; `'drop'` (count);
 * `'unreachable'`, once: LOGFUNNEL_ERR_UNSAFE_ENDPOINT at once for a socket directory others
 * could control (nothing is connected), else LOGFUNNEL_ERR_CONNECT or _HANDSHAKE when the writer
 * has not answered within `connectTimeoutMs`; the sender keeps its records (and keeps trying).
 */
export class BatchSender extends EventEmitter {
  readonly id: Buffer
  /** When this producer was made (SpoolPreamble.made): its id's. */
  readonly made: string
  #opts: ResolvedProducerOptions
  #link: WriterLink
  #stats: SenderStats = newSenderStats()
  #spool: SpoolPolicy
  #open: OpenBatch
  #sealScheduled = false
  /** Sealed batches without a receipt: the go-back-N window. */
  #window = new SendWindow()
  #sending = false
  readonly #receiptTimeout: ReceiptTimeout
  #timer: NodeJS.Timeout
  readonly #waiters = new ReceiptWaiters()
  #room: SenderRoom
  #droppedUnreported = 0
  #closed = false
  /** A wait for room ends once the writer is away (WriterLiveness), as at `blockTimeoutMs` (the transport target's). */
  endWaitWhenAway = false
  /** The early phase, until this sender takes its batches (#adoptEarly). */
  #early: EarlyHandOver | undefined
  readonly #startedAt = performance.now()

  constructor (opts: ResolvedProducerOptions, start: SenderStart = {}) {
    super()
    this.#opts = opts
    this.id = start.producerId ?? randomBytes(PRODUCER_ID_BYTES)
    this.made = start.made ?? producerMade()
    this.#early = start.early
    this.#open = new OpenBatch(opts.maxBatchBytes, Math.floor(opts.highWaterMark / opts.maxBatchBytes))
    this.#room = new SenderRoom(opts, () => this.#heldBytes())
    // A squatted socket directory is never connected to: the records are held.
    this.#link = new WriterLink(opts, this.id, start.reach)
    this.#receiptTimeout = new ReceiptTimeout(opts.receiptTimeoutMs, this.#link, this.#window)
    this.#spool = new SpoolPolicy(opts, this.id, this.made, this.#window, this.#open, this.#stats, () => this.#link.away, start.early === undefined ? 0 : AFTER_EARLY_SEGMENT)
    this.#link.on('receipt', (seq: number) => this.#onReceipt(seq))
    // The writer refused a batch that skipped ahead (those before it died with a previous
    // writer's queue): resend now.
    this.#link.on('gap', () => this.#rewind('the writer reported a gap'))
    this.#link.on('tooLarge', (limit: number) => this.#onTooLarge(limit))
    this.#link.on('connected', () => {
      this.#adoptEarly()
      this.#spool.connected()
    })
    this.#link.on('reconnected', () => this.#rewind('reconnected'))
    this.#link.on('unreachable', (err: Error) => this.emit('unreachable', err))
    this.#timer = setInterval(() => this.#checkProgress(), this.#link.checkMs)
    this.#timer.unref()
  }

  /** Where this producer's sequence and spool stand (see SpoolPosition). */
  get spoolPosition (): SpoolPosition {
    return { producerId: this.id, nextSeq: this.#window.nextSeq, base: this.#window.firstSeq, nextSegment: this.#spool.nextSegment }
  }

  get stats (): SenderStats {
    return { ...this.#stats, heldBytes: this.#heldBytes() }
  }

  /** True while the bytes held stay under `highWaterMark` (see SenderRoom). */
  get hasRoom (): boolean {
    return this.#room.available
  }

  /** Resolves once there is room, the sender closes, or the wait reaches `blockTimeoutMs`. */
  async waitForRoom (): Promise<void> {
    if (!this.#closed) await this.#room.wait()
  }

  /**
   * `onFull: 'block'`, a wait for room expired (`away`: ends now): what is held goes to the spool,
   * as with 'spool', and the batches after it wait for the writer to take it (SpoolPolicy); with no
   * spool, records past `highWaterMark` are dropped and counted, as with 'drop'.
   */
  #checkBlocked (now: number, away = false): void {
    if (this.#closed) return
    this.#room.endExpired(now, away, () => {
      this.#seal()
      return this.#window.unreceipted > 0 && this.#spool.moveAll()
    })
  }

  /** Counts a record the caller did not send for being over `maxFrameBytes`; emits `'reject'`. */
  rejectTooLarge (bytes: number): void {
    this.#stats.tooLarge++
    this.emit('reject', new RecordTooLargeError(bytes, this.#opts.maxFrameBytes))
  }

  #scheduleSeal (): void {
    if (!this.#sealScheduled && this.#open.records > 0) {
      this.#sealScheduled = true
      setImmediate(() => this.#onTick())
    }
  }

  /**
   * Takes `records` whole `\n`-terminated lines already encoded as UTF-8 (funnel()'s ring) and
   * copies them; with `onFull: 'drop'` they are dropped together when they do not fit under
   * `highWaterMark`. Throws LOGFUNNEL_ERR_CLOSED after `close()`.
   */
  writeBytes (bytes: Buffer, records: number): void {
    if (this.#closed) throw new ClosedError()
    // A line in the ring was logged after the early phase ended: its batches come first.
    if (this.#early !== undefined) this.#adoptEarly()
    if (!this.#room.fits(bytes.length) && !(this.#spool.pastMark(this.#heldBytes() + bytes.length) && this.#moveHeld())) {
      this.#stats.dropped += records
      this.#droppedUnreported += records
      this.emit('drop', records)
      return
    }
    this.#open.add(bytes, records, () => this.#seal())
    this.#stats.records += records
    if (this.#spool.pastMark(this.#heldBytes())) this.#moveHeld()
    this.#scheduleSeal()
  }

  /**
   * Resolves once every record written so far has a receipt. Rejects with
   * LOGFUNNEL_ERR_FLUSH_TIMEOUT after `deadlineMs` (default `flushTimeoutMs`).
   */
  async flush (deadlineMs = this.#opts.flushTimeoutMs): Promise<void> {
    await this.#settle(deadlineMs, false)
  }

  /**
   * flush() for a close: resolves 'receipted' once every record written so far has a receipt,
   * or 'spooled' once the writer is away (by the rule that copies batches to the spool,
   * `spoolAfterMs`) and every record without a receipt is in the spool, where the writer
   * ingests it: waiting on would only hold up the close. Rejects as flush() does.
   */
  async settle (deadlineMs: number): Promise<Settled> {
    return await this.#settle(deadlineMs, true)
  }

  async #settle (deadlineMs: number, spooledEnds: boolean): Promise<Settled> {
    if (this.#closed) throw new ClosedError()
    this.#adoptEarly()
    this.#sealAndSend()
    const target = this.#window.nextSeq - 1
    if (this.#stats.receipted >= target) return 'receipted'
    return await this.#waiters.wait(target, deadlineMs, () => new FlushTimeoutError(deadlineMs, this.#unreceiptedRecords()), spooledEnds)
  }

  /**
   * Reports unreported drops, flushes, then closes the sockets. Rejects with
   * LOGFUNNEL_ERR_CLOSE_TIMEOUT when receipts do not arrive within `deadlineMs`; the sockets
   * are closed either way, so the process can exit.
   */
  async close (deadlineMs = this.#opts.closeTimeoutMs): Promise<void> {
    if (this.#closed) return
    this.#reportDrops()
    try {
      await this.flush(deadlineMs)
    } catch (err) {
      this.destroy()
      throw new CloseTimeoutError(deadlineMs, { lost: this.#stats.abandoned, spoolError: this.#stats.lastSpoolError })
    } finally {
      this.destroy()
    }
  }

  /** Closes the sockets at once; unreceipted batches are abandoned. */
  destroy (): void {
    if (this.#closed) return
    this.#adoptEarly()
    this.#closed = true
    this.#stats.abandoned = this.heldRecords
    clearInterval(this.#timer)
    this.#link.close()
    this.#room.release()
    this.#waiters.rejectAll(new ClosedError())
  }

  #heldBytes (): number {
    return this.#open.bytes + this.#window.bytes
  }

  #seal (): void {
    const sealed = this.#open.take()
    if (sealed === undefined) return
    if (this.#window.unreceipted === 0) this.#link.liveness.waitFrom(performance.now())
    this.#window.seal(sealed.payload, sealed.records)
    this.#stats.batches++
    this.#spool.sealed()
    void this.#pump()
  }

  /**
   * Copies what has no receipt to the spool, keeping it in memory and sending on (as when the
   * writer does not answer, `spoolAfterMs`); returns the records without a receipt and whether
   * all of them are in the spool now.
   */
  copyToSpool (): { unreceipted: number, spooled: boolean } {
    if (this.#closed) return { unreceipted: 0, spooled: true }
    this.#adoptEarly()
    this.#seal()
    const copied = this.#spool.copyNew()
    this.#spool.handOver()
    const unreceipted = this.#unreceiptedRecords()
    return { unreceipted, spooled: unreceipted === 0 || copied }
  }

  /** Seals the open batch and moves what has no receipt to the spool (see SpoolPolicy.pastMark). */
  #moveHeld (): boolean {
    this.#seal()
    return this.#spool.moveAll()
  }

  /**
   * Puts everything without a receipt into the spool and closes the sockets at once. For process exit and abandoned closes: it never
   * waits. Returns false, and leaves the sender open, when there is no spool or it failed.
   */
  spoolAndDestroy (): boolean {
    if (this.#closed) return true
    this.#adoptEarly()
    // Drops not reported yet (no receipt freed room: a close that ended with the writer away)
    // become their notice record here, in the spool with the rest, as close() does.
    this.#reportDrops()
    this.#seal()
    const ok = this.#window.unreceipted === 0 || this.#spool.moveAll()
    this.#spool.handOver()
    if (ok) this.destroy()
    return ok
  }

  /** Takes the early phase's batches (takeEarlyBatches): before any batch of its own, and before anything that counts or spools what it holds. */
  #adoptEarly (): void {
    const early = this.#early
    if (early === undefined) return
    this.#early = undefined
    const idle = this.#window.unreceipted === 0
    if (takeEarlyBatches(early, this.#window, this.#spool, this.#stats, this.#unconnected(performance.now())) === 0) return
    if (idle) this.#link.liveness.waitFrom(performance.now())
    void this.#pump()
  }

  #sealAndSend (): void {
    this.#sealScheduled = false
    this.#seal()
  }

  /** End of tick: seal now unless enough batches are already waiting for receipts. */
  #onTick (): void {
    this.#sealScheduled = false
    faultAfterBatches(this.#stats.batches)
    if (this.#window.unreceipted < EAGER_SEAL_BATCHES) this.#sealAndSend()
  }

  async #pump (): Promise<void> {
    if (this.#sending) return
    this.#sending = true
    try {
      // While the spool holds batches without a receipt, the later ones wait: the writer must
      // take those first (see SpoolPolicy).
      while (!this.#closed && !this.#spool.holding) {
        const batch = this.#window.takeNextToSend()
        if (batch === undefined) break
        const header = encodeHeader({ records: batch.records, seq: batch.seq, base: this.#window.firstSeq, producerId: this.id })
        await this.#link.send([header, batch.payload])
      }
    } catch (err) {
      if (!this.#closed) debug('send failed, will resend: %o', err)
    } finally {
      this.#sending = false
    }
  }

  /**
   * The writer refused a batch over its `maxFrameBytes` (`limit`), smaller than this producer's:
   * batches are cut within it from now on, and what is held goes to the spool, where the
   * writer takes batches of any size (each later refusal of a batch already sent repeats this
   * only while nothing is in the spool).
   */
  #onTooLarge (limit: number): void {
    if (limit < this.#open.maxBatchBytes) {
      debug('the writer takes batches of at most %d bytes: batching within it, what is held goes to the spool', limit)
      this.#open.lower(limit)
    }
    if (this.#closed || this.#window.unreceipted === 0 || this.#spool.holding) return
    this.#seal()
    this.#spool.moveAll()
  }

  #onReceipt (seq: number): void {
    const freed = this.#window.receipt(seq)
    if (freed === undefined) return
    this.#spool.receipted(seq)
    // A copy's receipt may come while its one send still waits (WindowBatch.copied): not reused.
    for (const batch of freed) if (batch.payload !== undefined) this.#open.release(batch.payload, batch.sends === 1 && batch.copied !== true)
    this.#stats.receipted = seq
    this.#link.liveness.waitFrom(this.#receiptTimeout.receipted())
    this.#waiters.receipted(seq)
    if (this.#open.records > 0 && this.#window.unreceipted < EAGER_SEAL_BATCHES) this.#sealAndSend()
    void this.#pump()
    if (this.#room.freed()) this.#reportDrops()
  }

  #checkProgress (): void {
    const now = performance.now()
    // Not connected within spoolAfterMs: the early phase ends, this sender's spool copies take over.
    if (this.#early !== undefined && this.#unconnected(now)) this.#adoptEarly()
    this.#checkBlocked(now)
    // Judged again after this turn's I/O is read: an answer may be waiting unread.
    if (this.#link.liveness.check(now, this.#window.unreceipted > 0)) setImmediate(() => this.#copyIfAway())
    if (this.#receiptTimeout.expired(now)) this.#rewind('receipt timeout')
  }

  /** No data connection `spoolAfterMs` (> 0) after the start: later batches follow the early ones into the spool; not for a connection still being made. */
  #unconnected (now: number): boolean {
    return this.#opts.spoolAfterMs > 0 && this.#link.away && now - this.#startedAt >= this.#opts.spoolAfterMs
  }

  #copyIfAway (): void {
    const now = performance.now()
    const liveness = this.#link.liveness
    if (this.#closed || this.#window.unreceipted === 0 || !liveness.away(now)) return
    debug('the writer does not answer (last answer %d ms ago, %d ms allowed, batches waiting %d ms): copying to the spool',
      now - liveness.lastAnswer, liveness.allowedMs, liveness.waitedMs(now))
    this.#link.judgedAway()
    // The open batch would wait for a receipt to be sealed; seal it for the spool.
    this.#seal()
    // Every batch without a receipt is in the spool now (copied, or moved before): a close
    // waiting for the writer may end.
    if (this.#spool.copyNew()) this.#waiters.spooled()
    if (this.endWaitWhenAway) this.#checkBlocked(now, true)
  }

  #rewind (why: string): void {
    if (this.#closed || !this.#window.rewind()) return
    debug('%s: resending from batch %d', why, this.#window.firstSeq)
    this.#stats.resends++
    this.#receiptTimeout.rewound()
    void this.#pump()
  }

  /**
   * Drops not reported yet become their notice record now, as close() has them, so that a flush
   * after it covers it: the close() of a destination that keeps the sender (sender-thread.ts).
   */
  reportDrops (): void {
    this.#reportDrops()
  }

  /** Once there is room again, the drops become one notice record in the file. */
  #reportDrops (): void {
    if (this.#droppedUnreported === 0) return
    const line = dropNotice(this.#droppedUnreported)
    this.#droppedUnreported = 0
    // Not a logged record: it is not counted in stats.records.
    if (!this.#open.fitsWithinBatch(line.length)) this.#seal()
    this.#open.appendBytes(line, 1)
    if (!this.#sealScheduled) {
      this.#sealScheduled = true
      setImmediate(() => this.#sealAndSend())
    }
  }

  /** Records without a receipt that only this process holds (not in the spool). */
  get heldRecords (): number {
    return this.#open.records + this.#window.heldRecords()
  }

  #unreceiptedRecords (): number {
    return this.#open.records + this.#window.unreceiptedRecords()
  }
}
