import { DESCRIPTORS_FOR_FILES, dataConnectionCap, openFilesLimit } from './descriptor-limit.js'

/** After the first, a `connections-refused` line at most this often (ms), with the count since the last. */
export const REFUSALS_REPORT_MS = 10_000

/** Why a data connection was closed unread: the writer's cap, or accept(2) out of descriptors. */
export type RefusalReason = 'limit' | 'EMFILE' | 'ENFILE'

/**
 * Data connections the writer closed unread because its descriptors ran short (see
 * descriptor-limit.ts): counted (`refusedConnections` in the summary) and said on stderr as
 * `{"event":"connections-refused",...}`, the first at once, then at most every
 * REFUSALS_REPORT_MS. Before, libuv's accept failed with EMFILE and closed the connection, the
 * writer said nothing, and the producer reported only that no handshake completed.
 */
export class ConnectionRefusals {
  readonly #warn: (event: object) => void
  total = 0
  #unreported = 0
  #lastReport = -Infinity

  constructor (warn: (event: object) => void) {
    this.#warn = warn
  }

  /** A connection closed unread, with `open` connections open. */
  refused (reason: RefusalReason, open: number): void {
    this.total++
    this.#unreported++
    const now = performance.now()
    if (now - this.#lastReport < REFUSALS_REPORT_MS) return
    this.#lastReport = now
    const limit = openFilesLimit() ?? null
    this.#warn({
      event: 'connections-refused',
      reason: reason === 'limit' ? 'descriptor-limit' : reason,
      refused: this.#unreported,
      open,
      maxConnections: limit === null ? null : dataConnectionCap(limit),
      descriptorLimit: limit,
      hint: `out of descriptors: a producer holds 2 connections (data and receipts) and the writer keeps ${DESCRIPTORS_FOR_FILES} for its files; ` +
        'raise the writer\'s limit (ulimit -n, LimitNOFILE= in its systemd unit). Refused producers dial again and keep their records (spooled at their close)'
    })
    this.#unreported = 0
  }
}
