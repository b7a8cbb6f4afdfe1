import { randomBytes } from 'node:crypto'
import { debuglog } from 'node:util'
import { isMainThread } from 'node:worker_threads'
import { ClosedError, FlushTimeoutError, RecordTooLargeError, type LogfunnelError } from '../shared/errors.js'
import type { ResolvedProducerOptions } from '../shared/options.js'
import { deadline } from '../shared/option-values.js'
import { PRODUCER_ID_BYTES } from '../shared/protocol.js'
import { producerMade } from '../shared/spool.js'
import { EarlySpool } from './early-spool.js'
import { RingWriter } from './line-ring.js'
import { createRing, type RingMemory } from './ring-layout.js'
import type { SenderStats } from './sender-stats.js'
import { ChannelSessions, type ChannelSession } from './channel-sessions.js'
import { once as onlyOnce } from './line-framing.js'
import { BeatWatch, createControl, readReach, type SenderReply } from './sender-requests.js'
import { SenderCalls, withDeadline } from './sender-calls.js'
import { closeError, closeSenderThread, endClose, flushForClose, SILENT_THREAD_MS } from './funnel-close.js'
import { exitDeadlineMs, isProcessExiting, ringAtExit, spoolAtExit } from './funnel-exit.js'
import { LateSpool, rescueRest, spillRing } from './late-spool.js'
import { reviveError } from './thread-errors.js'
import { spoolOnFatalSignal } from './signal-spool.js'
import { offProcessEnd, onProcessEnd } from './exit-hooks.js'
import { trackThread, untrackThread, weighForCollector, whenCollected } from './orphan-senders.js'
import type { SenderThread, SenderWorker } from './sender-thread-handle.js'
import { UnreachedReport } from './unreached-report.js'
import { warnBeforeExit } from './process-warning.js'
import { refusedReport } from './refused-threads.js'
import { senderThreadFile } from './sender-thread-file.js'
import { listenToSender, spawnOwnSender, startSenderThread, StartFailures, type SenderThreadEvents } from './sender-thread-start.js'
import { HostedLink } from './hosted-link.js'
import { hostSenders, senderHost } from './sender-host.js'

// This thread starts the sender threads of the worker threads it makes, so that they outlive them.
hostSenders()
import { ChannelUsers, type ChannelUser } from './channel-users.js'

const debug = debuglog('logfunnel')

/** A sender thread that failed to start is started again this long after. */
const SENDER_RESTART_MS = 1000

/**
 * Channels whose close is under way, held until it has ended: their thread's listeners and exit
 * hooks hold them weakly, and while close() waits for the thread no timer does. Else one closed at
 * 'beforeExit' with nothing else holding it was collected mid-close, its reports with it.
 */
const closing = new Set<SenderChannel>()

/**
 * One ring and one sender thread, shared by the `funnel()` destinations of a thread made with the
 * same options (funnel.ts): each of those holds it; it holds them weakly (channel-users.ts), and
 * is collected with the last of them (orphan-senders.ts ends its thread then). The close() of the
 * last of them keeps it, idle, for the next (closeKept; funnel.ts holds it KEEP_MS, then retires it).
 *
 * - `write(line)` encodes the line straight into a ring of shared memory (`threadBufferBytes`,
 *   line-ring.ts); the sender thread batches from there while this thread goes on logging.
 *   With `onFull: 'block'`, once `highWaterMark` bytes are held without a receipt and the ring
 *   is full too, `write()` blocks the calling thread until the writer catches up: the log call
 *   waits, nothing is dropped, memory stays bounded. With `'drop'`, records past
 *   `highWaterMark` are dropped, counted, and reported in the file.
 * - `flush()` / `close()` resolve once the writer has receipted every record written so far;
 *   `close()` also once the writer is away and every record without a receipt is in the spool.
 * - When the event loop empties without `close()`, the channel closes itself (`'beforeExit'`).
 *   At `process.exit()` what has no receipt goes to the spool.
 *
 * Its reports go to its destinations' `'error'` listeners (LOGFUNNEL_ERR_CONNECT / _HANDSHAKE: no
 * writer answered within `connectTimeoutMs`, records are kept and sending goes on; the sender
 * thread failed), else become process warnings; its counters, once closed, to their `'stats'`.
 * One that ends before that, records in the spool and no writer ever reached, reports it then,
 * once (unreached-report.ts).
 */
