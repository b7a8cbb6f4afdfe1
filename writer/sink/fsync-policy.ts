import type { FsyncPolicy } from '../../shared/options.js'
import { MAX_TIMER_MS } from '../../shared/units.js'

/**
 * Decides when the sink fsyncs, for the `fsync` option:
 * - `'batch'`: after writing, before the bytes count as written (and are receipted). One
 *   fsync covers every write that returned before it began, and writing goes on while it
 *   runs, so one fsync covers many batches (group commit).
 * - a number of ms: the bytes count as written at once (they are in the OS page cache); an
 *   fsync follows at most that long after the first write not yet synced.
 * - `'off'`: never during writing (the sink still fsyncs on rotation and at the end).
 */
export class FsyncSchedule {
  readonly policy: FsyncPolicy
  readonly #wake: () => void
  #dirty = false
  /** `performance.now()` of the last fsync: a wall clock stepped back must not hold the next one off. */
  #lastSyncAt = -Infinity
  #timer: NodeJS.Timeout | undefined

  /** `wake` is called when an interval fsync falls due. */
  constructor (policy: FsyncPolicy, wake: () => void) {
    this.policy = policy
    this.#wake = wake
  }

  /** After a completed write: true when it must be fsynced before its bytes count as written. */
  afterWrite (): boolean {
    if (this.policy === 'batch') return true
    if (this.policy === 'off') return false
    this.#dirty = true
    this.#arm(this.policy)
    return false
  }

  /** True when an interval fsync is due now. */
  get due (): boolean {
    return this.#dirty && typeof this.policy === 'number' && performance.now() >= this.#lastSyncAt + this.policy
  }

  /** Records an fsync that covered everything written so far. */
  synced (): void {
    this.#dirty = false
    this.#lastSyncAt = performance.now()
  }

  #arm (intervalMs: number): void {
    if (this.#timer !== undefined) return
    const delay = Math.max(0, this.#lastSyncAt + intervalMs - performance.now())
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      // Timers may fire a millisecond before performance.now() agrees (they round to whole ms).
      if (this.#dirty && !this.due) this.#arm(intervalMs)
      else this.#wake()
    }, Math.min(delay, MAX_TIMER_MS))
    this.#timer.unref()
  }

  cancel (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }
}
