/**
 * Every error logfunnel throws, rejects with or emits. Callers match on `code`, never on the
 * message text. Each code is listed in README.md.
 *
 * @example
 * ```ts
 * await dest.flush(5000).catch((err) => {
 *   if (err.code === 'LOGFUNNEL_ERR_FLUSH_TIMEOUT') console.error(err.message)
 * })
 * ```
 */
/** Every code logfunnel uses; README.md's error table lists the same (a test checks). */
export const ERROR_CODES = Object.freeze([
  'LOGFUNNEL_ERR_INVALID_OPTION', 'LOGFUNNEL_ERR_USAGE', 'LOGFUNNEL_ERR_MISSING_DEPENDENCY', 'LOGFUNNEL_ERR_ENDPOINT_IN_USE', 'LOGFUNNEL_ERR_FILE_IN_USE',
  'LOGFUNNEL_ERR_BIND', 'LOGFUNNEL_ERR_UNSAFE_ENDPOINT', 'LOGFUNNEL_ERR_CONNECT', 'LOGFUNNEL_ERR_HANDSHAKE', 'LOGFUNNEL_ERR_FILE',
  'LOGFUNNEL_ERR_RECORD_TOO_LARGE', 'LOGFUNNEL_ERR_FLUSH_TIMEOUT', 'LOGFUNNEL_ERR_CLOSE_TIMEOUT', 'LOGFUNNEL_ERR_CLOSED',
  'LOGFUNNEL_ERR_WRITER_START', 'LOGFUNNEL_ERR_WRITER_STOP', 'LOGFUNNEL_ERR_LOCK_FILE', 'LOGFUNNEL_ERR_LOCK_STATE',
  'LOGFUNNEL_ERR_LOCK_CLOSED', 'LOGFUNNEL_ERR_BENCH', 'LOGFUNNEL_ERR_INTERNAL', 'LOGFUNNEL_ERR_SENDER_FAILED'
] as const)

/** A code of ERROR_CODES. */
export type LogfunnelErrorCode = typeof ERROR_CODES[number]

export class LogfunnelError extends Error {
  readonly code: LogfunnelErrorCode

  constructor (code: LogfunnelErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'LogfunnelError'
    this.code = code
  }
}

/** An option or a rule between options was broken; thrown at construction. */
export class InvalidOptionError extends LogfunnelError {
  constructor (message: string) {
    super('LOGFUNNEL_ERR_INVALID_OPTION', message)
    this.name = 'InvalidOptionError'
  }
}

/** Command-line usage error: unknown flag, missing value, unknown subcommand. */
export class UsageError extends LogfunnelError {
  constructor (message: string) {
    super('LOGFUNNEL_ERR_USAGE', message)
    this.name = 'UsageError'
  }
}

/** Another writer already serves this endpoint (it holds the endpoint's lock file). */
export class EndpointInUseError extends LogfunnelError {
  constructor (endpoint: string, lockPath: string, options?: { cause?: unknown }) {
    super('LOGFUNNEL_ERR_ENDPOINT_IN_USE',
      `endpoint ${endpoint} is already served by another writer (lock ${lockPath} is held)`, options)
    this.name = 'EndpointInUseError'
  }
}

/** Another writer writes the log file (through another endpoint). */
export class FileInUseError extends LogfunnelError {
  constructor (file: string, lockPath: string, options?: { cause?: unknown }) {
    super('LOGFUNNEL_ERR_FILE_IN_USE',
      `${file} is already written by another writer (lock ${lockPath} is held): two writers of one file would rotate it and save its state under each other; give each writer its own file`, options)
    this.name = 'FileInUseError'
  }
}

/** An optional package that this feature needs is not installed. */
export class MissingDependencyError extends LogfunnelError {
  constructor (pkg: string, user: string, options?: { cause?: unknown, why?: string }) {
    super('LOGFUNNEL_ERR_MISSING_DEPENDENCY',
      `${user} needs the optional package ${pkg}, which ${options?.why ?? `is not installed or did not build (it is a native addon built with node-gyp: install a C++ compiler and make, then npm install ${pkg})`}`, options)
    this.name = 'MissingDependencyError'
  }
}

/** The writer could not bind its endpoint (address in use, bad address, permissions). */
export class BindError extends LogfunnelError {
  constructor (endpoint: string, options?: { cause?: unknown }) {
    const reason = (options?.cause as Error | undefined)?.message ?? 'unknown reason'
    super('LOGFUNNEL_ERR_BIND', `cannot bind ${endpoint}: ${reason}`, options)
    this.name = 'BindError'
  }
}

/**
 * The log file cannot be opened or written. At run time the writer retries with backoff:
 * `op` names the failed operation, `fsCode` the OS error (`ENOSPC`, `EACCES`, ...) and
 * `retryInMs` when the next attempt is due.
 */
export class FileError extends LogfunnelError {
  readonly file: string
  readonly op: string | undefined
  readonly fsCode: string | undefined
  readonly retryInMs: number | undefined