export class SenderChannel {
  readonly options: ResolvedProducerOptions
  /** The destinations that use this channel, held weakly. */
  readonly users = new ChannelUsers()
  /** The sender thread; a holder of its own, so that the channel can be collected (orphan-senders.ts). */
  readonly #thread: SenderThread
  readonly #ringMemory: RingMemory
  /** Times the sender thread failed to start, and why the first time (only that one is reported). */
  readonly #startFailures = new StartFailures()
  /** A start of the sender thread again, after one that failed. */
  #restart: NodeJS.Timeout | undefined
  #ring: RingWriter
  #closing: Promise<void> | undefined
  /** Each session's `stats`: a session ends with its last destination's close(), the channel kept (closeKept). */
  readonly #sessions = new ChannelSessions()
  /**
   * The last destination closed and the channel is kept for the next (closeKept): no destination
   * hears of it meanwhile. A failure then retires it (nothing is held), so that the next
   * destination gets a new sender, as it would have before.
   */
  #idle = false
  /** The sender's connections lost after their handshake as the channel was last kept (readReach). */
  #lostAtKeep = 0
  /** The application closed the last destination: records after it are dropped, as documented. */
  #closedByApp = false
  /** Lines logged after the sender ended, at the process's exit: the spool, from this thread. */
  #late: LateSpool | undefined
  /** Requests to the sender thread and their replies. */
  readonly #calls: SenderCalls
  #unsignal: () => void
  /** Made here, not in the sender thread: the early phase's batches carry it. */
  readonly #producerId = randomBytes(PRODUCER_ID_BYTES)
  /** When it was made (SpoolPreamble.made): this process's producers are taken from the spool in that order. */
  readonly #made = producerMade()
  /**
   * In a worker thread, until the sender thread is connected: lines go to the spool, not the
   * ring (early-spool.ts), so that a `worker.terminate()` meanwhile loses none.
   */
  #early: EarlySpool | undefined
  /** An early phase was begun: every sender thread (one restarted too) takes it over. */
  readonly #earlyBegun: boolean
  readonly #unreached: UnreachedReport
  readonly #senderFile: URL

