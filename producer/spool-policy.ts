import type { OnFull, ResolvedProducerOptions } from '../shared/options.js'
import type { OpenBatch } from './open-batch.js'
import type { SendWindow } from './send-window.js'
import { WindowSpool, type SpoolCounters } from './window-spool.js'

/**
 * When a BatchSender's batches go to the spool; WindowSpool writes them. Moved there (out of
 * memory): past `highWaterMark` with `onFull: 'spool'`, after a 'block' wait that expired, when
 * the writer refuses a batch as too large, at exit. Copied there (kept in memory and sent too):
 * once the writer is judged away (`spoolAfterMs`), and when the transport's flush reaches its
 * deadline; after that each new batch is copied too while the writer is away (WriterLink.away),
 * and only sent once it is connected and heard from again. The early phase's segment counts as
 * such copies only when no data connection was made `spoolAfterMs` after the start (before, also
 * when the phase ended while one was still being made, `spoolAfterMs: 0` too: every later batch
 * was copied and the writer read each batch twice). Nothing sent is left out: the next
 * copy (the writer away again) or move (exit) takes every batch without a receipt not yet in the
 * spool. (Before, new batches were copied until the earlier copies had their receipt, with the
 * writer connected too, and the writer read each of them twice: counted in its `duplicates`.)
 *
 * While the spool holds batches without a receipt (`holding`), the writer must take them before
 * any later batch (it refuses a batch that skips ahead). With the writer away, later batches
 * follow them there. With it connected they wait in memory, and go through the socket once its
 * receipt says it has taken the spool; the segment holding the moved batches is handed to it at
 * once. Past `highWaterMark` in that state what is held follows them there, whatever `onFull`
 * says: a writer stopped but connected makes a 'block' caller wait once, not once per mark.
 * (Before, later batches followed them there with the writer connected too: under continuous
 * logging the spool always held a batch the writer had not taken yet, and the producer spooled
 * every record for as long as the logging went on.)
 */
export class SpoolPolicy {
  readonly #spool: WindowSpool
  readonly #window: SendWindow
  readonly #open: OpenBatch
  readonly #onFull: OnFull
  readonly #highWaterMark: number
  readonly #writerAway: () => boolean

  /** `made`: when the producer was made (SpoolPreamble.made); `writerAway`: whether the writer counts as away now (WriterLink.away); `firstSegment`: see WindowSpool. */
  constructor (opts: ResolvedProducerOptions, producerId: Buffer, made: string, window: SendWindow, open: OpenBatch, counters: SpoolCounters, writerAway: () => boolean, firstSegment = 0) {
    this.#spool = new WindowSpool(opts.spoolDir, producerId, made, opts.endpoint, counters, firstSegment)
    this.#window = window
    this.#open = open
    this.#onFull = opts.onFull
    this.#highWaterMark = opts.highWaterMark
    this.#writerAway = writerAway
  }

  /** The next spool segment of this producer (0 with no spool). */
  get nextSegment (): number {
    return this.#spool.nextSegment
  }

  /** True while the spool holds batches without a receipt: nothing later goes through the socket. */
  get holding (): boolean {
    return this.#spool.moving(this.#window.firstSeq)
  }

  /**
   * A batch was just sealed: copied while earlier copies wait for their receipt and the writer
   * is away; moved, with everything held, while the spool holds batches without a receipt and
   * the writer is away, and past `highWaterMark` with `onFull: 'spool'` or while the spool holds
   * such batches.
   */
  sealed (): void {
    const away = this.#writerAway()
    if (away && this.#spool.copying(this.#window.firstSeq)) this.#spool.copyNew(this.#window)
    const pastMark = this.#window.bytes >= this.#highWaterMark
    if (this.holding ? pastMark || away : pastMark && this.#onFull === 'spool') this.moveAll()
  }

  /**
   * True when `heldBytes` (the open batch's included) reach `highWaterMark` while the spool holds
   * batches without a receipt: what is held must follow them there, whatever `onFull` says.
   */
  pastMark (heldBytes: number): boolean {
    return heldBytes >= this.#highWaterMark && this.holding
  }

  /**
   * Moves what has no receipt to the spool (see WindowSpool.moveAll); false with no spool, or
   * when it failed. With the writer connected, it gets the segment at once.
   */
  moveAll (): boolean {
    const moved = this.#spool.moveAll(this.#window, (payload) => this.#open.release(payload, false))
    if (moved && !this.#writerAway()) this.#spool.seal()
    return moved
  }

  /** A data connection is ready: the writer gets at once the segment it must take first. */
  connected (): void {
    if (this.holding) this.#spool.seal()
  }

  /** Copies what has no receipt and is not in the spool yet (see WindowSpool.copyNew). */
  copyNew (): boolean {
    return this.#spool.copyNew(this.#window)
  }

  /** The early phase's batches through `last` are in the segment at `path` (see WindowSpool.adoptEarly). */
  adoptEarly (path: string, last: number, moved: boolean, writerAway: boolean): void {
    this.#spool.adoptEarly(path, last, moved, writerAway)
  }

  /** The writer has every batch through `seq`. */
  receipted (seq: number): void {
    this.#spool.receipted(seq)
  }

  /** Hands the open segment to the writer now. */
  handOver (): void {
    this.#spool.seal()
  }
}
