import { EventEmitter } from 'node:events'
import { debuglog } from 'node:util'
import { FileError } from '../../shared/errors.js'
import { startCommitRound, type CommitRound } from './commit-round.js'
import { Abandoned, FaultRetry, OutOfReach } from './fault-retry.js'
import { SwitchPlan, type FileSwitch } from './file-switch.js'
import { FlushWaiters } from './flush-waiters.js'
import { FsyncSchedule } from './fsync-policy.js'
import { planGiveUp } from './give-up.js'
import { LoopTimers } from './loop-timers.js'
import { LogFile } from './log-file.js'
import { isUnmounted, PathWatch } from './path-watch.js'
import { recoverTornTail } from './recovery.js'
import { RotationArchiver } from './rotation.js'
import { nodeSinkFs, type SinkFs, type SinkStat } from './sink-fs.js'
import { resolveSinkOptions, type FileSinkOptions, type ResolvedSinkOptions, type SinkStats } from './sink-options.js'
import { Checkpointer, countLines } from './checkpointer.js'
import { mergeChunks, WriteQueue, type Chunk } from './write-queue.js'

export type { FileSinkOptions, SinkStats } from './sink-options.js'

const debug = debuglog('logfunnel')

/**
 * The writer's file output, with byte accounting so the writer knows when a batch is in the
 * file (the basis of receipts). Batches are queued whole and written whole, one write(v) at a
 * time; only between writes does the sink rotate or reopen, so a line never spans two files.
 * Written bytes count once a commit round has checked the file is still linked and, under
 * `fsync: 'batch'`, fsynced it; a round covers every write that returned before it began, and
 * the next writes go on meanwhile (group commit). A failing operation (ENOSPC, EACCES, EIO, ...) is retried with backoff; the queue
 * then grows and the writer's receive loop pauses on it. A write that partly succeeded goes
 * on from the first byte not written, so no byte is written twice.
 *
 * Why not sonic-boom or rotating-file-stream: docs/operations.md, "Rotation" and "File faults".
 * Rotation happens here, between writes; rotation.ts gzips and prunes.
 *
 * Events: `'written'` (total bytes written, and fsynced under `fsync: 'batch'`);
 * `'error'` (FileError, with `retryInMs` while retrying: a listener is required);
 * `'resumed'` once a failing operation succeeds; `'recovered'` (a torn tail was moved aside at
 * start); `'rotated'` ({ file, rotatedTo }); `'fsync'` after each fsync(2) of the file;
 * `'moved'` ({ file, newFile, reopenInMs }) once the open file was renamed away (path-watch.ts PathWatch).
 *
 * @example
 * ```ts
 * const sink = new FileSink('./logs/app.log', { rotateSizeBytes: 100 * 1024 * 1024, fsync: 'batch' })
 * sink.on('error', (err) => console.error(err.code, err.fsCode, err.retryInMs))
 * await sink.ready()                      // LOGFUNNEL_ERR_FILE when it cannot be opened
 * const end = sink.append(Buffer.from('{"msg":"hi"}\n'))
 * sink.on('written', (bytes) => { if (bytes >= end) console.log('on disk') })
 * await sink.end()
 * ```
 */
export class FileSink extends EventEmitter {
  readonly file: string
  readonly #options: ResolvedSinkOptions
  readonly #fs: SinkFs
  readonly #schedule: FsyncSchedule
  readonly #archiver: RotationArchiver | undefined
  #stats: SinkStats = { fsyncs: 0, rotations: 0, fileErrors: 0, lastFileError: null }
  readonly #timers = new LoopTimers()
  #queue = new WriteQueue()
  #chunk: Chunk | undefined
  /** Chunks written since the round in flight started, oldest first. */
  #unconfirmed: Chunk[] = []
  #round: CommitRound | undefined
  #written = 0
  readonly #switches: SwitchPlan
  #ending = false
  #loop: Promise<void> | undefined
  readonly #flushWaiters = new FlushWaiters()
  readonly #retry: FaultRetry
  readonly #checkpointer: Checkpointer | undefined
  /** The file holds only the sink's checkpoint lines: it counts as empty for rotation. */
  #checkpointsOnly = false
  /** Lines of the chunks `end()` gave up on (cut off the file, or never written). */
  #givenUpRecords = 0
  /** Bytes `end()` gave up on: no longer pending (the writer counts them as unwritten). */
  #givenUpBytes = 0
  /** The open file's path: its checks and moves (path-watch.ts). */
  readonly #path: PathWatch
  /** The file open now: its descriptor and size (log-file.ts). */
  readonly #log: LogFile

