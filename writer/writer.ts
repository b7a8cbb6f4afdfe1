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
import { FileSink, type SinkStats } from './file-sink.js'
import { ReceiptPublisher } from './receipts.js'

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
  /** File counters: fsyncs, rotations, failed file operations and the last one. */
  fsyncs: SinkStats['fsyncs']
  rotations: SinkStats['rotations']
  fileErrors: SinkStats['fileErrors']
  lastFileError: SinkStats['lastFileError']
  /** Bytes given up at stop because the file stayed unwritable past `drainTimeoutMs` (producers still hold them). */
  unwrittenBytes: number
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
 * Events: `'error'` (FileError) each time a file operation fails (the sink retries with
 * backoff; listen for it, or the first fault throws); `'resumed'` when it succeeds again; `'recovered'` when a torn tail was moved aside
 * at start; `'rotated'` after each rotation.
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
  #summary = { records: 0, bytes: 0, batches: 0, duplicates: 0, rejected: {} as WriterSummary['rejected'], unwrittenBytes: 0 }
  #stopRequested: (() => void) | undefined
  #stopSignal: Promise<void>
  #loop: Promise<void> | undefined

  constructor (opts: WriterOptions = {}) {
    super()
    this.options = resolveWriterOptions(opts)
    this.#stopSignal = new Promise((resolve) => { this.#stopRequested = resolve })
  }

  /**
   * Takes the endpoint lock, opens the file, binds both sockets and starts receiving.
   * Rejects with LOGFUNNEL_ERR_ENDPOINT_IN_USE, LOGFUNNEL_ERR_FILE or LOGFUNNEL_ERR_BIND.
   */
  async start (): Promise<void> {
    const { endpoint, receiptEndpoint, file, maxFrameBytes, receiveHighWaterMark } = this.options
    this.#lock = new EndpointLock(endpoint, lockPathFor(endpoint))
    try {
      this.#sink = new FileSink(file, this.options)
      for (const event of ['error', 'resumed', 'recovered', 'rotated']) {
        this.#sink.on(event, (arg: unknown) => this.emit(event, arg))
      }
      await this.#sink.ready()

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
    } catch (err) {
      this.#pull?.close()
      this.#lock.release()
      throw err
    }
    this.#loop = this.#receiveLoop()
  }

  /** A copy of the counters so far. */
  get summary (): WriterSummary {
    const { records, bytes, batches, duplicates, rejected, unwrittenBytes } = this.#summary
    const sink = this.#sink?.stats ?? { fsyncs: 0, rotations: 0, fileErrors: 0, lastFileError: null }
    return { records, bytes, batches, duplicates, producers: this.#producers.size, rejected: { ...rejected }, ...sink, unwrittenBytes }
  }

  /**
   * Stops receiving once the queue is drained (idle for `drainIdleMs`, at most
   * `drainTimeoutMs`), writes and fsyncs the file, publishes the final receipts, releases the
   * endpoint. Resolves with the final summary. A file that stays unwritable is given up after
   * another `drainTimeoutMs` (`unwrittenBytes` in the summary; those batches have no receipt).
   */
  async stop (): Promise<WriterSummary> {
    this.#stopRequested?.()
    await this.#loop
    this.#summary.unwrittenBytes = await this.#sink?.end(this.options.drainTimeoutMs) ?? 0
    await this.#receipts?.close()
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
    const stopSignal = this.#stopSignal.then(() => TIMEOUT)
    let pending = receive(pull)
    for (;;) {
      const wait = stopping
        ? delay(Math.max(0, Math.min(drainIdleMs, drainDeadline - Date.now())), TIMEOUT)
        : stopSignal
      const frames = await Promise.race([pending, wait])
      if (frames === TIMEOUT) {
        if (stopping) break
        stopping = true
        drainDeadline = Date.now() + drainTimeoutMs
        continue
      }
      if (frames === undefined) break
      this.#handle(frames as Buffer[])
      pending = receive(pull)
      if (sink.pendingBytes > WRITE_QUEUE_BYTES) {
        // While the file fails the loop waits here, so producers see backpressure; once asked
        // to stop, it waits drainTimeoutMs at most and then stops receiving.
        const stopWait = stopSignal.then(async () => await delay(drainTimeoutMs, undefined, { ref: false }))
        await Promise.race([sink.waitBelow(WRITE_QUEUE_BYTES / 2), stopWait])
        if (sink.pendingBytes > WRITE_QUEUE_BYTES) break
      }
      if (slowBatchMs > 0) await delay(slowBatchMs)
      if (stopping && Date.now() >= drainDeadline) break
    }
    pull.close()
    await pending
  }

  #handle (frames: Buffer[]): void {
    const { maxFrameBytes } = this.options
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
    return (this.#sink as FileSink).append(payload)
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
