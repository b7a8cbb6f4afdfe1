import { EventEmitter } from 'node:events'
import { mkdirSync } from 'node:fs'
import { setTimeout as delay } from 'node:timers/promises'
import { debuglog } from 'node:util'
import * as zmq from 'zeromq'
import { lockPathFor, parseEndpoint } from '../shared/endpoint.js'
import { BindError } from '../shared/errors.js'
import { MAX_MESSAGE_SIZE_FACTOR, resolveWriterOptions, type ResolvedWriterOptions, type WriterOptions } from '../shared/options.js'
import { checkPayload, decodeHeader, HEADER_BYTES, type RejectReason } from '../shared/protocol.js'
import { EndpointLock } from './endpoint-lock.js'
import { FileSink } from './file-sink.js'
import { ReceiptPublisher } from './receipts.js'
import { WriterStats } from './stats.js'
import { Telemetry } from './telemetry.js'

const debug = debuglog('logfunnel')

/** Above this many bytes waiting for the file, the receive loop pauses (bounds writer memory). */
const WRITE_QUEUE_BYTES = 8 * 1024 * 1024

/** Final and periodic counters; `rejected` is keyed by the protocol's reject reasons. */
export interface WriterSummary {
  records: number
  bytes: number
  batches: number
  duplicates: number
  producers: number
  rejected: Partial<Record<RejectReason, number>>
}

interface ProducerState {
  /** The next batch sequence this producer must send. */
  next: number
}

/**
 * The one process that owns the log file: binds a PULL socket for producers' lines and a PUB
 * socket for receipts, checks every message, writes each producer's batches strictly in
 * sequence through a FileSink, and publishes receipts once batches are in the file.
 *
 * Never throws on what a producer sends: a bad message is counted under its reason and skipped.
 * Events: `'error'` (FileError) when the file cannot be written; `'stats'` (StatsLine) every
 * `statsIntervalMs` and once at stop. With `metricsPort` set, serves Prometheus `/metrics`.
 *
 * @example
 * ```ts
 * const writer = new Writer({ file: './logs/app.log' })
 * await writer.start()
 * process.once('SIGTERM', () => writer.stop())
 * ```
 */
export class Writer extends EventEmitter {
  readonly options: ResolvedWriterOptions
  #pull: zmq.Pull | undefined
  #sink: FileSink | undefined
  #receipts: ReceiptPublisher | undefined
  #lock: EndpointLock | undefined
  #producers = new Map<string, ProducerState>()
  #summary: WriterSummary = { records: 0, bytes: 0, batches: 0, duplicates: 0, producers: 0, rejected: {} }
  #stopRequested = false
  /** Ends the receive loop's current wait (set per wait, see #receiveLoop). */
  #wake: (() => void) | undefined
  #loop: Promise<void> | undefined
  #stats = new WriterStats()
  #telemetry: Telemetry

  constructor (opts: WriterOptions = {}) {
    super()
    this.options = resolveWriterOptions(opts)
    this.#telemetry = new Telemetry(this.options, this.#stats, () => this.summary, (line) => this.emit('stats', line))
  }

  /**
   * Takes the endpoint lock, opens the file, binds both sockets and starts receiving.
   * Rejects with LOGFUNNEL_ERR_ENDPOINT_IN_USE, LOGFUNNEL_ERR_FILE or LOGFUNNEL_ERR_BIND (also for
   * the metrics port).
   */
  async start (): Promise<void> {
    const { endpoint, receiptEndpoint, file, maxFrameBytes, receiveHighWaterMark } = this.options
    this.#lock = new EndpointLock(endpoint, lockPathFor(endpoint))
    try {
      await this.#telemetry.listen()
      this.#sink = new FileSink(file)
      await this.#sink.ready()
      this.#sink.on('error', (err: Error) => this.emit('error', err))

      const pull = new zmq.Pull({
        receiveHighWaterMark,
        maxMessageSize: maxFrameBytes * MAX_MESSAGE_SIZE_FACTOR + HEADER_BYTES,
        linger: 0
      })
      this.#pull = pull
      await bind(pull, endpoint)
      const pub = new zmq.XPublisher({ linger: 0 })
      await bind(pub, receiptEndpoint)
      this.#receipts = new ReceiptPublisher(pub, this.#sink)
      this.#telemetry.attach(this.#sink, pull)
    } catch (err) {
      this.#pull?.close()
      await this.#telemetry.close()
      this.#lock.release()
      throw err
    }
    this.#loop = this.#receiveLoop()
  }

  /** The metrics URL (`http://host:port/metrics`) when `metricsPort` is set and the writer started. */
  get metricsUrl (): string | undefined {
    return this.#telemetry.metricsUrl
  }

