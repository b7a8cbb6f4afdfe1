import type { OnFull, ResolvedProducerOptions } from '../shared/options.js'
import type { OpenBatch } from './open-batch.js'
import type { SendWindow } from './send-window.js'
import { WindowSpool, type SpoolCounters } from './window-spool.js'

/**
 * When a BatchSender's batches go to the spool; WindowSpool writes them. Moved there (out of
 * memory): past `highWaterMark` with `onFull: 'spool'`, after a 'block' wait that expired, when
 * the writer refuses a batch as too large, at exit; while the spool holds batches without a
 * receipt, each new batch follows them there, so the writer sees the sequence in order.
 * Copied there (kept in memory and sent too): while the writer is away (`spoolAfterMs`), and
 * when the transport's flush reaches its deadline.
 */
export class SpoolPolicy {
  readonly #spool: WindowSpool
  readonly #window: SendWindow
  readonly #open: OpenBatch
  readonly #onFull: OnFull
  readonly #highWaterMark: number

  constructor (opts: ResolvedProducerOptions, producerId: Buffer, window: SendWindow, open: OpenBatch, counters: SpoolCounters) {
    this.#spool = new WindowSpool(opts.spoolDir, producerId, opts.endpoint, counters)
    this.#window = window
    this.#open = open
    this.#onFull = opts.onFull
    this.#highWaterMark = opts.highWaterMark
  }

  /** The next spool segment of this producer (0 with no spool). */
  get nextSegment (): number {
    return this.#spool.nextSegment
  }

  /** True while the spool holds batches without a receipt: the writer takes them, and all after them, from there. */
  get holding (): boolean {
    return this.#spool.moving(this.#window.firstSeq)
  }

  /**
   * A batch was just sealed: copied while earlier copies wait for their receipt; moved, with
   * everything held, while the spool holds batches without a receipt, or past `highWaterMark`
   * with `onFull: 'spool'`.
   */
  sealed (): void {
    if (this.#spool.copying(this.#window.firstSeq)) this.#spool.copyNew(this.#window)
    if (this.holding || (this.#onFull === 'spool' && this.#window.bytes >= this.#highWaterMark)) this.moveAll()
  }

  /** Moves what has no receipt to the spool (see WindowSpool.moveAll); false with no spool, or when it failed. */
  moveAll (): boolean {
    return this.#spool.moveAll(this.#window, (payload) => this.#open.release(payload, false))
  }

  /** Copies what has no receipt and is not in the spool yet (see WindowSpool.copyNew). */
  copyNew (): boolean {
    return this.#spool.copyNew(this.#window)
  }

  /** Hands the open segment to the writer now. */
  handOver (): void {
    this.#spool.seal()
  }
}
