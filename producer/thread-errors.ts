import { LogfunnelError, type LogfunnelErrorCode } from '../shared/errors.js'

/**
 * Errors crossing a thread boundary. A structured clone keeps an Error's `message` but drops
 * `code` and the class, so they travel as plain objects and are revived on the other side, or,
 * where the receiving side only takes an Error (thread-stream's warnings), with the code in
 * the text.
 */

export interface PlainError {
  name: string
  code: LogfunnelErrorCode
  message: string
}

export function toPlainError (err: LogfunnelError): PlainError {
  return { name: err.name, code: err.code, message: err.message }
}

/** A LogfunnelError with the original code, name and message. */
export function reviveError (plain: PlainError): LogfunnelError {
  const err = new LogfunnelError(plain.code, plain.message)
  err.name = plain.name
  return err
}

/**
 * A thread's failure as the thread that started it saw it (a Worker 'error': a system error whose
 * `code` and `syscall` explainStartFailure reads), for another thread (sender-host.ts).
 */
export interface ThreadFailure {
  name: string
  message: string
  code?: string
  syscall?: string
  stack?: string
}

export function toThreadFailure (err: Error): ThreadFailure {
  const { code, syscall } = err as NodeJS.ErrnoException
  return { name: err.name, message: err.message, code, syscall, stack: err.stack }
}

export function fromThreadFailure (f: ThreadFailure): Error {
  const err = new Error(f.message) as NodeJS.ErrnoException
  err.name = f.name
  if (f.code !== undefined) err.code = f.code
  if (f.syscall !== undefined) err.syscall = f.syscall
  if (f.stack !== undefined) err.stack = f.stack
  return err
}

/** An Error whose text starts with the code (`LOGFUNNEL_ERR_X: message`), for a clone that drops it. */
export function withCodeInMessage (err: Error & { code?: string }): Error {
  return new Error(err.code === undefined ? err.message : `${err.code}: ${err.message}`)
}

/**
 * Why a sender thread could not start, in logfunnel's terms where Node's own words say nothing
 * of it: a process whose working directory was removed (a release directory deleted under a
 * running service) starts no worker thread at all on Node 20, which reads the cwd as a thread
 * starts ('ENOENT: no such file or directory, uv_cwd'); Node's permission model without
 * `--allow-worker` refuses every thread (ERR_ACCESS_DENIED). Other causes keep Node's error.
 */
export function explainStartFailure (err: Error): Error {
  const { code, syscall } = err as NodeJS.ErrnoException
  if (code === 'ERR_ACCESS_DENIED') {
    return new LogfunnelError('LOGFUNNEL_ERR_SENDER_FAILED', 'the sender thread cannot start: Node\'s permission model ' +
      '(--experimental-permission, --permission) allows this process no worker threads. Run node with --allow-worker. ' +
      'Until then the records logged go to the spool from the logging thread, each time its buffer fills and at close() ' +
      'or the end of the process (the spool directory needs --allow-fs-write), and the writer takes them from there',
    { cause: err })
  }
  if (code !== 'ENOENT' || syscall !== 'uv_cwd') return err
  return new LogfunnelError('LOGFUNNEL_ERR_SENDER_FAILED', 'the sender thread cannot start: the working directory of the ' +
    'process was removed (Node reads it as a worker thread starts, and no thread will start while it is gone); the ' +
    'records logged are held, and go to the spool from the logging thread each time its buffer fills and at close() or ' +
    'the end of the process. Start ' +
    'the process in a directory that stays, or process.chdir() to one before funnel()', { cause: err })
}
