import { debuglog } from 'node:util'
import type { OnFull } from '../shared/options.js'

const debug = debuglog('logfunnel')

/**
 * Room under `highWaterMark`, the `onFull` side of a BatchSender: who waits for it (`'block'`),
 * how long they may, and whether records past the mark are dropped.
 *
 * A 'block' wait that reaches `blockTimeoutMs` ends (`expired`): the waiting caller holds a
 * thread where no signal handler runs, so an application blocked for good would not even stop
 * on SIGTERM. The sender then moves what is held to the spool; with no spool it calls
 * `overflow()`: past the mark records are dropped, as with 'drop', until `freed()` says the
 * writer confirmed enough.
 */
export class SenderRoom {
  readonly #onFull: OnFull
  readonly #highWaterMark: number
  readonly #blockTimeoutMs: number
  /** Bytes held now (the open batch and the window). */
  readonly #held: () => number
  #waiters: Array<() => void> = []
  /** Since when a caller waits (`performance.now()`, as `expired()`'s `now`); 0 while none does. */
  #waitingSince = 0
  #overflowing = false

  constructor (opts: { onFull: OnFull, highWaterMark: number, blockTimeoutMs: number }, held: () => number) {
    this.#onFull = opts.onFull
    this.#highWaterMark = opts.highWaterMark
    this.#blockTimeoutMs = opts.blockTimeoutMs
    this.#held = held
  }

  /** True while the bytes held stay under `highWaterMark`, or past an expired wait with no spool. */
  get available (): boolean {
    return this.#overflowing || this.#held() < this.#highWaterMark
  }

  /** Whether `bytes` more are taken (false: drop them): 'drop', or an overflow, past the mark. */
  fits (bytes: number): boolean {
    return (this.#onFull !== 'drop' && !this.#overflowing) || this.#held() + bytes <= this.#highWaterMark
  }

  /** Resolves once there is room (`freed`), the wait expired, or `release()`. */
  async wait (): Promise<void> {
    if (this.available) return
    if (this.#waitingSince === 0) this.#waitingSince = performance.now()
    await new Promise<void>((resolve) => this.#waiters.push(resolve))
  }

  /**
   * True once a caller has waited `blockTimeoutMs` (never with 0), or, with `now` for `early`,
   * at once while one waits; the wait is then over.
   */
  expired (now: number, early = false): boolean {
    if (this.#waitingSince === 0) return false
    if (!early && (this.#blockTimeoutMs === 0 || now - this.#waitingSince < this.#blockTimeoutMs)) return false
    this.#waitingSince = 0
    return true
  }

  /**
   * Ends a wait that has expired (see expired(); `away`: at once): `spoolHeld()` moves what is
   * held to the spool, and returns false when it could not (no spool): then records past the
   * mark are dropped (overflow()). The waiters go on either way.
   */
  endExpired (now: number, away: boolean, spoolHeld: () => boolean): void {
    if (!this.expired(now, away)) return
    const spooled = spoolHeld()
    if (!spooled) this.overflow()
    debug('waited %d ms for room: %s', this.#blockTimeoutMs, spooled ? 'what is held went to the spool' : 'records past highWaterMark are dropped')
    this.release()
  }

  /** After an expired wait with nothing moved to a spool: drop past the mark until freed. */
  overflow (): void {
    if (!this.available) this.#overflowing = true
  }

  /** After receipts: true when the bytes held are under the mark again (the waiters go on). */
  freed (): boolean {
    if (this.#held() >= this.#highWaterMark) return false
    this.#overflowing = false
    this.#waitingSince = 0
    this.release()
    return true
  }

  /** Lets every waiter go on (the wait expired, or the sender closed). */
  release (): void {
    for (const resolve of this.#waiters.splice(0)) resolve()
  }
}
