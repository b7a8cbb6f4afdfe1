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

/** An Error whose text starts with the code (`LOGFUNNEL_ERR_X: message`), for a clone that drops it. */
export function withCodeInMessage (err: Error & { code?: string }): Error {
  return new Error(err.code === undefined ? err.message : `${err.code}: ${err.message}`)
}
