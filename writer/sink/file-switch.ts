import { RETRY_FIRST_MS, RETRY_MAX_MS } from './fault-retry.js'
import { renameForRotation, RotationClock } from './rotation.js'
import type { SinkFs } from './sink-fs.js'

/**
 * A pending switch to a new file: a rotation (rename, then open) or a reopen (SIGHUP, open
 * only). A switch that fails is retried with backoff; a rotation whose rename succeeded
 * remembers where the old file went, so a retry only opens the new one.
 */
export class FileSwitch {
  rotate: boolean
  /** Where the old file was renamed to; '' when there was nothing to rename; undefined before. */
  rotatedTo: string | undefined
  /** Not retried before this time (ms since the epoch); 0 for at once. */
  notBefore = 0
  failures = 0
  #delayMs = RETRY_FIRST_MS

  constructor (rotate: boolean) {
    this.rotate = rotate
  }

  /** The attempt failed at `now`: returns the delay before the next one (doubling, capped). */
  failed (now: number): number {
    const delayMs = this.#delayMs
    this.failures++
    this.notBefore = now + delayMs
    this.#delayMs = Math.min(delayMs * 2, RETRY_MAX_MS)
    return delayMs
  }
}

/**
 * When the sink switches files: by size (`rotateSizeBytes`, before a batch that would pass
 * it), by interval (`rotateIntervalMs`, at every multiple since the epoch) or on request (a
 * reopen). A file that holds nothing of the producers' (empty, or checkpoint lines only) is
 * never rotated. `wake` is called when a switch is requested, `at` with each interval boundary.
 */
export class SwitchPlan {
  /** The switch waiting to happen, if any. */
  pending: FileSwitch | undefined
  readonly #rotateSizeBytes: number
  readonly #clock: RotationClock
  readonly #timers: { wakeUp: () => void, at: (timeMs: number) => void }
  #lastStamp = 0

  constructor (rotateSizeBytes: number, rotateIntervalMs: number, timers: { wakeUp: () => void, at: (timeMs: number) => void }) {
    this.#rotateSizeBytes = rotateSizeBytes
    this.#clock = new RotationClock(rotateIntervalMs)
    this.#timers = timers
  }

  /** At open: a file last written in an earlier interval rotates first. */
  start (now: number, size: number, mtimeMs: number): void {
    if (this.#clock.start(now, size, mtimeMs)) this.request(true)
    if (this.#clock.next !== Infinity) this.#timers.at(this.#clock.next)
  }

  /** Asks for a rotation (or a reopen); a rotation wins over a reopen, and it is due at once. */
  request (rotate: boolean): void {
    if (this.pending === undefined) {
      this.pending = new FileSwitch(rotate)
    } else {
      this.pending.rotate ||= rotate
      this.pending.notBefore = 0
    }
    this.#timers.wakeUp()
  }

  /**
   * Requests a rotation when one is due for a file of `size` bytes (`empty`: nothing of the
   * producers' in it) before a batch of `nextBytes`; true when a switch is pending.
   */
  check (now: number, size: number, empty: boolean, nextBytes: number | undefined): boolean {
    if (this.pending?.rotate === true) return true
    if (this.#clock.due(now)) {
      this.#timers.at(this.#clock.next)
      if (!empty) this.request(true)
    }
    if (this.#rotateSizeBytes > 0 && nextBytes !== undefined && !empty && size + nextBytes > this.#rotateSizeBytes) this.request(true)
    return this.pending !== undefined
  }

  /** The rename of the pending rotation, once (a retry after a failed open skips it). */
  async rename (fs: SinkFs, file: string, fd: number): Promise<void> {
    const sw = this.pending
    if (sw?.rotate !== true || sw.rotatedTo !== undefined) return
    const renamed = await renameForRotation(fs, file, fd, this.#lastStamp + 1)
    this.#lastStamp = renamed?.stamp ?? this.#lastStamp
    sw.rotatedTo = renamed?.path ?? ''
  }
}
