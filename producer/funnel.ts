import { EventEmitter } from 'node:events'
import { ClosedError } from '../shared/errors.js'
import { resolveProducerOptions, type ProducerOptions, type ResolvedProducerOptions } from '../shared/options.js'
import { deadline } from '../shared/option-values.js'
import type { SenderStats } from './sender-stats.js'
import { chunkText } from './line-framing.js'
import { closedAtExit, isProcessExiting } from './funnel-exit.js'
import { warnBeforeExit } from './process-warning.js'
import { SenderChannel } from './sender-channel.js'
import type { ChannelSession } from './channel-sessions.js'

/**
 * The open channel of this thread for each set of options (their JSON), held weakly: destinations
 * made with the same options share it, so a logger made per request costs an object, not a
 * sender thread (~10 MB resident, a 4 MiB ring, tens of ms of CPU to start). Before, each had its
 * own: 500 loggers made and dropped at ~16 a second took a process to 452 threads and 6.8 GB.
 */
const channels = new Map<string, WeakRef<SenderChannel>>()

/**
 * How long a channel is held after the last destination made for it, whether or not one is still
 * alive, as the Python client keeps its shared client (KEEP_S): a server's requests come one
 * after another, each logger dropped before the next is made, and a collection that fell between
 * two of them ended the channel, so the next request started a sender thread again (~80 ms of
 * CPU) and the collected one spooled what had no receipt yet. (Test hook: LOGFUNNEL_TEST_KEEP_MS
 * replaces it, 0 keeps none, so that tests of a collected sender need not wait 5 s.)
 */
const KEEP_MS = Number(process.env.LOGFUNNEL_TEST_KEEP_MS ?? 5000)
/** At most this many held at once: options made per request (a thread each) are not all held. */
const KEEP_MAX = 8
/** The channels held, by key, in the order they are let go (each refresh moves its entry last). */
const kept = new Map<string, { channel: SenderChannel, until: number }>()
let keeper: NodeJS.Timeout | undefined

function keep (key: string, channel: SenderChannel): void {
  if (!(KEEP_MS > 0)) return
  kept.delete(key)
  kept.set(key, { channel, until: performance.now() + KEEP_MS })
  if (kept.size > KEEP_MAX) {
    const oldest = kept.keys().next().value as string
    kept.get(oldest)?.channel.retire()
    kept.delete(oldest)
  }
  // Unref'd: it never keeps a process whose work has ended.
  keeper ??= setTimeout(letGo, KEEP_MS).unref()
}

function letGo (): void {
  keeper = undefined
  const now = performance.now()
  for (const [key, { until }] of kept) {
    if (until > now) {
      keeper = setTimeout(letGo, until - now).unref()
      return
    }
    // One whose last destination closed (closeKept) ends now; one in use, or dropped, goes on
    // as long as a destination holds it (or until it is collected: orphan-senders.ts).
    kept.get(key)?.channel.retire()
    kept.delete(key)
  }
}

/** The open channel for `options`, a new one when there is none (none yet, collected, or closing). */
function channelFor (options: ResolvedProducerOptions): SenderChannel {
  const key = JSON.stringify(options)
  let channel = channels.get(key)?.deref()
  // Kept after a close() and its writer connection lost since: closed, and a new one made.
  if (channel?.stale === true) channel.retire()
  if (channel?.writable !== true) {
    for (const [k, ref] of channels) if (ref.deref()?.writable !== true) channels.delete(k)
    channel = new SenderChannel(options)
    channels.set(key, new WeakRef(channel))
  }
  keep(key, channel)
  return channel
}

/**
 * A pino destination that hands lines to logfunnel's sender running in a worker thread.
 * Create it with `funnel()`.
 *
 * - `write(line)` encodes the line straight into a ring of shared memory (`threadBufferBytes`);
 *   a sender thread batches from there while this thread goes on logging. With `onFull:
 *   'block'`, once `highWaterMark` bytes are held without a receipt and the ring is full too,
 *   `write()` blocks the calling thread until the writer catches up: the log call waits, nothing
 *   is dropped, memory stays bounded. With `'drop'`, records past `highWaterMark` are dropped,
 *   counted, and reported in the file.
 * - Destinations made in one thread with the same options share one ring and one sender thread
 *   (sender-channel.ts): their records go in the order they were written, each destination's in
 *   its own order. The thread ends KEEP_MS after the last of them (closed, or collected).
 * - `flush()` / `close()` resolve once the writer has receipted every record written so far;
 *   `close()` also once the writer is away and every record without a receipt is in the spool.
 * - When the event loop empties without `close()`, the sender closes itself (`'beforeExit'`).
 *   At `process.exit()` what has no receipt goes to the spool.
 *
 * Events: `'error'` (the sender thread failed; or LOGFUNNEL_ERR_CONNECT / _HANDSHAKE: no
 * writer answered within `connectTimeoutMs`, records are kept and sending goes on),
 * `'stats'` (SenderStats, once its sender has closed). Without an `'error'` listener on any
 * destination that shares the sender, those become process warnings. One that ends before that,
 * records in the spool and no writer ever reached, reports it then, once: `'error'`, else one
 * line on stderr.
 */
export class FunnelDestination extends EventEmitter {
  readonly options: ResolvedProducerOptions
  readonly #channel: SenderChannel
  /** The channel's session this destination belongs to: its `stats` come with the session's end. */
  readonly #session: ChannelSession
  #closing: Promise<void> | undefined
  #closedDrops = 0

  constructor (options: ResolvedProducerOptions) {
    super()
    this.options = options
    this.#channel = channelFor(options)
    this.#channel.join(this)
    this.#session = this.#channel.session
  }

