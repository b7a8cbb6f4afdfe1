import { EventEmitter } from 'node:events'
import { statSync } from 'node:fs'
import { debuglog } from 'node:util'
import * as zmq from 'zeromq'
import { resolveWriterOptions, type ResolvedWriterOptions, type WriterOptions } from '../shared/options.js'
import { decodeHeader, type RejectReason } from '../shared/protocol.js'
import type { WriterSummary } from '../shared/summary.js'

export type { WriterSummary }
import { acquireWriterLocks } from './endpoint-lock.js'
import { bind, openDataSocket, type DataSocket } from './data-socket.js'
import { ZmtpPull } from './zmtp-pull.js'
import { checkExposure, prepareEndpointDirs, removeSocketFile } from './endpoint-security.js'
import { FileSink } from './sink/file-sink.js'
import { defaultStateFile, MAX_FRAME_BYTES } from '../shared/options.js'
import { loadProducerStates, migrateLegacyState } from './producer-state.js'
import { makeStateDir, StateKeeper } from './state-keeper.js'
import { sleep, StopRequest } from './cancellable-waits.js'
import { InputNotices } from './input-notices.js'
import { ConnectionRefusals, type RefusalReason } from './connection-refusals.js'
import { CurveDataCap } from './curve-data-cap.js'
import { checkMessage } from './message-check.js'
import { ProducerTable } from './producer-table.js'
import { ReceiptPublisher } from './receipts.js'
import { receiveLoop, WRITE_QUEUE_BYTES } from './receive-loop.js'
import { endpointKey } from '../shared/spool.js'
import { sideFileMode } from './side-files.js'
import { SpoolIngester } from './spool-ingest.js'
import type { SpoolEntryHandling } from './spool-ingest-options.js'
import { WriterStats } from './stats.js'
import { Telemetry } from './telemetry.js'
import { startCurveServer, type CurveServer, type ZapDenial } from './zap-handler.js'

const debug = debuglog('logfunnel')

/** Not options: what tests put in to make faults and a slow writer (test/fixtures/slow-writer.ts). */
export interface WriterHooks {
  /** Awaited after each message received, before the next is taken. */
  afterMessage?: () => Promise<void>
  /** Awaited at the end of start(), when the writer already receives (a start that takes long). */
  started?: () => Promise<void>
  /** Awaited in stop() once the file sink has ended, before the metrics endpoint closes. */
  sinkEnded?: () => Promise<void>
}

