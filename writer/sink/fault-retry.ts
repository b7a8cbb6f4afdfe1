import { FileError } from '../../shared/errors.js'
import type { LoopTimers } from './loop-timers.js'

/** Backoff of a failing file operation: 100 ms doubling to 5 s, for as long as the fault lasts. */
export const RETRY_FIRST_MS = 100
export const RETRY_MAX_MS = 5000

/** Unwinds the sink's write loop once `end()`'s deadline gave up on a failing file; never leaves the sink. */
export class Abandoned extends Error {}

/** Ends the retries of an operation whose file is out of reach for good (`attempt()`'s `gone`); never leaves the sink. */
export class OutOfReach extends Error {}

/**
 * Runs the file sink's operations until they succeed: each failure is reported (a FileError
 * with `op` and `retryInMs`), then retried after a backoff, until the fault ends or the sink
 * gives the file up (`abandon()`, after `end()`'s deadline), which throws Abandoned.
 */
export class FaultRetry {
  readonly #file: string
  readonly #timers: LoopTimers
  readonly #report: (err: FileError) => void
  readonly #resumed: (failures: number) => void
  /** Failures since the last success. */
  #faulted = 0
  #abandoned = false

  constructor (file: string, timers: LoopTimers, report: (err: FileError) => void, resumed: (failures: number) => void) {
    this.#file = file
    this.#timers = timers
    this.#report = report
    this.#resumed = resumed
  }

  get abandoned (): boolean {
    return this.#abandoned
  }

  /** From now on every attempt throws Abandoned, and a backoff in progress ends at once. */
  abandon (): void {
    this.#abandoned = true
    this.#timers.fireAll()
  }

  /**
   * Runs `fn` until it succeeds. `firstError`: the operation already failed once (in a commit
   * round), so the first call waits the backoff. `gone`, asked after each backoff: the file is
   * out of reach for good (throws OutOfReach: the caller moves to a new file).
   */
  async attempt<T> (op: string, fn: () => Promise<T>, firstError?: unknown, gone?: () => Promise<boolean>): Promise<T> {
    let delayMs = RETRY_FIRST_MS
    let failed = firstError
    for (;;) {
      try {
        if (failed !== undefined) throw failed
        const value = await fn()
        if (this.#faulted > 0) {
          this.#resumed(this.#faulted)
          this.#faulted = 0
        }
        return value
      } catch (err) {
        failed = undefined
        if (this.#abandoned) throw new Abandoned()
        this.#faulted++
        this.#report(new FileError(this.#file, { cause: err, op, retryInMs: delayMs }))
        await this.#timers.sleep(delayMs)
        if (this.#abandoned) throw new Abandoned()
        if (gone !== undefined && await gone()) throw new OutOfReach()
        delayMs = Math.min(delayMs * 2, RETRY_MAX_MS)
      }
    }
  }
}