  /**
   * The sender's counters, known once the last destination that shares it has closed: those of
   * the records since the sender was last left kept (by such a close), as a new sender's.
   */
  get stats (): SenderStats | undefined {
    return this.#session.stats
  }

  /** pino recognises a destination by this flag. */
  get writable (): boolean {
    return this.#closing === undefined && this.#channel.writable
  }

  /** Records logged after `close()`: not sent, counted here, reported once. */
  get closedDrops (): number {
    return this.#closedDrops
  }

  /**
   * pino's destination contract. After `close()` a record is dropped and counted in
   * `closedDrops`, never thrown: a request still in flight during a graceful shutdown must not
   * take its process down for logging. The first one is reported ('error' event, else a
   * process warning) with LOGFUNNEL_ERR_CLOSED. A Buffer is taken as UTF-8 text; any other type
   * throws ERR_INVALID_ARG_TYPE at the call (line-framing.ts chunkText).
   */
  write (chunk: string | Uint8Array): boolean {
    const line = chunkText(chunk)
    if (this.#closing === undefined && this.#channel.write(line)) return true
    if (++this.#closedDrops === 1) {
      if (isProcessExiting()) closedAtExit()
      else this.#emitError(new ClosedError('a record was logged after close(): it is not sent; such records are counted in closedDrops and reported this once'))
    }
    return true
  }

  /**
   * Resolves once every record written so far has a receipt from the writer.
   * Rejects with LOGFUNNEL_ERR_FLUSH_TIMEOUT after `deadlineMs` (1 to 3600000, default
   * `flushTimeoutMs`; another value rejects with LOGFUNNEL_ERR_INVALID_OPTION).
   *
   * `logger.flush(cb)` passes a callback instead of a deadline: it is called with the outcome.
   *
   * @example
   * ```ts
   * log.info('done'); await dest.flush(5000)
   * ```
   */
  flush (deadlineMs?: number): Promise<void>
  flush (cb: (err?: Error) => void): void
  flush (arg?: number | ((err?: Error) => void)): Promise<void> | undefined {
    if (typeof arg === 'function') {
      this.#flush(this.options.flushTimeoutMs).then(() => arg(), arg)
      return undefined
    }
    return this.#flush(arg)
  }

  async #flush (deadlineArg: unknown): Promise<void> {
    if (this.#closing !== undefined) {
      deadline(deadlineArg, 'flush() deadlineMs', this.options.flushTimeoutMs)
      throw new ClosedError()
    }
    await this.#channel.flush(deadlineArg)
  }

  /**
   * Flushes, then closes the sender thread, waiting for receipts at most `deadlineMs` (default
   * `closeTimeoutMs`); the thread is stopped either way. What has no receipt by then goes to the
   * spool: then close() resolves and reports LOGFUNNEL_ERR_CLOSE_TIMEOUT once ('error' event,
   * else a process warning). It rejects with that error only when records are lost (no spool,
   * or it could not be written).
   *
   * When the writer is away (no answer for `spoolAfterMs`, the rule that copies batches to the
   * spool) and every record without a receipt is in the spool, close() ends then, without
   * waiting out `deadlineMs`, and reports the same way (the error's `writerAway` is true).
   *
   * While other destinations made with the same options are open (not closed, not collected),
   * the sender thread goes on for them: close() waits as long, for the same outcome, and past
   * `deadlineMs` resolves with its records still in the sender's hands (sent, spooled or
   * reported as theirs are); `stats` come with the last one's close.
   *
   * The last one's close(), once every record has its receipt, leaves the sender thread kept
   * for the next destination with the same options, KEEP_MS (SenderChannel.closeKept): a
   * logger made and closed per request started a thread per request (70-95 ms of CPU each).
   * Its `stats` are then those of the records since the sender was last kept so.
   */
  async close (deadlineArg?: number): Promise<void> {
    // Checked first: a bad deadline (past 2^31 - 1 ms, 0, a string) made the close time out at once.
    const deadlineMs = deadline(deadlineArg, 'close() deadlineMs', this.options.closeTimeoutMs)
    this.#closing ??= this.#close(deadlineMs)
    await this.#closing
  }

  async #close (deadlineMs: number): Promise<void> {
    const channel = this.#channel
    if (!channel.users.othersOpen(this)) {
      if (!(KEEP_MS > 0)) return await channel.close(deadlineMs)
      // Kept for the next destination with these options, as a dropped one's is: a logger made
      // and closed per request started a sender thread per request (70-95 ms of CPU each).
      if (await channel.closeKept(this, deadlineMs) === 'kept') keep(JSON.stringify(this.options), channel)
      return
    }
    channel.users.leave(this)
    await channel.settle(deadlineMs)
  }

  /**
   * A stream's end(), which `pino.multistream()`'s end() calls on each of its streams (before, it
   * threw "stream.end is not a function"): close() with its default deadline, not awaited; a
   * rejection is reported as close()'s other reports are ('error' event, else a process warning).
   */
  end (): void {
    this.close().catch((err: Error) => this.#emitError(err))
  }

  #emitError (err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err)
    else warnBeforeExit(err)
  }
}

/**
 * Creates a pino destination that sends to a logfunnel writer. Destinations made in one thread
 * with the same options share one sender thread (see FunnelDestination).
 * Throws at once: LOGFUNNEL_ERR_INVALID_OPTION for a bad option, _MISSING_DEPENDENCY without the sender thread's file (a bundle).
 *
 * @example
 * ```ts
 * import pino from 'pino'
 * import { funnel } from 'logfunnel'
 * const dest = funnel({ endpoint: 'ipc:///run/app/writer.sock' })
 * const log = pino(dest)
 * log.info('hello')
 * await dest.close()
 * ```
 */
export function funnel (opts: ProducerOptions = {}): FunnelDestination {
  return new FunnelDestination(resolveProducerOptions(opts))
}