  constructor (file: string, opts: FileSinkOptions = {}) {
    super()
    this.file = file
    this.#options = resolveSinkOptions(opts)
    this.#fs = opts.fs ?? nodeSinkFs
    this.#path = new PathWatch(this.#fs, file)
    this.#checkpointer = opts.checkpoints === true
      ? new Checkpointer(file, { sealKeyFile: opts.sealKeyFile, intervalMs: opts.checkpointIntervalMs ?? 0, sizeBytes: opts.checkpointSizeBytes ?? 0 })
      : undefined
    this.#retry = new FaultRetry(file, this.#timers, (err) => this.#report(err), (failures) => this.emit('resumed', { event: 'resumed', file, failures }))
    this.#log = new LogFile(this.#fs, file, this.#path, this.#retry)
    this.#schedule = new FsyncSchedule(this.#options.fsync, () => this.#timers.wakeUp())
    this.#switches = new SwitchPlan(this.#options.rotateSizeBytes, this.#options.rotateIntervalMs, this.#timers)
    const { rotateSizeBytes, rotateIntervalMs, rotateGzip, rotateKeep } = this.#options
    if (rotateSizeBytes > 0 || rotateIntervalMs > 0) {
      this.#archiver = new RotationArchiver(file, { gzip: rotateGzip, keep: rotateKeep, onError: (err) => this.#report(err) })
    }
  }