  constructor (file: string, options?: { cause?: unknown, op?: string, retryInMs?: number }) {
    const cause = options?.cause as (Error & { code?: unknown }) | undefined
    const reason = cause?.message ?? 'unknown reason'
    super('LOGFUNNEL_ERR_FILE', `cannot ${options?.op ?? 'write'} log file ${file}: ${reason}`, options)
    this.name = 'FileError'
    this.file = file
    this.op = options?.op
    this.fsCode = typeof cause?.code === 'string' ? cause.code : undefined
    this.retryInMs = options?.retryInMs
  }
}

/** A record is larger than the wire limit; the producer rejects it locally. */
export class RecordTooLargeError extends LogfunnelError {
  constructor (bytes: number, maxFrameBytes: number) {
    super('LOGFUNNEL_ERR_RECORD_TOO_LARGE',
      `record of ${bytes} bytes exceeds maxFrameBytes (${maxFrameBytes} bytes); it was not sent`)
    this.name = 'RecordTooLargeError'
  }
}

/** `flush()` did not see receipts for every record before its deadline. */
export class FlushTimeoutError extends LogfunnelError {
  /**
   * True when the flush ended before its deadline: the writer did not answer (`spoolAfterMs`)
   * and every record without a receipt was in the spool (the transport's flush).
   */
  readonly writerAway: boolean

  constructor (deadlineMs: number, unreceipted?: number, where?: string, writerAway = false) {
    const detail = unreceipted === undefined ? '' : `: ${unreceipted} records still without a receipt${where === undefined ? '' : `, ${where}`}`
    const head = writerAway ? `flush ended before its ${deadlineMs} ms deadline: the writer does not answer` : `flush took longer than ${deadlineMs} ms`
    super('LOGFUNNEL_ERR_FLUSH_TIMEOUT', `${head}${detail}`)
    this.writerAway = writerAway
    this.name = 'FlushTimeoutError'
  }
}

/** `close()` did not finish before its deadline; unreceipted records may be lost. */
export class CloseTimeoutError extends LogfunnelError {
  /** Records without a receipt that went to the spool (the writer ingests them). */
  readonly spooled: number | undefined
  /** The spool directory they went to. */
  readonly spoolDir: string | undefined
  /**
   * Records without a receipt not kept (no spool, or it could not be written): lost, except those
   * already sent, which a writer that is only slow or stopped may still write ("may be lost").
   */
  readonly lost: number | undefined
  /**
   * True when close() ended before its deadline: the writer did not answer (`spoolAfterMs`) and
   * every record without a receipt was in the spool.
   */
  readonly writerAway: boolean
  /** How close() ended, as the message begins: "close ended before its 10000 ms deadline: the writer does not answer". */
  readonly ending: string

  constructor (deadlineMs: number, detail: CloseTimeoutDetail = {}) {
    const parts: string[] = []
    if (detail.spooled !== undefined && detail.spooled > 0) parts.push(`${detail.spooled} records without a receipt went to the spool in ${detail.spoolDir ?? '?'}, where the writer ingests them`)
    // With `why` the head says why there was nothing to wait for; a spool that failed is said still.
    const quiet = detail.why !== undefined && (detail.spoolError === undefined || detail.spoolError === null)
    // With `why` the sender held none of them (it had stopped taking, or ended): they never left
    // this process. Without, some were sent, and a writer that is only slow or stopped still
    // writes those it holds in its socket (before, "are lost": 100 of 100 said so were written).
    const lostSaid = detail.why !== undefined ? 'are lost' : 'may be lost'
    if (detail.lost !== undefined && detail.lost > 0) parts.push(`${detail.lost} records without a receipt ${lostSaid}${quiet ? '' : ` (${lostWhy(detail.spoolError)})`}`)
    // With `why`, nothing was waited for: there was nobody to wait for.
    const head = detail.why !== undefined
      ? `close: ${detail.why}`
      : detail.writerAway === true ? `close ended before its ${deadlineMs} ms deadline: the writer does not answer` : `close took longer than ${deadlineMs} ms`
    super('LOGFUNNEL_ERR_CLOSE_TIMEOUT', `${head}${parts.length === 0 ? '' : ': ' + parts.join('; ')}`)
    this.name = 'CloseTimeoutError'
    this.spooled = detail.spooled
    this.spoolDir = detail.spoolDir
    this.lost = detail.lost
    this.writerAway = detail.writerAway === true
    this.ending = head
  }
}

/** What became of the records a timed-out close() left without a receipt. */
export interface CloseTimeoutDetail {
  spooled?: number
  spoolDir?: string
  lost?: number
  /** Why there was nothing to wait for (the sender thread is gone), when that is so. */
  why?: string
  /** The spool's last failure (SenderStats' `lastSpoolError`): said as why `lost` are lost. */
  spoolError?: string | null
  /** close() ended before its deadline: the writer is away and the rest was in the spool. */
  writerAway?: boolean
}

