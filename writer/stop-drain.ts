import { sleep, type Wait } from './cancellable-waits.js'
import type { SpoolIngester } from './spool-ingest.js'

/**
 * The drain of a writer's stop: the receive loop goes on until the queue is quiet (no message
 * for `drainIdleMs`, or no producer connected at the stop) and the spool ingester has taken
 * every spool file ready at the stop or landing since (SpoolIngester.takeReady()), at most
 * `drainTimeoutMs` in all.
 *
 * Before, the spool got only the queue's `drainIdleMs`: a producer's close() that ended with the
 * writer judged away (its rest in the spool) right before the stop left files for the next
 * writer, and the file checked right after the stop was short. With nothing in the spool the
 * drain is what it was: the ingester is idle after one scan.
 */
export class StopDrain {
  readonly #idleMs: number
  readonly #deadline: number
  readonly #spool: SpoolIngester | undefined
  #quiet: boolean

  /** Starts the drain now; `quiet`: no producer is connected, nothing received waits. */
  constructor (opts: { drainIdleMs: number, drainTimeoutMs: number }, spool: SpoolIngester | undefined, quiet: boolean) {
    this.#idleMs = opts.drainIdleMs
    this.#deadline = performance.now() + opts.drainTimeoutMs
    this.#spool = spool
    this.#quiet = quiet
    spool?.takeReady()
  }

  /**
   * What the loop races against its next message: `drainIdleMs` (or the deadline, if sooner);
   * once quiet, the spool taken or the deadline. When it settles first, call `timedOut()`.
   */
  wait (): Wait {
    const left = Math.max(0, this.#deadline - performance.now())
    const timer = sleep(this.#quiet ? left : Math.min(this.#idleMs, left))
    const taken = this.#quiet ? this.#spool?.whenIdle() : undefined
    if (taken === undefined) return timer
    return {
      promise: Promise.race([timer.promise, taken.promise]),
      cancel: () => {
        timer.cancel()
        taken.cancel()
      }
    }
  }

  /** `wait()` settled before a message: the queue is quiet. True when the drain is over. */
  timedOut (): boolean {
    this.#quiet = true
    return (this.#spool?.idle ?? true) || this.expired
  }

  /** A message came: the queue must be quiet again for `drainIdleMs`. */
  received (): void {
    this.#quiet = false
  }

  /** `drainTimeoutMs` has passed since the stop. */
  get expired (): boolean {
    return performance.now() >= this.#deadline
  }
}
