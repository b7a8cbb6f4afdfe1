import { LogfunnelError } from '../shared/errors.js'

/**
 * What the sender thread tells the logging thread, beside thread-stream's own messages.
 * Errors cross the thread boundary by structured clone, which keeps `message` but drops `code`
 * and the class, so they travel as plain objects and are revived on the other side.
 */

/** Event with the sender's counters (SenderStats), emitted on the ThreadStream before 'close'. */
export const STATS_EVENT = 'logfunnel:stats'
/** Event with a PlainError (LOGFUNNEL_ERR_CONNECT, LOGFUNNEL_ERR_HANDSHAKE), emitted on the ThreadStream. */
export const ERROR_EVENT = 'logfunnel:error'
/**
 * Key funnel() adds to the worker's options: the logging thread is a FunnelDestination, which
 * turns ERROR_EVENT into its 'error' event or a process warning. Without it (a plain
 * `pino.transport`), the sender thread raises the process warning itself.
 */
export const FUNNEL_MARK = '$logfunnelFunnel'

export interface PlainError {
  name: string
  code: string
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
