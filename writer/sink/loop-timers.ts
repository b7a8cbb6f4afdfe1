import { MAX_TIMER_MS } from '../../shared/units.js'

/**
 * Wake-ups of the sink's write loop: the loop waits in `idle()` until `wakeUp()` (new data,
 * a reopen) or a timer (rotation time, a retry). `fireAll()` runs every pending timer at once,
 * for a deadline that ends all waiting.
 */
export class LoopTimers {
  #wake: (() => void) | undefined
  #timers = new Map<NodeJS.Timeout, () => void>()

  async idle (): Promise<void> {
    await new Promise<void>((resolve) => { this.#wake = resolve })
  }

  wakeUp (): void {
    const wake = this.#wake
    this.#wake = undefined
    wake?.()
  }

  /**
   * Wakes the loop (or calls `fn`) at `time`. Only `ref` timers keep the process alive: retry
   * waits do, rotation times do not.
   */
  at (time: number, fn: () => void = () => this.wakeUp(), ref = false): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer)
      // Timers run on a monotonic clock and may fire a millisecond before Date.now() reaches
      // `time`; the loop compares with Date.now(), so wait until it agrees.
      if (Date.now() < time) this.at(time, fn, ref)
      else fn()
    }, Math.min(Math.max(0, time - Date.now()), MAX_TIMER_MS))
    if (!ref) timer.unref()
    this.#timers.set(timer, fn)
  }

  /** Resolves after `ms` (a duration: not moved by a wall clock stepped back), or at `fireAll()`. */
  async sleep (ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#timers.delete(timer)
        resolve()
      }, Math.min(ms, MAX_TIMER_MS))
      this.#timers.set(timer, resolve)
    })
  }

  fireAll (): void {
    const pending = [...this.#timers]
    this.clear()
    for (const [, fn] of pending) fn()
    this.wakeUp()
  }

  clear (): void {
    for (const timer of this.#timers.keys()) clearTimeout(timer)
    this.#timers.clear()
  }
}
