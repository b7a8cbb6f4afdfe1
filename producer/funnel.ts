import { EventEmitter, once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { debuglog } from 'node:util'
import type { Worker } from 'node:worker_threads'
import * as onExit from 'on-exit-leak-free'
import ThreadStreamClass from 'thread-stream'
import { CloseTimeoutError, ClosedError, FlushTimeoutError } from '../shared/errors.js'
import { resolveProducerOptions, type ProducerOptions, type ResolvedProducerOptions } from '../shared/options.js'
import type { SenderStats } from './sender.js'
import { createControl, destroySenderSync, ERROR_EVENT, FUNNEL_CONTROL, reviveError, STATS_EVENT, type PlainError } from './worker-messages.js'

const debug = debuglog('logfunnel')

/** ThreadStream's public surface beyond what its bundled types declare. */
type ThreadStream = ThreadStreamClass & {
  ref: () => void
  unref: () => void
  readonly ready: boolean
  readonly closed: boolean
  readonly worker: Worker
}

/** Tells the worker to close its sockets now, giving up on receipts (see transport.ts). */
export const ABANDON = 'LOGFUNNEL_ABANDON'
/** Tells the worker the process is exiting (see transport.ts). */
export const EXITING = 'LOGFUNNEL_EXITING'

const TRANSPORT_FILE = fileURLToPath(new URL('./transport.js', import.meta.url))

/**
 * A pino destination that hands lines to logfunnel's sender running in a worker thread.
 * Create it with `funnel()`.
 *
 * - `write(line)` copies the line into a shared buffer (pino calls it synchronously). With
 *   `onFull: 'block'`, once `highWaterMark` bytes are held without a receipt and the shared
 *   buffer (`threadBufferBytes`) is full too, `write()` blocks the calling thread until the
 *   writer catches up: the log call waits, nothing is dropped, memory stays bounded. With
 *   `'drop'`, records past `highWaterMark` are dropped, counted, and reported in the file.
 * - `flush()` / `close()` resolve once the writer has receipted every record written so far.
 * - When the event loop empties without `close()`, the destination closes itself
 *   (`'beforeExit'`); `process.exit()` right after logging can lose what is still in flight.
 *
 * Events: `'error'` (the worker failed; or LOGFUNNEL_ERR_CONNECT / LOGFUNNEL_ERR_HANDSHAKE: no
 * writer answered within `connectTimeoutMs`, records are kept and sending goes on), `'stats'`
 * (SenderStats, once closed). Without an `'error'` listener, those two become process warnings.
 */
export class FunnelDestination extends EventEmitter {
  readonly options: ResolvedProducerOptions
  #stream: ThreadStream
  #closing: Promise<void> | undefined
  #stats: SenderStats | undefined
  #control = createControl()

  constructor (options: ResolvedProducerOptions) {
    super()
    this.options = options
    this.#stream = new ThreadStreamClass({
      filename: TRANSPORT_FILE,
      workerData: { ...options, [FUNNEL_CONTROL]: this.#control },
      bufferSize: options.threadBufferBytes,
      sync: false
    }) as ThreadStream
    this.#stream.on('error', (err: Error) => {
      if (this.listenerCount('error') > 0) this.emit('error', err)
      else process.emitWarning(err)
    })
    this.#stream.on(ERROR_EVENT, (plain: PlainError) => {
      const err = reviveError(plain)
      if (this.listenerCount('error') > 0) this.emit('error', err)
      else process.emitWarning(err)
    })
    this.#stream.on(STATS_EVENT, (stats: SenderStats) => {
      this.#stats = stats
      this.emit('stats', stats)
    })
    // Like pino.transport: the worker alone does not keep the process alive; close() refs it.
    this.#stream.once('ready', () => {
      if (this.#closing === undefined) this.#stream.unref()
    })
    onExit.registerBeforeExit(this, closeOnExit)
    onExit.register(this, (dest) => dest.#onExit())
  }

  /**
   * 'exit' (also `process.exit()`): nothing asynchronous runs any more. The worker is told to
   * take everything (no blocking), the shared buffer is handed over, then the worker spools
   * what has no receipt and closes its sockets while this thread waits. thread-stream's end()
   * is not used here: its worker calls process.exit() itself, and a worker thread ending at
   * the same moment as the process aborted it (seen 1 run in 5; zeromq.js #411).
   */
  #onExit (): void {
    if (this.#stream.closed) return
    if (this.#closing !== undefined) {
      // A close() was under way: at least close the sockets before the thread dies.
      this.#destroySender()
      return
    }
    this.#closing = Promise.resolve()
    this.#stream.emit('message', { code: EXITING })
    try {
      this.#stream.flushSync()
    } catch (err) {
      process.emitWarning(err as Error)
    }
    this.#destroySender()
  }

  /**
   * Closes the sender thread's sockets synchronously: a worker thread that dies with ZeroMQ
   * sockets open aborts the whole process (zeromq.js #411).
   */
  #destroySender (): void {
    if (this.#stream.closed) return
    if (!destroySenderSync(this.#stream.worker, this.#control)) debug('the sender thread did not close its sockets in time')
  }

  /** The sender's counters, known once the destination is closed. */
  get stats (): SenderStats | undefined {
    return this.#stats
  }

  /** pino recognises a destination by this flag. */
  get writable (): boolean {
    return this.#closing === undefined
  }

  /** pino's destination contract. Throws LOGFUNNEL_ERR_CLOSED after `close()`. */
  write (line: string): boolean {
    if (this.#closing !== undefined) throw new ClosedError()
    if (this.#stream.write(line)) return true
    // thread-stream moves queued text into the shared buffer on a later tick, so a synchronous
    // burst of log calls would queue without bound. Once the queue outgrows the shared buffer,
    // move it now and wait until the worker has read it: this is where 'block' blocks.
    this.#flushSync()
    return true
  }

  #flushSync (): void {
    for (;;) {
      try {
        this.#stream.flushSync()
        return
      } catch (err) {
        // thread-stream gives up after 10 s; with onFull 'block' the caller keeps waiting.
        if (!String((err as Error).message).includes('took too long')) throw err
        debug('still blocked: the writer has not taken the records for 10 s')
      }
    }
  }

  /**
   * Resolves once every record written so far has a receipt from the writer.
   * Rejects with LOGFUNNEL_ERR_FLUSH_TIMEOUT after `deadlineMs` (default `flushTimeoutMs`).
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
    return this.#flush(arg ?? this.options.flushTimeoutMs)
  }

  async #flush (deadlineMs: number): Promise<void> {
    if (this.#closing !== undefined) throw new ClosedError()
    await withDeadline(new Promise<void>((resolve, reject) => {
      this.#stream.flush((err?: Error) => err ? reject(err) : resolve())
    }), deadlineMs, () => new FlushTimeoutError(deadlineMs))
  }

  /**
   * Flushes, then ends the worker. Rejects with LOGFUNNEL_ERR_CLOSE_TIMEOUT after `deadlineMs`
   * (default `closeTimeoutMs`); the worker is stopped either way.
   */
  async close (deadlineMs = this.options.closeTimeoutMs): Promise<void> {
    this.#closing ??= this.#close(deadlineMs)
    await this.#closing
  }

  async #close (deadlineMs: number): Promise<void> {
    onExit.unregister(this)
    const stream = this.#stream
    stream.ref()
    // thread-stream's end() waits synchronously for the worker to finish, so the receipts are
    // awaited here first, where a deadline can still fire.
    let failed = false
    try {
      await withDeadline((async () => {
        if (!stream.ready) await once(stream, 'ready')
        await new Promise<void>((resolve, reject) => stream.flush((err?: Error) => err ? reject(err) : resolve()))
      })(), deadlineMs, () => new CloseTimeoutError(deadlineMs))
    } catch (err) {
      failed = true
      debug('close: %s', (err as Error).message)
      if (stream.ready) stream.emit('message', { code: ABANDON })
    }
    if (!stream.closed) {
      const closed = new Promise((resolve) => stream.once('close', resolve))
      if (stream.ready) {
        stream.end()
      } else {
        this.#destroySender()
        await stream.worker.terminate()
      }
      await closed
    }
    if (failed) throw new CloseTimeoutError(deadlineMs)
    // Without a spool the sender waits for receipts up to its own closeTimeoutMs, then gives up.
    if (this.#stats !== undefined && this.#stats.heldBytes > 0) throw new CloseTimeoutError(this.options.closeTimeoutMs)
  }
}

function closeOnExit (dest: FunnelDestination): void {
  void dest.close().catch((err: Error) => process.emitWarning(err))
}

async function withDeadline<T> (work: Promise<T>, deadlineMs: number, makeError: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(makeError()), deadlineMs)
  })
  try {
    return await Promise.race([work, deadline])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Creates a pino destination that sends to a logfunnel writer.
 * Throws LOGFUNNEL_ERR_INVALID_OPTION at once for a bad option.
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
