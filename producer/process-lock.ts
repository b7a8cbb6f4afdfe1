import { closeSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import { debuglog } from 'node:util'
import { InvalidOptionError, LockClosedError, LockFileError, LockStateError } from '../shared/errors.js'
import { makeDirsSync } from '../shared/make-dirs.js'
import { loadFlock, type FlockSync } from '../shared/optional-flock.js'

const debug = debuglog('logfunnel')

/** flock(2) with LOCK_NB fails with EWOULDBLOCK when the lock is held; Linux spells it EAGAIN. */
const LOCK_BUSY_CODES: ReadonlySet<unknown> = new Set(['EAGAIN', 'EWOULDBLOCK'])

/**
 * An exclusive advisory lock shared by processes through a lock file, the counterpart of the
 * Python `ProcessLock` (`fcntl.flock(fd, LOCK_EX)` / `LOCK_UN`) that logfunnel replaces.
 *
 * The lock file is opened (and created, with its parent directories) once, in the constructor.
 * The lock belongs to that open file: it is released by `unlock()`, by `close()`, or by the OS
 * when the process exits or dies, so a crashed holder never leaves it stuck. A second
 * `ProcessLock` on the same path in the same process excludes the first just as another
 * process would; calling `lock()` on it while the first is held blocks forever.
 *
 * `lock()` blocks the calling thread, event loop included, with no deadline: a holder that
 * never unlocks stalls every other process waiting on it. Use `tryLock()` to poll instead.
 *
 * Throws `LOGFUNNEL_ERR_MISSING_DEPENDENCY` when the optional package fs-ext is not installed,
 * `LOGFUNNEL_ERR_INVALID_OPTION` for an empty path, `LOGFUNNEL_ERR_LOCK_FILE` when the
 * OS refuses to open or lock the file, `LOGFUNNEL_ERR_LOCK_STATE` for `unlock()` without the
 * lock or `lock()` while already holding it, and `LOGFUNNEL_ERR_LOCK_CLOSED` after `close()`.
 *
 * @example
 * ```ts
 * const lock = new ProcessLock('/var/log/app.log.lock')
 * lock.lock()
 * try {
 *   appendFileSync('/var/log/app.log', line)
 * } finally {
 *   lock.unlock()
 * }
 * lock.close()
 * ```
 */
export class ProcessLock {
  /** The lock file, as given to the constructor. */
  readonly lockPath: string
  #fd: number | null
  #held = false
  readonly #flockSync: FlockSync

  constructor (lockPath: string) {
    if (typeof lockPath !== 'string' || lockPath.length === 0) {
      throw new InvalidOptionError('lockPath must be a non-empty string')
    }
    this.#flockSync = loadFlock('ProcessLock')
    this.lockPath = lockPath
    try {
      makeDirsSync(dirname(lockPath))
      // 'a' creates the file without truncating it; flock(2) ignores the access mode.
      this.#fd = openSync(lockPath, 'a')
    } catch (err) {
      throw new LockFileError(lockPath, { cause: err })
    }
  }

  /** Whether this instance holds the lock now. */
  get held (): boolean {
    return this.#held
  }

  /** Whether `close()` has been called. */
  get closed (): boolean {
    return this.#fd === null
  }

  /**
   * Takes the lock, waiting (blocking the thread) for as long as another holder keeps it.
   *
   * Throws `LOGFUNNEL_ERR_LOCK_STATE` if this instance already holds it (flock would succeed
   * silently, and the first `unlock()` would end the outer critical section too),
   * `LOGFUNNEL_ERR_LOCK_CLOSED` after `close()`, `LOGFUNNEL_ERR_LOCK_FILE` if flock fails.
   */
  lock (): void {
    const fd = this.#acquirable('lock')
    for (;;) {
      try {
        this.#flockSync(fd, 'ex')
        break
      } catch (err) {
        // Only a signal handler installed without SA_RESTART interrupts the wait; wait again.
        if ((err as NodeJS.ErrnoException).code === 'EINTR') continue
        throw new LockFileError(this.lockPath, { cause: err })
      }
    }
    this.#held = true
  }

  /**
   * Takes the lock if nobody holds it and returns true; returns false at once if another
   * holder (process or `ProcessLock` instance) has it. Same errors as `lock()`.
   */
  tryLock (): boolean {
    const fd = this.#acquirable('tryLock')
    try {
      this.#flockSync(fd, 'exnb')
    } catch (err) {
      if (LOCK_BUSY_CODES.has((err as NodeJS.ErrnoException).code)) {
        debug('tryLock %s: held elsewhere', this.lockPath)
        return false
      }
      throw new LockFileError(this.lockPath, { cause: err })
    }
    this.#held = true
    return true
  }

  /**
   * Releases the lock.
   *
   * Throws `LOGFUNNEL_ERR_LOCK_STATE` if this instance does not hold it,
   * `LOGFUNNEL_ERR_LOCK_CLOSED` after `close()`, `LOGFUNNEL_ERR_LOCK_FILE` if flock fails.
   */
  unlock (): void {
    const fd = this.#open()
    if (!this.#held) {
      throw new LockStateError(`unlock() called without holding the lock on ${this.lockPath}`)
    }
    try {
      this.#flockSync(fd, 'un')
    } catch (err) {
      throw new LockFileError(this.lockPath, { cause: err })
    }
    this.#held = false
  }

  /**
   * Closes the lock file, which releases the lock if it is held. Idempotent; the lock file is
   * left in place for the other processes. Throws `LOGFUNNEL_ERR_LOCK_FILE` if close fails.
   */
  close (): void {
    const fd = this.#fd
    if (fd === null) return
    this.#fd = null
    this.#held = false
    try {
      closeSync(fd)
    } catch (err) {
      throw new LockFileError(this.lockPath, { cause: err })
    }
  }

  #open (): number {
    if (this.#fd === null) {
      throw new LockClosedError(this.lockPath)
    }
    return this.#fd
  }

  #acquirable (method: string): number {
    const fd = this.#open()
    if (this.#held) {
      throw new LockStateError(`${method}() called while already holding the lock on ${this.lockPath}`)
    }
    return fd
  }
}
