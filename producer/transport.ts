/// <reference types="node" preserve="true" />
// The published .d.ts files use Node types (EventEmitter, Buffer); TypeScript 6+ no longer
// loads @types/node unless asked, so the entry points ask for it.
import { EventEmitter } from 'node:events'
import { writeSync } from 'node:fs'
import { parentPort, workerData } from 'node:worker_threads'
import { FlushTimeoutError, LogfunnelError } from '../shared/errors.js'
import { resolveProducerOptions, type ProducerOptions } from '../shared/options.js'
import { countLines, LineFramer, once, splitTooLarge, surelyWithin } from './line-framing.js'
import type { BatchSender } from './sender.js'
import type { Settled } from './receipt-waiters.js'
import { catchThreadFaults, GuardedSender } from './sender-guard.js'
import { wakeReaderPeriodically } from './thread-stream-state.js'
import { toPlainError, withCodeInMessage } from './thread-errors.js'
import { ERROR_EVENT, STATS_EVENT } from './transport-events.js'
import { warnBeforeExit } from './process-warning.js'
import { UnreachedReport } from './unreached-report.js'

/**
 * thread-stream's end() gives up after 10 s of waiting for the worker; the worker's own close
 * deadline stays under it so the sockets are closed cleanly first.
 */
const END_DEADLINE_CAP_MS = 9000

/** Test hook (test/sender-fault.test.ts): LOGFUNNEL_TEST_SENDER_FAULT=end makes end() fail. */
const END_FAULT = process.env.LOGFUNNEL_TEST_SENDER_FAULT === 'end'

/** Keys pino and thread-stream add to a transport's options; they are not ours to check. */
const HOST_KEYS = ['$context', 'pinoWillSendConfig']

/**
 * The stream the worker thread writes into: thread-stream's worker calls `write()` with text
 * read from the shared buffer, stops reading while it returns false, and resumes on `'drain'`.
 * So `onFull: 'block'` fills the shared buffer (the logging thread queues the rest); once the
 * writer is away (`spoolAfterMs`) the wait ends and what is held goes to the spool, since
 * thread-stream holds the process's exit until this thread has read everything. `'drop'` keeps
 * reading and drops past `highWaterMark`; `'spool'` keeps reading and spools.
 *
 * `end()` never waits for receipts when there is a spool: what has none goes to the spool at
 * once (the writer ingests it), so a process exits without delay and without loss. Without a
 * spool it waits for receipts up to `closeTimeoutMs`. When records went to the spool and no
 * writer was ever reached, it says so on stderr, once (unreached-report.ts): at the process's
 * exit the logging thread reads no more messages from this one.
 *
 * pino-abstract-transport is not used here on purpose: it parses each line (JSON or split2)
 * into objects, while logfunnel forwards the bytes untouched and batches whole chunks.
 */
export class FunnelStream extends EventEmitter {
  readonly guard: GuardedSender
  readonly #block: boolean
  #closeTimeoutMs: number
  readonly #flushTimeoutMs: number
  readonly #maxFrameBytes: number
  readonly #framer = new LineFramer()
  #scratch = Buffer.allocUnsafeSlow(64 * 1024)
  #needDrain = false
  #ending = false
  #finished = false
  #wakeTimer = wakeReaderPeriodically()
  readonly #unreached: UnreachedReport