/** Why records without a receipt are lost when nothing else is said: the spool's failure, if it had one. */
function lostWhy (spoolError: string | null | undefined): string {
  return spoolError === undefined || spoolError === null ? 'no spool to keep them, or it could not be written' : `the spool could not be written: ${spoolError}`
}

/** The destination was used after `close()`. */
export class ClosedError extends LogfunnelError {
  constructor (message = 'the destination is closed') {
    super('LOGFUNNEL_ERR_CLOSED', message)
    this.name = 'ClosedError'
  }
}

/** A child writer did not print its ready line in time, or exited before it. */
export class WriterStartError extends LogfunnelError {
  constructor (message: string, options?: { cause?: unknown }) {
    super('LOGFUNNEL_ERR_WRITER_START', message, options)
    this.name = 'WriterStartError'
  }
}

/** A child writer did not stop in time after SIGTERM, or exited without its summary. */
export class WriterStopError extends LogfunnelError {
  constructor (message: string) {
    super('LOGFUNNEL_ERR_WRITER_STOP', message)
    this.name = 'WriterStopError'
  }
}

/** The lock file cannot be opened, locked or unlocked (the OS call failed). */
export class LockFileError extends LogfunnelError {
  constructor (lockPath: string, options?: { cause?: unknown }) {
    const reason = (options?.cause as Error | undefined)?.message ?? 'unknown reason'
    super('LOGFUNNEL_ERR_LOCK_FILE', `cannot use lock file ${lockPath}: ${reason}`, options)
    this.name = 'LockFileError'
  }
}

/** A `ProcessLock` was used out of order: unlocked while not held, or locked while held. */
export class LockStateError extends LogfunnelError {
  constructor (message: string) {
    super('LOGFUNNEL_ERR_LOCK_STATE', message)
    this.name = 'LockStateError'
  }
}

/** A `ProcessLock` was used after `close()`. */
export class LockClosedError extends LogfunnelError {
  constructor (lockPath: string) {
    super('LOGFUNNEL_ERR_LOCK_CLOSED', `the lock on ${lockPath} is closed`)
    this.name = 'LockClosedError'
  }
}

/** The benchmark harness failed: a child crashed, hung, or reported counts that do not add up. */
export class BenchError extends LogfunnelError {
  constructor (message: string, options?: { cause?: unknown }) {
    super('LOGFUNNEL_ERR_BENCH', message, options)
    this.name = 'BenchError'
  }
}

/**
 * The writer refuses an endpoint that would let other users in: an ipc socket directory owned
 * by another user or writable by others, or a tcp address beyond loopback without CURVE.
 */
export class UnsafeEndpointError extends LogfunnelError {
  constructor (endpoint: string, reason: string) {
    super('LOGFUNNEL_ERR_UNSAFE_ENDPOINT', `refusing endpoint ${endpoint}: ${reason}`)
    this.name = 'UnsafeEndpointError'
  }
}

/**
 * A producer reached no writer within `connectTimeoutMs`: the socket is missing, refuses the
 * connection, or is not ours to use (EACCES). The producer keeps its records and keeps trying.
 */
export class ConnectError extends LogfunnelError {
  constructor (endpoint: string, timeoutMs: number, reason: string, options?: { cause?: unknown }) {
    super('LOGFUNNEL_ERR_CONNECT', `no writer answered at ${endpoint} within ${timeoutMs} ms: ${reason}`, options)
    this.name = 'ConnectError'
  }
}

/**
 * A producer's connection is accepted but the ZeroMQ handshake never completes within
 * `connectTimeoutMs`: most often CURVE refused (wrong `curveServerKey`, or `curvePublicKey` not
 * in the writer's `curveAllowedKeys`), or CURVE on one side only.
 */
export class HandshakeError extends LogfunnelError {
  constructor (endpoint: string, timeoutMs: number, reason: string) {
    super('LOGFUNNEL_ERR_HANDSHAKE', `${endpoint} accepts connections but no writer answered within ${timeoutMs} ms: ${reason}`)
    this.name = 'HandshakeError'
  }
}

/**
 * An exception inside a producer's sender (a bug, or a fault of the thread's environment): the
 * sender put what had no receipt into the spool and a new sender goes on with the records that
 * follow. Reported as an `'error'` event (funnel) or a process warning; the process goes on.
 */
export class SenderFailedError extends LogfunnelError {
  constructor (cause: unknown, detail: { spooledRecords: number, lostRecords: number, restarted: boolean }) {
    const what = cause instanceof Error ? cause.message : String(cause)
    super('LOGFUNNEL_ERR_SENDER_FAILED',
      `the sender failed (${what}): ${detail.spooledRecords} records without a receipt went to the spool, ${detail.lostRecords} could not be kept; ` +
      (detail.restarted ? 'a new sender goes on' : 'too many failures, records from now on are dropped and counted'), { cause })
    this.name = 'SenderFailedError'
  }
}
