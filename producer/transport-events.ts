/**
 * What the transport target (transport.ts) tells the logging thread, as events emitted on
 * pino's ThreadStream (thread-stream forwards `{ code: 'EVENT', name, args }` messages).
 */

/** The sender's counters (SenderStats), emitted before 'close'. */
export const STATS_EVENT = 'logfunnel:stats'
/** A PlainError (LOGFUNNEL_ERR_CONNECT, LOGFUNNEL_ERR_HANDSHAKE). */
export const ERROR_EVENT = 'logfunnel:error'