  constructor (opts: ProducerOptions) {
    super()
    const resolved = resolveProducerOptions(opts)
    this.#block = resolved.onFull === 'block'
    this.#maxFrameBytes = resolved.maxFrameBytes
    this.#closeTimeoutMs = Math.min(resolved.closeTimeoutMs, END_DEADLINE_CAP_MS)
    this.#flushTimeoutMs = resolved.flushTimeoutMs
    this.#unreached = new UnreachedReport(resolved)
    const rejected = once((err: Error) => warn(err))
    this.guard = new GuardedSender(resolved, (sender) => {
      // Its wait for room holds no log call (thread-stream buffers them) but the process's exit
      // (thread-stream waits for this thread to read all): with the writer away, it is needless.
      sender.endWaitWhenAway = true
      sender.on('unreachable', (err: LogfunnelError) => {
        this.#unreached.saw(err)
        report(err)
      })
      sender.on('reject', rejected)
    }, (err) => {
      report(err)
      // A failure during end(): what had no receipt is in the spool; let thread-stream finish.
      if (this.#ending) this.#finish()
      else this.#wakeDrain()
    })
  }

  get sender (): BatchSender {
    return this.guard.current
  }

  get writableNeedDrain (): boolean {
    return this.#needDrain
  }

  get writableEnded (): boolean {
    return this.#ending
  }

  /**
   * Text from thread-stream: it may end mid-line (the rest waits for the next chunk). An
   * exception here would stop thread-stream's reading for good, so it is handled at once: the
   * failed sender spools what it holds and the text goes to the new one (a failure in the
   * middle of a chunk can write that chunk's earlier lines twice; nothing is lost).
   */
  write (chunk: string): boolean {
    this.#framer.take(chunk, this.#sendGuarded)
    if (!this.#block || this.sender.hasRoom) return true
    if (!this.#needDrain) {
      this.#needDrain = true
      void this.sender.waitForRoom().then(() => this.#wakeDrain())
    }
    return false
  }

  /** Whole lines to the sender; a sender that throws is replaced and the lines go to the new one. */
  readonly #sendGuarded = (text: string): void => {
    try {
      this.#send(text)
    } catch (err) {
      this.guard.fault(err)
      if (!this.guard.broken) this.#send(text)
    }
  }

  #wakeDrain (): void {
    if (!this.#needDrain) return
    this.#needDrain = false
    this.emit('drain')
  }

  /**
   * Whole lines to the sender, as bytes; a line over `maxFrameBytes` is counted, not sent.
   * thread-stream hands over up to its whole buffer (4 MiB) at once: encoding that into a
   * reused buffer costs ~0.85 ms against ~13 ms for a fresh `Buffer.from` (measured here on
   * 3.6 MB of 100-B records). The sender copies the bytes into its batches before returning.
   */
  #send (text: string): void {
    const length = Buffer.byteLength(text)
    if (this.#scratch.length < length) this.#scratch = Buffer.allocUnsafeSlow(Math.max(length, 2 * this.#scratch.length))
    const bytes = this.#scratch.subarray(0, this.#scratch.write(text))
    // Then no line in it can be too large.
    if (surelyWithin(text, this.#maxFrameBytes)) {
      this.sender.writeBytes(bytes, countLines(bytes))
      return
    }
    splitTooLarge(bytes, this.#maxFrameBytes, (run, records) => this.sender.writeBytes(run, records), (lineBytes) => this.sender.rejectTooLarge(lineBytes))
  }

  /**
   * thread-stream calls this for `flush(cb)`: resolves when everything so far has a receipt;
   * once the writer is judged away (no answer for `spoolAfterMs`, the rule that copies batches
   * to the spool, as for close()) and everything without a receipt is in the spool, or after
   * `flushTimeoutMs` (a writer that answers but does not receipt), once it is copied there,
   * where it is as safe as a receipt would make it (the writer ingests it; it is sent on too):
   * a warning with LOGFUNNEL_ERR_FLUSH_TIMEOUT says so. It never rejects: thread-stream treats
   * a rejected flush as fatal for the whole stream. Before, with no writer, `flush(cb)` never
   * called back and a script that awaited it never ended; later it called back only after
   * `flushTimeoutMs` (10 s), as long as a test runner's hook timeout (vitest's and jest's 5 to
   * 10 s), so an `afterAll` that flushed failed every test run without a writer.
   */
  async flush (): Promise<void> {
    let settled: Settled
    try {
      settled = await this.sender.settle(this.#flushTimeoutMs)
    } catch (err) {
      if ((err as LogfunnelError).code === 'LOGFUNNEL_ERR_CLOSED') return
      const { unreceipted, spooled } = this.sender.copyToSpool()
      if (unreceipted === 0) return
      warn(new FlushTimeoutError(this.#flushTimeoutMs, unreceipted, spooled ? 'copied to the spool, where the writer takes them' : 'held in memory (no spool to copy them to, or it could not be written)'))
      return
    }
    if (settled === 'receipted') return
    const { unreceipted } = this.sender.copyToSpool()
    if (unreceipted > 0) warn(new FlushTimeoutError(this.#flushTimeoutMs, unreceipted, 'copied to the spool, where the writer takes them', true))
  }

  /** Spools what has no receipt (or, with no spool, waits up to `closeTimeoutMs` for it),
   * closes the sockets, reports the counters, emits 'close'. */
  end (): void {
    if (this.#ending) return
    this.#ending = true
    const rest = this.#framer.end()
    if (rest.length > 0) this.write(rest)
    if (END_FAULT) {
      // Test hook: a failed end(). thread-stream answers a destination's 'error' by
      // terminating this thread with its sockets open.
      this.sender.spoolAndDestroy()
      this.emit('error', new Error('test fault at end'))
      return
    }
    if (this.sender.spoolAndDestroy()) {
      this.#unreached.report(this.guard.reach, this.guard.stats.spooledRecords)
      this.#finish()
      return
    }
    this.sender.close(this.#closeTimeoutMs).catch(warnLost).finally(() => this.#finish())
  }

  /** Reports the counters and emits 'close', which lets thread-stream end this thread. */
  #finish (): void {
    if (this.#finished) return
    this.#finished = true
    this.sender.destroy()
    clearInterval(this.#wakeTimer)
    parentPort?.postMessage({ code: 'EVENT', name: STATS_EVENT, args: [this.guard.stats] })
    setImmediate(() => this.emit('close'))
  }
}

/**
 * end() could neither spool nor deliver what has no receipt. At process exit the logging thread
 * reads no more messages from this one (a warning would never print: before, the loss was
 * silent), so the line is also written to stderr directly.
 */
function warnLost (err: Error & { code?: string, lost?: number }): void {
  if ((err.lost ?? 0) > 0) {
    try {
      writeSync(2, `logfunnel: ${withCodeInMessage(err).message}\n`)
    } catch {}
  }
  warn(err)
}

function warn (err: Error & { code?: string }): void {
  // A cloned Error loses its code: keep it in the text.
  if (parentPort !== null) parentPort.postMessage({ code: 'WARNING', err: withCodeInMessage(err) })
  else warnBeforeExit(err)
}

/**
 * A failure the logging thread must hear of: ERROR_EVENT on the ThreadStream and a process
 * warning. The code goes into the warning's text, since the clone of an Error loses it.
 */
function report (err: LogfunnelError): void {
  if (parentPort === null) {
    warnBeforeExit(err)
    return
  }
  parentPort.postMessage({ code: 'EVENT', name: ERROR_EVENT, args: [toPlainError(err)] })
  parentPort.postMessage({ code: 'WARNING', err: withCodeInMessage(err) })
}

/**
 * pino transport target: `pino.transport({ target: 'logfunnel/transport', options })`.
 * Options are the producer options (see README); unknown keys are rejected.
 */
export default function build (opts: ProducerOptions & Record<string, unknown> = {}): FunnelStream {
  const own: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(opts)) {
    if (!HOST_KEYS.includes(key)) own[key] = value
  }
  try {
    const stream = new FunnelStream(own as ProducerOptions)
    takeThreadFaults(stream.guard)
    return stream
  } catch (err) {
    // The error crosses to the logging thread as a plain Error (its code is dropped): the
    // message carries the code.
    if (err instanceof LogfunnelError) err.message = `${err.code}: ${err.message}`
    throw err
  }
}

/**
 * In thread-stream's worker an uncaught exception posts ERROR and ends the thread: the
 * ThreadStream then emits 'error', which pino does not listen for, so the application would
 * crash. This thread runs our sender: its exceptions are handled by the guard instead.
 */
function takeThreadFaults (guard: GuardedSender): void {
  const stateBuf = (workerData as { stateBuf?: unknown } | null)?.stateBuf
  if (parentPort === null || !(stateBuf instanceof SharedArrayBuffer)) return
  process.removeAllListeners('uncaughtException')
  process.removeAllListeners('unhandledRejection')
  catchThreadFaults(guard)
}
