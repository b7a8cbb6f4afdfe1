import { statSync } from 'node:fs'
import { parseEndpoint } from '../shared/endpoint.js'
import { ConnectError, HandshakeError, type LogfunnelError } from '../shared/errors.js'
import type { ResolvedProducerOptions } from '../shared/options.js'
import { explainRefusal, handshakeProblem } from './connect-watch.js'
import { sayOnStderr } from './stdio-lines.js'
import type { ChannelUser } from './channel-users.js'
import { UNLISTED_REFUSAL, type ReachFacts } from './writer-reach.js'

/**
 * The report a producer makes as it ends (close(), the end of its process or thread) when its
 * records went to the spool and no writer was ever reached. ConnectWatch reports only after
 * `connectTimeoutMs` with the process still running: a short script with a wrong endpoint, or
 * run before its writer was started, ended with exit 0, its records in the spool and nothing on
 * stderr, and nobody learned that no writer was there. The Python client reports the same at its
 * close (clients/python/logfunnel/_closing.py), in the same words.
 *
 * Only on evidence, as there: a connect refused (no socket at the path, connection refused,
 * permission denied), a connection that ended before its handshake, an ipc socket missing
 * now, or UNREACHED_AT_END_AFTER_MS without a handshake on a connection accepted
 * (LOGFUNNEL_ERR_HANDSHAKE: a stopped writer's socket still takes connections) or on a tcp
 * connect left unanswered (see silentTooLong); a writer only slow to answer (a loaded
 * machine, a writer starting) is not reported. Never when a writer was reached at any time (the
 * spool is then a normal hand-over), nor when nothing went to the spool, nor after ConnectWatch
 * reported, nor with `connectTimeoutMs: 0`. Nothing here waits.
 */

/** Without a refusal or a failed handshake, the writer counts as unreached this long after the producer's start (Python's UNREACHED_AT_CLOSE_AFTER). */
const UNREACHED_AT_END_AFTER_MS = 1000

/** Why a connection accepted and still open had no handshake (the Python client's words). */
const NO_HANDSHAKE = 'no ZMTP handshake completed (a writer stopped or too busy to answer, or not a logfunnel writer)'

/** What ConnectWatch, or the socket directory's check, reports while the producer runs. */
const REPORTED_CODES = new Set(['LOGFUNNEL_ERR_CONNECT', 'LOGFUNNEL_ERR_HANDSHAKE', 'LOGFUNNEL_ERR_UNSAFE_ENDPOINT'])

/** One producer's report at its end: made once, and not after ConnectWatch's. */
export class UnreachedReport {
  readonly #options: ResolvedProducerOptions
  readonly #startedAt = performance.now()
  #made = false

  constructor (options: ResolvedProducerOptions) {
    this.#options = options
  }

  /** An error the producer reported while it ran: after ConnectWatch's, nothing is owed at the end. */
  saw (err: { code?: string }): void {
    if (REPORTED_CODES.has(err.code ?? '')) this.#made = true
  }

  /**
   * The producer has ended with `spooled` records in the spool: reports (reportAtEnd) the error
   * owed, if one is, once; true when it did. `closeEnding`: how close() ended, when this report
   * is to say it too (funnel.ts: its LOGFUNNEL_ERR_CLOSE_TIMEOUT is then not reported).
   */
  report (reach: ReachFacts, spooled: number, emitter?: ChannelUser, closeEnding?: string): boolean {
    if (this.#made) return false
    const err = unreachedAtEnd(this.#options, reach, performance.now() - this.#startedAt, spooled, closeEnding)
    if (err === undefined) return false
    this.#made = true
    reportAtEnd(err, emitter)
    return true
  }
}

/**
 * The error for a producer that ends `elapsedMs` after its start, `spooled` records in the spool,
 * with what it saw of the writer (see the module's comment); `closeEnding` closes its message.
 */
export function unreachedAtEnd (opts: ResolvedProducerOptions, reach: ReachFacts, elapsedMs: number, spooled: number, closeEnding?: string): LogfunnelError | undefined {
  if (opts.connectTimeoutMs === 0 || reach.reached || spooled === 0) return undefined
  const refused = reach.refused ?? missingSocket([opts.endpoint, opts.receiptEndpoint])
  if (refused === undefined && !reach.handshakeFailed && !silentTooLong(opts, reach, elapsedMs)) return undefined
  const ms = Math.round(elapsedMs)
  const kept = `${ms < opts.connectTimeoutMs ? `closed before connectTimeoutMs (${opts.connectTimeoutMs} ms)` : 'closed'}, ` +
    `with ${spooled} ${spooled === 1 ? 'record' : 'records'} without a receipt in the spool (${opts.spoolDir ?? '?'}), where a writer on this endpoint takes them` +
    (closeEnding === undefined ? '' : `; ${closeEnding}`)
  if (refused === undefined && reach.handshakeFailed) return new HandshakeError(opts.endpoint, ms, `${handshakeProblem(opts.curveSecretKey !== null)}; ${kept}`)
  // Accepted and never answered: something listens there (a stopped or overloaded writer's socket
  // takes connections in the kernel), so not "nothing accepted the connection".
  if (refused === undefined && reach.accepted) return new HandshakeError(opts.endpoint, ms, `${NO_HANDSHAKE}; ${kept}`)
  return new ConnectError(opts.endpoint, ms, `${refusalText(refused)}; ${kept}`)
}

/**
 * No refusal and no failed handshake: evidence only after UNREACHED_AT_END_AFTER_MS, and then
 * only of a connection accepted and never answered, or of a tcp connect with no answer at all.
 * An ipc connect is answered at once (accepted, or refused), so with neither seen the sender
 * had not yet read its answer, or not yet dialed (a thread slow to start on a loaded machine):
 * "nothing accepted the connection" would be said of a writer that is there.
 */
function silentTooLong (opts: ResolvedProducerOptions, reach: ReachFacts, elapsedMs: number): boolean {
  if (elapsedMs < UNREACHED_AT_END_AFTER_MS) return false
  return reach.accepted || (reach.dialed && parseEndpoint(opts.endpoint).transport !== 'ipc')
}

function refusalText (refused: string | undefined): string {
  if (refused === undefined) return 'nothing accepted the connection'
  if (refused === UNLISTED_REFUSAL) return 'the connection failed'
  return explainRefusal(refused) ?? `the connection failed (${refused})`
}

/** 'ENOENT' when an ipc endpoint's socket is not there now (a check that needs no connect). */
function missingSocket (endpoints: string[]): string | undefined {
  for (const endpoint of endpoints) {
    const parsed = parseEndpoint(endpoint)
    if (parsed.transport !== 'ipc') continue
    try {
      statSync(parsed.path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'ENOENT'
    }
  }
  return undefined
}

/**
 * Reports `err` as a producer ends: to `emitter`'s 'error' listeners when it has any (as
 * ConnectWatch's report goes), else as one line on stderr, written at once: a process warning
 * would print on a later tick, which a process ending now never reaches. Never throws.
 */
export function reportAtEnd (err: LogfunnelError, emitter?: ChannelUser): void {
  if (emitter !== undefined && emitter.listenerCount('error') > 0) {
    try {
      emitter.emit('error', err)
      return
    } catch {}
  }
  // Straight to fd 2: a worker thread's process.stderr goes through its parent thread's loop
  // (not at its exit), and a broken stderr must not end the process (stdio-lines.ts).
  sayOnStderr(`logfunnel: ${err.code}: ${err.message}\n`)
}
