import { closeSync, openSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { ClosedError, FileError, InvalidOptionError } from '../shared/errors.js'
import { ProcessLock } from './process-lock.js'
import { makeDirsSync } from '../shared/make-dirs.js'

/** Options of `flockDestination()`. */
export interface FlockDestinationOptions {
  /** Log file every producer appends to; created with its parent directories. */
  file: string
  /** Lock file every producer of `file` must share. Default: `${file}.lock`. */
  lockFile?: string
}

/** `FlockDestinationOptions` with every default applied. */
export interface ResolvedFlockDestinationOptions {
  file: string
  lockFile: string
}

/** Checks the options and applies the defaults; throws `LOGFUNNEL_ERR_INVALID_OPTION`. */
export function resolveFlockDestinationOptions (options: FlockDestinationOptions): ResolvedFlockDestinationOptions {
  if (options === null || typeof options !== 'object') {
    throw new InvalidOptionError('options must be an object like { file: "/var/log/app.log" }')
  }
  const { file, lockFile = `${options.file}.lock` } = options
  if (typeof file !== 'string' || file.length === 0) {
    throw new InvalidOptionError('file must be a non-empty string')
  }
  if (typeof lockFile !== 'string' || lockFile.length === 0) {
    throw new InvalidOptionError('lockFile must be a non-empty string')
  }
  if (lockFile === file) {
    throw new InvalidOptionError('lockFile must differ from file')
  }
  return { file, lockFile }
}

/**
 * A pino destination that appends each record to a file shared by many processes, holding an
 * exclusive `ProcessLock` around every write: the lock-based baseline logfunnel is measured
 * against. Build it with `flockDestination()`.
 *
 * Each `write()` is synchronous: take the lock (blocking the thread while another process
 * holds it), append the whole record with O_APPEND (looping on partial writes), release the
 * lock. Nothing is buffered, so there is no backpressure, `flush()`/`flushSync()` have nothing
 * to do, and a record is in the OS page cache when `write()` returns: it survives the process
 * exiting or crashing, not the machine losing power (there is no fsync).
 *
 * `write()` throws `LOGFUNNEL_ERR_FILE` when the append fails, `LOGFUNNEL_ERR_LOCK_FILE` when
 * the lock fails, and `LOGFUNNEL_ERR_CLOSED` after `end()`. After `end()` it behaves as pino's own
 * destination (sonic-boom, which throws `SonicBoom destroyed`): `write()`, `flushSync()` and
 * `flush()` without a callback throw at the call, where the caller can catch it; `flush(cb)`
 * passes the error to `cb`. Nothing is thrown or emitted later from a deferred callback (no
 * `'error'` event, which with no listener would end the process), and `end()` again does nothing.
 */
export class FlockDestination {
  /** The log file. */
  readonly file: string
  /** The lock file guarding `file`. */
  readonly lockFile: string
  #fd: number | null
  #lock: ProcessLock

  constructor (options: FlockDestinationOptions) {
    const { file, lockFile } = resolveFlockDestinationOptions(options)
    this.file = file
    this.lockFile = lockFile
    this.#lock = new ProcessLock(lockFile)
    try {
      makeDirsSync(dirname(file))
      this.#fd = openSync(file, 'a')
    } catch (err) {
      this.#lock.close()
      throw new FileError(file, { cause: err })
    }
  }

  /** pino recognises a destination by this flag, so `pino(flockDestination(...))` works. */
  get writable (): boolean {
    return this.#fd !== null
  }

  /** Appends `line` (pino passes one JSON record ending in a newline) under the lock. */
  write (line: string): boolean {
    const fd = this.#fd
    if (fd === null) throw new ClosedError()
    const buf = Buffer.from(line)
    this.#lock.lock()
    try {
      let offset = 0
      while (offset < buf.length) {
        const written = writeSync(fd, buf, offset, buf.length - offset)
        // A regular file never accepts 0 bytes of a non-empty write; don't spin under the lock.
        if (written === 0) throw new Error('write(2) accepted 0 bytes')
        offset += written
      }
    } catch (err) {
      throw new FileError(this.file, { cause: err })
    } finally {
      this.#lock.unlock()
    }
    return true
  }

  /**
   * Calls `callback` on the next tick, with `LOGFUNNEL_ERR_CLOSED` after `end()`. Without a
   * callback there is nothing to wait for, and after `end()` it throws `LOGFUNNEL_ERR_CLOSED`, as
   * sonic-boom does (it dropped the error unseen).
   */
  flush (callback?: (err?: Error | null) => void): void {
    if (callback === undefined) {
      this.flushSync()
      return
    }
    process.nextTick(callback, this.#fd === null ? new ClosedError() : null)
  }

  /** Nothing is buffered; throws `LOGFUNNEL_ERR_CLOSED` after `end()`, like sonic-boom. */
  flushSync (): void {
    if (this.#fd === null) throw new ClosedError()
  }

  /** Closes the log file and the lock file. Idempotent; throws `LOGFUNNEL_ERR_FILE` if close fails. */
  end (): void {
    const fd = this.#fd
    if (fd === null) return
    this.#fd = null
    this.#lock.close()
    try {
      closeSync(fd)
    } catch (err) {
      throw new FileError(this.file, { cause: err })
    }
  }

  /** Same as `end()`. */
  close (): void {
    this.end()
  }
}

/**
 * Creates a pino destination that appends every record to `file` under an exclusive flock on
 * `lockFile` (default `${file}.lock`), so many processes can share one log file without torn
 * or interleaved lines. See `FlockDestination` for the behaviour and error codes; options are
 * checked here and fail with `LOGFUNNEL_ERR_INVALID_OPTION`.
 *
 * @example
 * ```ts
 * import pino from 'pino'
 * const dest = flockDestination({ file: '/var/log/app.log' })
 * const logger = pino({}, dest)
 * logger.info({ user: 42 }, 'signed in')
 * dest.end()
 * ```
 */
export function flockDestination (options: FlockDestinationOptions): FlockDestination {
  return new FlockDestination(options)
}