  /**
   * Moves a torn tail aside (event `'recovered'`), opens the file and starts writing.
   * Rejects with LOGFUNNEL_ERR_FILE when the file cannot be opened: at start there is no retry.
   */
  async ready (): Promise<void> {
    if (this.#loop !== undefined) return
    const recovery = await recoverTornTail(this.file)
    await this.#checkpointer?.resume()
    if (recovery !== undefined) this.emit('recovered', recovery)
    let st: SinkStat
    try {
      st = await this.#log.open()
    } catch (err) {
      throw new FileError(this.file, { cause: err, op: 'open' })
    }
    this.#switches.start(Date.now(), st.size, st.mtimeMs)
    this.#archiver?.resume()
    this.#loop = this.#checkpoint('start').then(async () => await this.#run())
  }

  /**
   * Queues whole lines; returns the byte offset (since start) at which they end. `batch` gives
   * the checkpoints its line count and, for a producer's batch, the producer (hex id) and sequence.
   */
  append (buf: Buffer, batch?: { records: number, producer?: string, seq?: number }): number {
    const end = this.#queue.push(buf)
    this.#checkpointer?.note(end, batch?.producer, batch?.seq ?? 0, batch?.records ?? countLines(buf))
    this.#timers.wakeUp()
    return end
  }

  /** Bytes appended but not yet counted as written, nor given up by `end()`. */
  get pendingBytes (): number {
    return this.#queue.appended - this.#written - this.#givenUpBytes
  }

  get bytesWritten (): number {
    return this.#written
  }

  /**
   * After `end()`: the lines of what it counted as unwritten (its result, in bytes). The batches
   * are whole lines, so these are the records appended that are not in the file.
   */
  get unwrittenRecords (): number {
    return this.#givenUpRecords + this.#queue.lines()
  }

  get stats (): SinkStats {
    return { ...this.#stats }
  }

  /** Resolves when no more than `maxPending` bytes wait to be written; waits through file faults. */
  async waitBelow (maxPending: number): Promise<void> {
    while (this.pendingBytes > maxPending) {
      // Not events.once(): it would reject on the 'error' events of a fault being retried.
      await new Promise((resolve) => this.once('written', resolve))
    }
  }

  /**
   * Resolves once everything appended so far (not what comes later) is written to the file,
   * and fsynced when the policy is `'batch'`: as durable as a receipt. Rejects with
   * LOGFUNNEL_ERR_FILE if the file is given up first.
   */
  async flushed (): Promise<void> {
    const flushed = this.#flushWaiters.add(this.#queue.appended)
    this.#timers.wakeUp()
    await flushed
  }

  /** Reopens the file by path (logrotate `create` mode), after the write in flight. */
  reopen (): void {
    this.#switches.request(false)
  }

  /**
   * Writes what is queued, fsyncs and closes; waits for background gzip at most `deadlineMs`
   * more (the rotated files left uncompressed are gzipped at the next start). After `deadlineMs` a
   * failing file is given up: the unwritten bytes are dropped (a partly written batch is cut
   * off the file) and their count is the result, 0 when everything was written; they are no
   * longer in `pendingBytes`.
   */
  async end (deadlineMs = Infinity): Promise<number> {
    this.#ending = true
    this.#timers.wakeUp()
    if (this.#loop === undefined) return this.pendingBytes
    const deadline = Number.isFinite(deadlineMs)
      ? setTimeout(() => this.#retry.abandon(), deadlineMs)
      : undefined
    await this.#loop
    clearTimeout(deadline)
    this.#timers.clear()
    this.#schedule.cancel()
    // Background gzip gets the same deadline; what it has not done is redone at the next start.
    if (Number.isFinite(deadlineMs)) await this.#archiver?.stop(deadlineMs)
    else await this.#archiver?.idle()
    return this.#givenUpBytes + this.pendingBytes
  }

  async #run (): Promise<void> {
    try {
      for (;;) {
        if (this.#log.fd === undefined) await this.#retry.attempt('open', async () => await this.#log.open())
        else if (this.#chunk !== undefined) await this.#writeChunk(this.#chunk)
        else if (this.#round?.settled === true) await this.#finishRound()
        else if (this.#flushWaiters.due(this.#written)) this.#flushWaiters.settle(this.#written)
        else if (this.#checkpointer?.due(Date.now()) === true) await this.#checkpoint('interval')
        else if (this.#switches.check(Date.now(), this.#log.size, this.#log.size === 0 || this.#checkpointsOnly, this.#queue.next?.length) && Date.now() >= (this.#switches.pending as FileSwitch).notBefore) await this.#switchFile()
        else if (this.#queue.next !== undefined) this.#chunk = this.#queue.take(this.#options.rotateSizeBytes > 0 ? this.#options.rotateSizeBytes - this.#log.size : Infinity)
        else if (this.#round !== undefined) await this.#timers.idle()
        else if (this.#schedule.due) await this.#fsync()
        else if (this.#ending) break
        else await this.#timers.idle()
      }
      await this.#checkpoint('stop')
      await this.#fsync()
      await this.#fs.close(this.#log.fd as number).catch((err: unknown) => debug('closing the log file failed: %o', err))
    } catch (err) {
      if (!(err instanceof Abandoned)) throw err
      await this.#giveUp()
      this.#givenUpBytes = this.#queue.appended - this.#written
    } finally {
      // After the final fsync everything written is durable; what was not written never will be.
      this.#flushWaiters.end(this.#written, this.file)
    }
  }

  async #writeChunk (chunk: Chunk): Promise<void> {
    try {
      await this.#log.writeOut(chunk, this.#log.goneCheck())
    } catch (err) {
      if (!(err instanceof OutOfReach)) throw err
      await this.#leave(chunk)
      return
    }
    this.#checkpointer?.update(chunk.bufs, chunk.end)
    this.#checkpointsOnly = false
    this.#chunk = undefined
    this.#unconfirmed.push(chunk)
    if (this.#round === undefined) this.#startRound()
  }

  /** Group commit: one round covers every chunk written since the last; the loop wakes when it settles. */
  #startRound (): void {
    const chunks = this.#unconfirmed
    this.#unconfirmed = []
    this.#round = startCommitRound(this.#fs, this.#log.fd as number, chunks, this.#schedule.afterWrite(), () => this.#timers.wakeUp(), this.file)
  }

  /**
   * Ends the round in flight: failed operations are retried with backoff like any other; then
   * its chunks count as written, or, if the file was removed, they and every chunk written
   * after them are written again into a new file.
   */
  async #finishRound (): Promise<void> {
    const round = this.#round as CommitRound
    await round.done
    const fd = this.#log.fd as number
    let st: SinkStat
    try {
      st = round.statError === undefined
        ? round.stat as SinkStat
        : await this.#retry.attempt('fstat', async () => await this.#fs.fstat(fd), round.statError, this.#log.goneCheck())
      if (st.nlink === 0 || (this.#path.checks.unmounted && isUnmounted(st, round))) throw new OutOfReach()
      if (round.syncError !== undefined) await this.#retry.attempt('fsync', async () => await this.#fs.fsync(fd), round.syncError, this.#log.goneCheck())
    } catch (err) {
      if (!(err instanceof OutOfReach)) throw err
      await this.#leave()
      return
    }
    this.#round = undefined
    if (round.sync) this.#synced()
    this.#written = round.end
    this.emit('written', round.end)
    if (this.#unconfirmed.length > 0) this.#startRound()
    const { moved, reopen } = this.#path.follow(st, round.path)
    if (moved !== undefined) this.emit('moved', { file: this.file, ...moved })
    if (reopen && this.#switches.pending === undefined) this.#switches.request(false)
  }

  /** Ends rounds until every written chunk is confirmed (or the file was found removed). */
  async #confirmAll (): Promise<void> {
    while (this.#round !== undefined) await this.#finishRound()
  }

  async #fsync (): Promise<void> {
    await this.#confirmAll()
    if (this.#log.fd === undefined) return
    try {
      await this.#retry.attempt('fsync', async () => await this.#fs.fsync(this.#log.fd as number), undefined, this.#log.goneCheck())
    } catch (err) {
      if (!(err instanceof OutOfReach)) throw err
      await this.#leave()
      return
    }
    this.#synced()
  }

  /**
   * Leaves a file out of reach (removed, or its file system unmounted: writes to it succeed and
   * vanish, or fail for good): closes it, and everything written since the last confirmed round
   * (with `failing`, the chunk whose write kept failing) is written again into a new file.
   */
  async #leave (failing?: Chunk): Promise<void> {
    const fd = this.#log.fd as number
    const round = this.#round
    if (round !== undefined) await round.done
    const st = await this.#fs.fstat(fd).catch(() => undefined)
    const why = st?.nlink === 0 ? 'the file was removed while open' : 'the file system of the file was unmounted while it was open'
    this.#report(new FileError(this.file, { op: 'write', retryInMs: 0, cause: Object.assign(new Error(`${why}; recreating it`), { code: 'ENOENT' }) }))
    await this.#fs.close(fd).catch(() => {})
    this.#log.fd = undefined
    this.#round = undefined
    const chunks = [...(round?.chunks ?? []), ...this.#unconfirmed.splice(0), ...(failing === undefined ? [] : [failing])]
    this.#chunk = chunks.length > 0 ? mergeChunks(chunks) : undefined
  }

  #synced (): void {
    this.#stats.fsyncs++
    this.emit('fsync')
    this.#schedule.synced()
  }

  /**
   * Rotation (rename, then open a new file) or reopen. Until the new file opens, writes go on
   * into the old descriptor, so a failing switch costs no data; it is retried with backoff.
   */
  async #switchFile (): Promise<void> {
    await this.#confirmAll()
    if (this.#log.fd === undefined) return
    const sw = this.#switches.pending as FileSwitch
    const old = this.#log.fd as number
    if (sw.rotatedTo === undefined) await this.#checkpoint('rotate-out')
    try {
      await this.#switches.rename(this.#fs, this.file, old)
      await this.#log.open()
    } catch (err) {
      this.#log.fd = old
      const retryInMs = sw.failed(Date.now())
      this.#report(new FileError(this.file, { cause: err, op: sw.rotate ? 'rotate' : 'reopen', retryInMs }))
      this.#timers.at(sw.notBefore)
      return
    }
    this.#switches.pending = undefined
    await this.#checkpoint('rotate-in')
    if (sw.failures > 0) this.emit('resumed', { event: 'resumed', file: this.file, failures: sw.failures })
    await this.#fs.fsync(old).then(() => { this.#stats.fsyncs++ }, () => {})
    await this.#fs.close(old).catch((err: unknown) => debug('closing the old log file failed: %o', err))
    if (sw.rotatedTo !== undefined && sw.rotatedTo !== '') {
      this.#stats.rotations++
      this.emit('rotated', { file: this.file, rotatedTo: sw.rotatedTo })
      this.#archiver?.add(sw.rotatedTo)
    }
  }

  /** Writes a checkpoint line of the sink's own (not counted in the receipt offsets). */
  async #checkpoint (at: string): Promise<void> {
    if (this.#checkpointer === undefined || this.#log.fd === undefined) return
    const line = this.#checkpointer.next(at)
    if (this.#log.size === 0) this.#checkpointsOnly = true
    await this.#log.writeOut({ bufs: [line], bytes: line.length, done: 0, end: 0 })
    const nextAt = await this.#checkpointer.written(Date.now())
    if (nextAt !== undefined) this.#timers.at(nextAt)
  }

  #report (err: FileError): void {
    this.#stats.fileErrors++
    this.#stats.lastFileError = { op: err.op ?? 'write', fsCode: err.fsCode ?? null, message: err.message }
    this.emit('error', err)
  }

  /**
   * After the end deadline: cut what does not count as written off the file (a partly written
   * chunk, and written ones not confirmed), close it.
   */
  async #giveUp (): Promise<void> {
    const fd = this.#log.fd
    const plan = planGiveUp(this.#chunk, this.#unconfirmed, fd === undefined ? undefined : this.#round)
    this.#givenUpRecords = plan.records
    if (fd === undefined) return
    const round = plan.confirmed
    this.#round = undefined
    if (round !== undefined) {
      if (round.sync) this.#synced()
      this.#written = round.end
      this.emit('written', round.end)
    }
    if (plan.cutBytes > 0) {
      await this.#fs.ftruncate(fd, this.#log.size - plan.cutBytes).catch((err: unknown) => debug('cannot cut the partial batch: %o', err))
    }
    await this.#fs.close(fd).catch(() => {})
  }
}