  constructor (options: ResolvedProducerOptions) {
    this.#senderFile = senderThreadFile(import.meta.url)
    this.options = options
    this.#unreached = new UnreachedReport(options)
    this.#ringMemory = createRing(options.threadBufferBytes)
    const control = createControl()
    const beats = new BeatWatch(control)
    this.#ring = new RingWriter(this.#ringMemory, {
      maxFrameBytes: options.maxFrameBytes,
      onTooLarge: onlyOnce((bytes: number) => warnBeforeExit(new RecordTooLargeError(bytes, options.maxFrameBytes))),
      // A full ring and a sender thread stuck for SILENT_THREAD_MS: the log call stops waiting (before, for good).
      stuck: () => beats.silentFor(SILENT_THREAD_MS),
      // Full, with no sender thread and none starting: the ring goes to the spool from here.
      spill: () => thread.exited && spillRing(thread),
      // A host that has not started the sender thread yet, while this thread waits for one.
      starting: () => (thread.worker as Partial<HostedLink> | undefined)?.hostLate?.()
    })
    const thread: SenderThread = { options, worker: undefined as unknown as SenderWorker, control, ring: this.#ring, exited: false }
    this.#thread = thread
    // Through a WeakRef: a closure here capturing `this` would put it in the context every closure
    // of this constructor shares, the ring's among them, and the thread holds the ring.
    const self = new WeakRef(this)
    this.#calls = new SenderCalls(this.#thread, () => {
      const channel = self.deref()
      return channel !== undefined && channel.#closing !== undefined
    })
    // The main thread's exits and signals spool through its exit hooks; a worker's terminate runs nothing.
    if (!isMainThread && options.spoolDir !== undefined) this.#early = new EarlySpool(this.#thread.control, { ...options, spoolDir: options.spoolDir }, this.#producerId, this.#made)
    this.#earlyBegun = this.#early !== undefined
    try {
      this.#thread.worker = this.#startSender()
    } catch (err) {
      // Refused at once (Node's permission model without --allow-worker): no thread will ever
      // start, so none is tried again; the ring spills to the spool. Before, funnel() threw it.
      this.#thread.exited = true
      this.#ring.readerGone()
      this.#startFailed(err as Error, true)
    }
    whenCollected.register(this, this.#thread, this)
    trackThread(this.#thread, this)
    weighForCollector(this)
    onProcessEnd('beforeExit', this, (channel) => channel.#onBeforeExit())
    onProcessEnd('exit', this, (channel) => channel.#onExit())
    this.#unsignal = spoolOnFatalSignal(this, (channel) => channel.#onExit(true))
  }

  /**
   * Starts the sender thread on the ring. One that could not start (ERR_WORKER_INIT_FAILED: no
   * free descriptor, no thread) is started again SENDER_RESTART_MS later until close(); the ring
   * keeps what was logged meanwhile (once it is full, the logging thread drops and counts, see
   * SENDER_START_TIMEOUT_MS). Only the first failure to start is reported.
   */
  #startSender (): SenderWorker {
    const data = { options: this.options, ring: this.#ringMemory, control: this.#thread.control, producerId: this.#producerId, made: this.#made, early: this.#earlyBegun }
    // The first start only: after a failure, this thread starts its own.
    const host = this.#startFailures.error === undefined && this.#thread.worker === undefined ? senderHost() : undefined
    if (host === undefined) return startSenderThread(this.#senderFile, this.#thread, data, new WeakRef(this), SenderChannel.#threadEvents)
    const file = this.#senderFile
    const thread = this.#thread
    const link = new HostedLink(host, thread, file, data, () => spawnOwnSender(file, thread, data))
    listenToSender(link, thread, new WeakRef(this), SenderChannel.#threadEvents)
    return link
  }

  /** The sender thread's events (sender-thread-start.ts); each gets the channel, so none holds it. */
  static readonly #threadEvents: SenderThreadEvents<SenderChannel> = {
    message: (channel, msg) => channel.#onMessage(msg),
    error: (channel, err) => {
      if (channel.#ring.senderStarted) channel.emitError(err)
      else channel.#startFailed(err)
    },
    exit: (channel) => channel.#onThreadExit()
  }

  #onThreadExit (): void {
    this.#ring.readerGone()
    this.#calls.rejectAll()
    // Kept with no destination: the next one gets a new channel (nothing was held here).
    if (this.#idle) this.#closing ??= Promise.resolve()
    if (this.#ring.senderStarted || this.#closing !== undefined) return
    this.#restart = setTimeout(() => {
      this.#restart = undefined
      if (this.#closing !== undefined) return
      this.#startAgain()
    }, SENDER_RESTART_MS)
    this.#restart.unref()
  }

  /** A new sender thread after one that could not start; one refused at once counts as another failure. */
  #startAgain (): void {
    try {
      this.#thread.worker = this.#startSender()
      this.#thread.exited = false
    } catch (err) {
      this.#startFailed(err as Error)
    }
  }

  /**
   * A sender thread that could not start: only the first such failure is reported; with
   * `nextTick` (refused in the constructor), on the next tick, to an 'error' listener added right
   * after funnel() (not `this` in a closure: see the constructor's `self`).
   */
  #startFailed (err: Error, nextTick = false): void {
    const report = this.#startFailures.first(err, this.#thread)
    if (report === undefined) return
    if (nextTick) process.nextTick((channel: SenderChannel, e: Error) => channel.emitError(e), this, report)
    else this.emitError(report)
  }

  /** 'exit' (also `process.exit()`), or a signal about to end the process: the spool (funnel-exit.ts). */
  #onExit (atSignal = false): void {
    if (this.#thread.exited) {
      // No sender to spool what the ring holds (its thread could not start, or it ended): this
      // thread does, and says what it could not keep.
      if (this.#closing === undefined) ringAtExit(this.#thread)
      this.#closing ??= Promise.resolve()
      return
    }
    const spooled = spoolAtExit(this.#thread, atSignal)
    // A record logged after this (an 'exit' listener that runs after this one) has no sender:
    // write() reports it, once, instead of dropping it in the ring without a word.
    this.#closing ??= Promise.resolve()
    this.#unreached.report(readReach(this.#thread.control), spooled, this.users)
  }

  /**
   * 'beforeExit': the program's work is done and it never called close(). The process must
   * end by itself, as with pino's own destinations: it closes as close() does, with the
   * deadline exitDeadlineMs() gives (`linger` with a spool), and what has no receipt then goes
   * to the spool (the writer ingests it).
   */
  #onBeforeExit (): void {
    if (this.#closing !== undefined) return // the application's own close() reports its outcome
    // Records left in the spool are the expected outcome here (the writer is away): not reported.
    this.#closing = this.#close(exitDeadlineMs(this.options), false)
    this.#closing.catch((err: Error) => this.emitError(err))
  }

  /** The current session, whose `stats` its destinations report once it has ended (closeKept, or the channel closed). */
  get session (): ChannelSession {
    return this.#sessions.current
  }

  /**
   * Kept idle, and the writer connection went down meanwhile (the writer stopped or restarted):
   * a new sender connects at once, where this one dials again after its backoff (up to 1 s), and
   * the first request's records then went to the spool with LOGFUNNEL_ERR_CLOSE_TIMEOUT at its
   * close (the writer judged away after `spoolAfterMs`, 100 ms by default). Before a channel was
   * kept, each request's close() ended the sender and the next connected afresh.
   */
  get stale (): boolean {
    return this.#idle && readReach(this.#thread.control).lost !== this.#lostAtKeep
  }

  /** A destination begins to use the channel (kept idle or not). */
  join (user: ChannelUser): void {
    this.#idle = false
    this.users.add(user)
  }

  /** Not closing: it takes records, and a new destination may share it. */
  get writable (): boolean {
    return this.#closing === undefined
  }

  /**
   * A line into the ring; false when the channel has closed and the line is not kept (the
   * destination counts and reports it). At the process's exit, after a close the application
   * did not ask for, it goes to the spool from this thread.
   */
  write (line: string): boolean {
    if (this.#closing !== undefined) {
      return isProcessExiting() && !this.#closedByApp && (this.#late ??= new LateSpool(this.#thread.control, this.options, { producerId: this.#producerId, made: this.#made })).append(line)
    }
    if (this.#early !== undefined) {
      if (this.#early.append(line)) return true
      this.#early = undefined
    }
    this.#ring.write(line)
    return true
  }

  /** Resolves once every record written so far has a receipt from the writer (FunnelDestination.flush). */
  async flush (deadlineArg: unknown): Promise<void> {
    const deadlineMs = deadline(deadlineArg, 'flush() deadlineMs', this.options.flushTimeoutMs)
    if (this.#closing !== undefined) throw new ClosedError()
    // No sender thread has run and none runs now: no receipt can come. (Before, LOGFUNNEL_ERR_CLOSED.)
    const startError = this.#startFailures.error
    if (this.#thread.exited && startError !== undefined && !this.#ring.senderStarted) throw startError
    this.#ring.publish()
    await this.#calls.request({ code: 'flush', through: this.#ring.published }, { ms: deadlineMs, error: () => new FlushTimeoutError(deadlineMs) })
  }

  /**
   * The close of a destination while others still use this channel: waits, at most `deadlineMs`,
   * until every record written so far has a receipt, or the writer is away and they are in the
   * spool. Nothing is given up: past the deadline the records stay with the sender thread, which
   * goes on with them for the other destinations.
   */
  async settle (deadlineMs: number): Promise<void> {
    if (this.#closing !== undefined || this.#thread.exited) return
    this.#ring.publish()
    const flushed = this.#calls.request({ code: 'flush', through: this.#ring.published, spooledEnds: true })
    await withDeadline(flushed, deadlineMs, () => new FlushTimeoutError(deadlineMs)).catch(() => {})
  }

  /**
   * The application closed the last destination: flushes, then closes the sender thread, waiting
   * for receipts at most `deadlineMs` (FunnelDestination.close).
   */
  async close (deadlineMs: number, spentMs = 0): Promise<void> {
    if (this.#closing === undefined) this.#closedByApp = true
    this.#closing ??= this.#close(deadlineMs, true, spentMs)
    await this.#closing
  }

  /**
   * The close of the last destination (`user`), keeping the channel (its thread, ring and
   * connection) for the next destination made with the same options (funnel.ts keeps it
   * KEEP_MS): flushes within `deadlineMs`; once every record written so far has its receipt, the
   * session ends there: its counters become `stats` (the 'stats' event to `user` and the
   * destinations of the session), and `user` leaves, 'kept'. A destination made meanwhile
   * shares the sender: `user` leaves as at settle(), 'others'. Any other outcome (the deadline
   * passed, the writer away and the rest in the spool, the sender failed or not started, the
   * process ending) closes the channel as close() does, what is left of `deadlineMs` for its
   * flush, and ends as close() ends: 'closed'.
   */
  async closeKept (user: ChannelUser, deadlineMs: number): Promise<'kept' | 'others' | 'closed'> {
    const began = performance.now()
    const open = (): boolean => this.#closing === undefined && !this.#thread.exited && this.#restart === undefined &&
      this.#startFailures.error === undefined && !isProcessExiting()
    let reply: SenderReply | undefined
    if (open()) {
      // A flush ends a worker thread's early phase (early-spool.ts): its lines are the sender's
      // first batches, covered by the flush, and its end ('early-closed') comes before the answer.
      this.#ring.end()
      const flush = { code: 'flush', through: this.#ring.published, spooledEnds: true, keep: true } as const
      reply = await this.#calls.request(flush, { ms: deadlineMs, error: () => new FlushTimeoutError(deadlineMs) }).catch((err: Error) => {
        debug('close (kept): %s', err.message)
        return undefined
      })
    }
    if (this.users.othersOpen(user)) {
      // One made meanwhile: it goes on with this sender (before, it started one of its own).
      this.users.leave(user)
      if (reply === undefined) await this.settle(Math.max(1, deadlineMs - (performance.now() - began)))
      return 'others'
    }
    if (reply?.code !== 'done' || reply.spooled === true || reply.stats === undefined || !open() || this.#early !== undefined) {
      await this.close(deadlineMs, performance.now() - began)
      return 'closed'
    }
    this.users.emit('stats', this.#sessions.end(this.#withRing(reply.stats)))
    this.users.leave(user)
    this.#idle = true
    this.#lostAtKeep = readReach(this.#thread.control).lost
    return 'kept'
  }

  /**
   * Kept with no destination past its time (funnel.ts), or failed meanwhile: closed for good,
   * nothing held; what it would report goes to the debug log (no destination to hear it).
   */
  retire (): void {
    if (!this.#idle || this.#closing !== undefined) return
    this.#closing = this.#close(this.options.closeTimeoutMs, false)
    this.#closing.catch((err: Error) => debug('kept channel retired: %s', err.message))
  }

  /** The sender's counters with the ring's own (lines too large, lines it dropped with no sender to take them). */
  #withRing (stats: SenderStats): SenderStats {
    return { ...stats, tooLarge: stats.tooLarge + this.#ring.tooLarge, dropped: stats.dropped + this.#ring.lost }
  }

  /** With `reportSpooled`, records that went to the spool are reported (the application's own close()). */
  async #close (deadlineMs: number, reportSpooled: boolean, spentMs = 0): Promise<void> {
    closing.add(this)
    try {
      await this.#closeHeld(deadlineMs, reportSpooled, spentMs)
    } finally {
      closing.delete(this)
    }
  }

  /** `spentMs` of `deadlineMs` went to a flush before (closeKept): what is left is the flush's here. */
  async #closeHeld (deadlineMs: number, reportSpooled: boolean, spentMs: number): Promise<void> {
    clearTimeout(this.#restart)
    this.#ring.end()
    const { failed, stopped, writerAway } = await flushForClose(this.#ring, this.#calls, Math.max(1, deadlineMs - spentMs), () => this.#startAgain())
    whenCollected.unregister(this)
    untrackThread(this.#thread)
    let silentHolding: number | undefined
    if (!this.#thread.exited) {
      const end = await closeSenderThread(this.#thread, this.#calls)
      silentHolding = end.silentHolding
      // Until here a process.exit() or a signal still spools first (#onExit).
      offProcessEnd(this)
      this.#unsignal()
      if (end.stats !== undefined) {
        this.users.emit('stats', this.#sessions.closed(this.#withRing(end.stats)))
      }
    }
    const stats = this.#sessions.current.stats
    // The thread is gone: what it never took from the ring goes to the spool from here.
    const rescue = rescueRest(this.#thread)
    const judged = closeError({ stats, rescue, silentHolding, ringLost: this.#ring.lost, stopped, failed, writerAway, deadlineMs }, this.options)
    endClose(judged, stats, reportSpooled, {
      unreached: (ending) => stats !== undefined && this.#unreached.report(readReach(this.#thread.control), stats.spooledRecords, this.users, ending),
      error: (err) => this.emitError(err)
    })
  }

  #onMessage (msg: SenderReply): void {
    if (msg.code === 'error') {
      const err = reviveError(msg.err)
      this.#unreached.saw(err)
      this.emitError(err)
    } else if (msg.code === 'early-closed') {
      this.#early?.end()
      this.#early = undefined
    } else if (msg.code === 'done') {
      this.#calls.done(msg)
    }
  }

  /** To every destination's 'error' listener; with none, a process warning. */
  emitError (err: Error | LogfunnelError): void {
    if (this.#idle) {
      // Every destination closed, each told of its own outcome; nothing is held: the next
      // destination gets a new sender.
      debug('kept channel: %s: retired', err.message)
      this.retire()
      return
    }
    if (this.users.emit('error', err)) return
    // A later one refused as the first was: its warnings are counted, said once at the exit
    // (unless a thread of its started after all: the working directory is back).
    if (this.#thread.refused !== 'later' || this.#ring.senderStarted || refusedReport(err)) warnBeforeExit(err)
  }
}