/**
 * The one process that owns the log file: binds a PULL socket for producers' lines and a PUB
 * socket for receipts, checks every message, writes each producer's batches strictly in
 * sequence through a FileSink, and publishes receipts once batches are in the file.
 *
 * Never throws on what a producer sends: a bad message is counted under its reason and skipped.
 * Events: `'error'` (FileError) each time a file operation fails (the sink retries with
 * backoff; listen for it, or the first fault throws); `'resumed'` when it succeeds again; `'recovered'` when a torn tail was moved aside
 * at start; `'rotated'` after each rotation; `'moved'` ({ file, newFile, reopenInMs }) when the file
 * was renamed away without a SIGHUP (it is reopened); `'denied'` ({ publicKey, address }) when a CURVE
 * handshake is refused; `'warning'` (a JSON-ready object: spool and state problems);
 * `'stats'` (StatsLine) every `statsIntervalMs` and once at stop. With `metricsPort` set,
 * serves Prometheus `/metrics`.
 *
 * Throws LOGFUNNEL_ERR_UNSAFE_ENDPOINT at construction for a tcp endpoint beyond loopback
 * without CURVE.
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
  #pull: DataSocket | undefined
  #sink: FileSink | undefined
  #receipts: ReceiptPublisher | undefined
  #locks: { release: () => void } | undefined
  #producers = new ProducerTable()
  #ingester: SpoolIngester | undefined
  #persisting: Promise<void> | undefined
  #curve: CurveServer | undefined
  readonly #state: StateKeeper
  #summary = { records: 0, bytes: 0, batches: 0, duplicates: 0, rejected: {} as WriterSummary['rejected'], unwrittenBytes: 0, denied: 0, conflicts: 0 }
  readonly #stop = new StopRequest()
  readonly #notices: InputNotices
  readonly #refusals: ConnectionRefusals
  #stats = new WriterStats()
  #telemetry: Telemetry
  #loop: Promise<void> | undefined

  readonly #hooks: WriterHooks

  constructor (opts: WriterOptions = {}, hooks: WriterHooks = {}) {
    super()
    this.options = resolveWriterOptions(opts)
    this.#hooks = hooks
    checkExposure(this.options)
    this.#notices = new InputNotices(this.options.maxFrameBytes, (event) => this.emit('warning', event))
    this.#refusals = new ConnectionRefusals((event) => this.emit('warning', event))
    this.#state = new StateKeeper(this.#producers, this.options.stateFile, () => {
      const receipts = this.#receipts
      if (receipts !== undefined) this.#producers.prune(Date.now(), (key) => receipts.forget(key))
    }, (event) => this.emit('warning', event))
    this.#telemetry = new Telemetry(this.options, this.#stats, () => this.summary, (line) => this.emit('stats', line))
  }

  /**
   * Checks the endpoint directories, takes the locks of both endpoints and of the file, opens the file, binds both
   * sockets and starts receiving. Rejects with LOGFUNNEL_ERR_UNSAFE_ENDPOINT,
   * LOGFUNNEL_ERR_ENDPOINT_IN_USE, LOGFUNNEL_ERR_FILE or LOGFUNNEL_ERR_BIND (also for the
   * metrics port).
   */
  async start (): Promise<void> {
    const { endpoint, receiptEndpoint, file, stateFile, spoolDir, spoolPollMs, socketMode } = this.options
    prepareEndpointDirs(this.options)
    this.#locks = await acquireWriterLocks(endpoint, receiptEndpoint, file)
    let pub: zmq.XPublisher | undefined
    try {
      await this.#telemetry.listen()
      this.#sink = new FileSink(file, this.options)
      for (const event of ['error', 'resumed', 'recovered', 'rotated', 'moved']) {
        this.#sink.on(event, (arg: unknown) => this.emit(event, arg))
      }
      await this.#sink.ready()
      // The files the writer creates beside the log (state, `.torn`) get the log file's mode, never wider.
      this.#state.mode = sideFileMode(statSync(file).mode)
      if (stateFile === defaultStateFile(file)) {
        const migrated = migrateLegacyState(`${file}.state.json`, stateFile)
        if (migrated !== undefined) this.emit('warning', { event: 'state-migrated', from: migrated, to: stateFile })
      }
      await makeStateDir(stateFile)
      const loaded = loadProducerStates(stateFile)
      this.#producers.restore(loaded.states)
      if (loaded.problem !== undefined) this.emit('warning', { event: 'state-ignored', file: stateFile, problem: loaded.problem })
      const curveCap = new CurveDataCap((open) => this.#refusals.refused('limit', open))
      this.#curve = await startCurveServer(this.options, (denial) => this.#onDenied(denial), () => curveCap.admit())

      const pull = await openDataSocket(this.options, this.#curve, (events) => curveCap.watch(events))
      this.#pull = pull
      if (pull instanceof ZmtpPull) {
        const ring = pull.ring
        this.#sink.on('written', (end: number) => ring.release(end))
        pull.events.on('oversize', (frames: Buffer[], bytes: number) => this.#onOversize(frames, bytes))
        pull.events.on('refused', (reason: RefusalReason, open: number) => this.#refusals.refused(reason, open))
      }
      pub = new zmq.XPublisher({ linger: 0, ...this.#curve.socketOptions })
      await bind(pub, receiptEndpoint, socketMode)
      this.#receipts = new ReceiptPublisher(pub, this.#sink, this.#producers)
      this.#telemetry.attach(this.#sink, pull)
    } catch (err) {
      this.#pull?.close()
      pub?.close()
      await this.#telemetry.close()
      await this.#curve?.release()
      this.#locks.release()
      throw err
    }
    if (spoolDir !== undefined) {
      const sink = this.#sink
      this.#ingester = new SpoolIngester({ dir: spoolDir, pollMs: spoolPollMs, endpointKeys: new Set([endpoint, ...this.options.spoolEndpoints].map(endpointKey)), tornMode: this.#state.mode & 0o600 }, {
        handle: (frames, entry) => this.#handle(frames, entry),
        sync: async () => await this.#persistWritten(),
        backpressure: async () => await sink.waitBelow(WRITE_QUEUE_BYTES)
      })
      for (const event of ['torn', 'rejected', 'foreign', 'stale', 'gap']) {
        this.#ingester.on(event, (info: object) => this.emit('warning', { event: `spool-${event}`, ...info }))
      }
      this.#ingester.on('error', (err: Error) => this.emit('warning', { event: 'spool-error', message: err.message }))
      this.#ingester.start()
    }
    this.#loop = receiveLoop({
      pull: this.#pull,
      sink: this.#sink,
      options: this.options,
      stop: this.#stop,
      ingester: () => this.#ingester,
      handle: (frames) => this.#handle(frames),
      received: () => this.#stats.received(),
      afterMessage: this.#hooks.afterMessage
    })
    this.#persisting = this.#persistLoop()
    await this.#hooks.started?.()
  }

  /** The metrics URL (`http://host:port/metrics`) when `metricsPort` is set and the writer started. */
  get metricsUrl (): string | undefined {
    return this.#telemetry.metricsUrl
  }

  /** A copy of the counters so far. */
  get summary (): WriterSummary {
    const { records, bytes, batches, duplicates, rejected, unwrittenBytes, denied, conflicts } = this.#summary
    const sink = this.#sink?.stats ?? { fsyncs: 0, rotations: 0, fileErrors: 0, lastFileError: null }
    const spool = this.#ingester === undefined ? { files: 0, entries: 0, torn: 0, rejected: 0, foreign: 0, leftAtStop: 0 } : { ...this.#ingester.counts }
    return { records, bytes, batches, duplicates, producers: this.#producers.size, rejected: { ...rejected }, spool, ...sink, unwrittenBytes, denied, conflicts, stateSaveMaxMs: Math.ceil(this.#state.maxSaveMs), refusedConnections: this.#refusals.total }
  }

  /**
   * Stops receiving once the queue is drained (idle for `drainIdleMs`) and the spool files ready
   * at the stop or landing meanwhile are taken (StopDrain), at most `drainTimeoutMs`; writes and
   * fsyncs the file, publishes the final receipts, releases the endpoint. Resolves with the final
   * summary (`spool.leftAtStop`: spool files left for the next writer). A file that stays
   * unwritable is given up after another `drainTimeoutMs` (`unwrittenBytes` in the summary, and
   * not in its `records` or `bytes`; those batches have no receipt).
   */
  async stop (): Promise<WriterSummary> {
    this.#stop.request()
    await this.#loop
    // The ingester hands nothing over from now on and stops waiting for room; it and the state
    // loop may wait for the file to be written: end() settles those waits.
    const ingesting = this.#ingester?.stop()
    const sink = this.#sink
    if (sink !== undefined) {
      this.#summary.unwrittenBytes = await sink.end(this.options.drainTimeoutMs)
      // records and bytes count batches as they are handed to the file: those it gave up are not in it.
      this.#summary.records -= sink.unwrittenRecords
      this.#summary.bytes -= this.#summary.unwrittenBytes
    }
    await this.#hooks.sinkEnded?.()
    await ingesting
    await this.#persisting
    // Everything handled is written and fsynced by end(), so the state saved after it is exact;
    // if the file was given up, the last periodic state (taken before an fsync) stays.
    if (this.#summary.unwrittenBytes === 0) this.#state.saveNow(true)
    await this.#receipts?.close()
    if (this.#receipts !== undefined) removeSocketFile(this.options.receiptEndpoint)
    if (this.#pull !== undefined && !(this.#pull instanceof ZmtpPull)) removeSocketFile(this.options.endpoint)
    await this.#telemetry.close()
    await this.#curve?.release()
    this.#locks?.release()
    return this.summary
  }

  /** Reopens the file by path, for logrotate's `create` mode. */
  reopen (): void {
    this.#sink?.reopen()
  }

  /**
   * Saves, every `statePersistMs`, the next sequence per producer as of a moment whose batches
   * have since been written (as durable as a receipt): after a crash the saved state can lag
   * (resent batches written after it are written again) but never runs ahead (which would
   * lose batches).
   */
  async #persistLoop (): Promise<void> {
    for (;;) {
      const stop = this.#stop.wait()
      const tick = sleep(this.options.statePersistMs)
      const stopped = await Promise.race([tick.promise.then(() => false), stop.promise.then(() => true)])
      stop.cancel()
      tick.cancel()
      if (stopped) return
      try {
        await this.#persistWritten()
      } catch (err) {
        this.emit('warning', { event: 'state-not-saved', message: (err as Error).message })
      }
    }
  }

  /** The state, once what it covers is in the file (StateKeeper.persistWritten). */
  async #persistWritten (): Promise<void> {
    const sink = this.#sink as FileSink
    await this.#state.persistWritten(async () => await sink.flushed())
  }

  /**
   * Handles one message; returns the sink offset its payload ends at when it was written.
   * A spool entry may be larger than `maxFrameBytes` (up to MAX_FRAME_BYTES): a producer whose
   * `maxFrameBytes` exceeds the writer's batches that large, and its batches, refused over the
   * network as `too_large`, reach the spool (a full window, close()); the entry is in memory
   * already, so it is written rather than lost.
   */
  #handle (frames: Buffer[], spool?: SpoolEntryHandling): number | undefined {
    const fromSpool = spool !== undefined
    const checked = checkMessage(frames, fromSpool ? MAX_FRAME_BYTES : this.options.maxFrameBytes)
    if (checked.kind === 'reject') {
      if (checked.tooLarge !== undefined && !fromSpool) this.#tooLarge(checked.tooLarge.producerId, checked.tooLarge.bytes)
      return this.#reject(checked.reason)
    }
    const { body } = checked
    if (checked.kind === 'plain') {
      if (body.bad > 0) this.#linesDropped('plain', body)
      return this.#write(body.good, body.lines)
    }
    const { header } = checked
    const verdict = this.#producers.admit(header, frames[1] as Buffer, fromSpool, spool?.acceptGap === true)
    switch (verdict.kind) {
      case 'write': {
        if (verdict.skippedFrom !== undefined && spool !== undefined) spool.skipped = { expected: verdict.skippedFrom, seq: header.seq }
        if (body.bad > 0) this.#linesDropped(verdict.key, body)
        const end = this.#write(body.good, body.lines, { producer: verdict.key, seq: header.seq, records: body.lines })
        this.#receipts?.track(header.producerId, header.seq, end)
        return end
      }
      case 'duplicate':
        this.#summary.duplicates++
        this.#receipts?.republish(header.producerId)
        return undefined
      case 'gap':
        if (spool !== undefined) spool.gapped = { expected: verdict.expected, seq: header.seq }
        debug('producer %s skipped ahead: got %d, expected %d', verdict.key, header.seq, verdict.expected)
        this.#receipts?.gap(header.producerId)
        return this.#reject('out_of_sequence')
      default:
        // Another sender of the id (or a forged header): its batch is not written and moves nothing.
        this.#summary.conflicts++
        if (verdict.first) this.emit('warning', { event: 'producer-conflict', producerId: verdict.key, kind: verdict.kind, seq: header.seq, base: header.base, expected: verdict.expected })
        return this.#reject(verdict.kind)
    }
  }

  #write (payload: Buffer, lines: number, batch: { records: number, producer?: string, seq?: number } = { records: lines }): number {
    this.#summary.records += lines
    this.#summary.bytes += payload.length
    this.#summary.batches++
    const end = (this.#sink as FileSink).append(payload, batch)
    this.#stats.appended(end, lines, payload.length)
    return end
  }

  /**
   * A message the reader read past, being over 4 x `maxFrameBytes` (`frames`: its frames before
   * the one over the limit): a too-large batch like any other when its header decodes.
   */
  #onOversize (frames: Buffer[], bytes: number): void {
    const decoded = frames.length === 1 ? decodeHeader(frames[0] as Buffer) : undefined
    if (decoded?.ok === true) this.#tooLarge(decoded.header.producerId, bytes - (frames[0] as Buffer).length)
    this.#reject('too_large')
  }

  /** A batch of `bytes` over `maxFrameBytes`: said once per producer, and the producer is told (the too-large flag). */
  #tooLarge (producerId: Buffer, bytes: number): void {
    this.#notices.tooLarge(producerId, bytes)
    this.#receipts?.tooLarge(producerId, this.options.maxFrameBytes)
  }

  /**
   * Lines of a written message that were not UTF-8 (its other lines were written): counted as
   * `invalid_utf8_line`, and said once per producer (`source`: its key, or 'plain'). Bad input
   * loses only itself, not the good lines sent with it.
   */
  #linesDropped (source: string, { lines, bad }: { lines: number, bad: number }): void {
    this.#summary.rejected.invalid_utf8_line = (this.#summary.rejected.invalid_utf8_line ?? 0) + bad
    this.#notices.linesDropped(source, bad, lines)
  }

  #onDenied (denial: ZapDenial): void {
    this.#summary.denied++
    this.emit('denied', denial)
  }

  #reject (reason: RejectReason): undefined {
    this.#summary.rejected[reason] = (this.#summary.rejected[reason] ?? 0) + 1
    debug('rejected a message: %s', reason)
    return undefined
  }
}