  /** A copy of the counters so far. */
  get summary (): WriterSummary {
    return { ...this.#summary, rejected: { ...this.#summary.rejected }, producers: this.#producers.size }
  }

  /**
   * Stops receiving once the queue is drained (idle for `drainIdleMs`, at most
   * `drainTimeoutMs`), writes and fsyncs the file, publishes the final receipts, releases the
   * endpoint. Resolves with the final summary.
   */
  async stop (): Promise<WriterSummary> {
    this.#stopRequested = true
    this.#wake?.()
    await this.#loop
    await this.#sink?.end()
    await this.#receipts?.close()
    await this.#telemetry.close()
    this.#lock?.release()
    return this.summary
  }

  /** Reopens the file by path, for logrotate's `create` mode. */
  reopen (): void {
    this.#sink?.reopen()
  }

  async #receiveLoop (): Promise<void> {
    const pull = this.#pull as zmq.Pull
    const sink = this.#sink as FileSink
    const { drainIdleMs, drainTimeoutMs, slowBatchMs } = this.options
    const TIMEOUT = Symbol('timeout')
    let stopping = false
    let drainDeadline = 0
    let pending = receive(pull)
    for (;;) {
      // A fresh promise per wait, dropped after the race: racing one long-lived promise would
      // keep every message received reachable until it settles (nodejs/node#17469).
      let timer: NodeJS.Timeout | undefined
      const wait = new Promise<typeof TIMEOUT>((resolve) => {
        if (stopping) timer = setTimeout(resolve, Math.max(0, Math.min(drainIdleMs, drainDeadline - Date.now())), TIMEOUT)
        else if (this.#stopRequested) resolve(TIMEOUT)
        else this.#wake = () => resolve(TIMEOUT)
      })
      const frames = await Promise.race([pending, wait])
      clearTimeout(timer)
      this.#wake = undefined
      if (frames === TIMEOUT) {
        if (stopping) break
        stopping = true
        drainDeadline = Date.now() + drainTimeoutMs
        continue
      }
      if (frames === undefined) break
      this.#handle(frames as Buffer[])
      pending = receive(pull)
      if (sink.pendingBytes > WRITE_QUEUE_BYTES) await sink.waitBelow(WRITE_QUEUE_BYTES / 2)
      if (slowBatchMs > 0) await delay(slowBatchMs)
      if (stopping && Date.now() >= drainDeadline) break
    }
    pull.close()
    await pending
  }

  #handle (frames: Buffer[]): void {
    const { maxFrameBytes } = this.options
    this.#stats.received()
    if (frames.length === 1) {
      const payload = frames[0] as Buffer
      const lines = checkPayload(payload, maxFrameBytes)
      if (typeof lines === 'string') return this.#reject(lines)
      this.#write(payload, lines)
      return
    }
    if (frames.length !== 2) return this.#reject('bad_frame_count')
    const decoded = decodeHeader(frames[0] as Buffer)
    if (!decoded.ok) return this.#reject(decoded.reason)
    const { header } = decoded
    const payload = frames[1] as Buffer
    const lines = checkPayload(payload, maxFrameBytes)
    if (typeof lines === 'string') return this.#reject(lines)
    if (lines !== header.records) return this.#reject('count_mismatch')

    const key = header.producerId.toString('hex')
    let state = this.#producers.get(key)
    if (state === undefined) {
      state = { next: header.base }
      this.#producers.set(key, state)
    }
    // The producer holds receipts up to base - 1 (from an earlier writer): nothing before it is owed.
    if (header.base > state.next) state.next = header.base
    if (header.seq < state.next) {
      this.#summary.duplicates++
      this.#receipts?.republish(header.producerId)
      return
    }
    if (header.seq > state.next) {
      debug('producer %s skipped ahead: got %d, expected %d', key, header.seq, state.next)
      return this.#reject('out_of_sequence')
    }
    state.next++
    const end = this.#write(payload, lines)
    this.#receipts?.track(header.producerId, header.seq, end)
  }

  #write (payload: Buffer, lines: number): number {
    this.#summary.records += lines
    this.#summary.bytes += payload.length
    this.#summary.batches++
    const end = (this.#sink as FileSink).append(payload)
    this.#stats.appended(end)
    return end
  }

  #reject (reason: RejectReason): void {
    this.#summary.rejected[reason] = (this.#summary.rejected[reason] ?? 0) + 1
    debug('rejected a message: %s', reason)
  }
}

/** One receive; resolves undefined once the socket is closed. */
async function receive (pull: zmq.Pull): Promise<Buffer[] | undefined> {
  try {
    return await pull.receive()
  } catch (err) {
    if (pull.closed) return undefined
    throw err
  }
}

async function bind (socket: zmq.Socket, endpoint: string): Promise<void> {
  const parsed = parseEndpoint(endpoint)
  if (parsed.transport === 'ipc') {
    mkdirSync(parsed.path.slice(0, parsed.path.lastIndexOf('/')) || '/', { recursive: true, mode: 0o700 })
  }
  try {
    await socket.bind(endpoint)
  } catch (err) {
    throw new BindError(endpoint, { cause: err })
  }
}
