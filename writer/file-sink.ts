import { EventEmitter, once } from 'node:events'
import { dirname } from 'node:path'
import { debuglog } from 'node:util'
import { FileError } from '../shared/errors.js'
import { WRITER_DEFAULTS, type FsyncPolicy } from '../shared/options.js'
import { FsyncSchedule } from './fsync-policy.js'
import { recoverTornTail } from './recovery.js'
import { intervalStart, rotatedName, RotationArchiver } from './rotation.js'
import { nodeSinkFs, type SinkFs, type SinkStat } from './sink-fs.js'

const debug = debuglog('logfunnel')

/**
 * Largest write: a regular file takes large writes in one syscall, so batches from many
 * producers go out together (one write, one fsync: group commit).
 */
const MAX_WRITE_BYTES = 1024 * 1024
/** Backoff of a failing file operation: 100 ms doubling to 5 s, for as long as the fault lasts. */
const RETRY_FIRST_MS = 100
const RETRY_MAX_MS = 5000
/** setTimeout's limit (2^31 - 1 ms); a longer delay would fire at once. */
const MAX_TIMER_MS = 2_147_483_647

export interface FileSinkOptions {
  rotateSizeBytes?: number
  rotateIntervalMs?: number
  rotateKeep?: number
  rotateGzip?: boolean
  fsync?: FsyncPolicy
  /** File operations; tests inject faults here. */
  fs?: SinkFs
}

/** Counters the writer adds to its summary and stats. */
export interface SinkStats {
  fsyncs: number
  rotations: number
  /** Failed file operations (each failed retry counts). */
  fileErrors: number
  lastFileError: { op: string, fsCode: string | null, message: string } | null
}

/** Whole batches merged into one write; `done` bytes of it are in the file. */
interface Chunk { buf: Buffer, done: number, end: number }

/** A pending switch to a new file: a rotation (rename first) or a reopen (SIGHUP). */
interface Switch { rotate: boolean, rotatedTo: string | undefined, notBefore: number, delayMs: number, failures: number }

class Abandoned extends Error {}

/**
 * The writer's file output, with byte accounting so the writer knows when a batch is in the
 * file (the basis of receipts). Batches are queued whole and written whole, one write at a
 * time; only between writes does the sink rotate, reopen or fsync, so a line never spans two
 * files. A failing operation (ENOSPC, EACCES, EIO, ...) is retried with backoff; the queue
 * then grows and the writer's receive loop pauses on it. A write that partly succeeded goes
 * on from the first byte not written, so no byte is written twice.
 *
 * Why not sonic-boom: it cannot take an injected fs, stops on a write error until the next
 * `write()` call (no timed retry), fsyncs synchronously, and cannot write a batch again into a
 * new file once it finds its file was removed. Why not rotating-file-stream: it ignores short
 * writes (a full disk tears a line), a write error destroys the stream, and it reports no
 * bytes written. So rotation happens here, between writes; rotation.ts gzips and prunes.
 *
 * Events: `'written'` (total bytes written, and fsynced under `fsync: 'batch'`);
 * `'error'` (FileError, with `retryInMs` while retrying: a listener is required);
 * `'resumed'` once a failing operation succeeds; `'recovered'` (a torn tail was moved aside at
 * start); `'rotated'` ({ file, rotatedTo }).
 */
export class FileSink extends EventEmitter {
  readonly file: string
  readonly #options: Required<Omit<FileSinkOptions, 'fs'>>
  readonly #fs: SinkFs
  readonly #schedule: FsyncSchedule
  readonly #archiver: RotationArchiver | undefined
  #stats: SinkStats = { fsyncs: 0, rotations: 0, fileErrors: 0, lastFileError: null }
  #queue: Buffer[] = []
  #chunk: Chunk | undefined
  #fd: number | undefined
  #size = 0
  #appended = 0
  #taken = 0
  #written = 0
  #switch: Switch | undefined
  #nextRotationAt = Infinity
  #lastRotationStamp = 0
  #faulted = 0
  #ending = false
  #abandoned = false
  #wake: (() => void) | undefined
  #timers = new Map<NodeJS.Timeout, () => void>()
  #loop: Promise<void> | undefined

  constructor (file: string, opts: FileSinkOptions = {}) {
    super()
    this.file = file
    const { fs = nodeSinkFs, ...rest } = opts
    this.#options = {
      rotateSizeBytes: rest.rotateSizeBytes ?? WRITER_DEFAULTS.rotateSizeBytes,
      rotateIntervalMs: rest.rotateIntervalMs ?? WRITER_DEFAULTS.rotateIntervalMs,
      rotateKeep: rest.rotateKeep ?? WRITER_DEFAULTS.rotateKeep,
      rotateGzip: rest.rotateGzip ?? WRITER_DEFAULTS.rotateGzip,
      fsync: rest.fsync ?? WRITER_DEFAULTS.fsync
    }
    this.#fs = fs
    this.#schedule = new FsyncSchedule(this.#options.fsync, () => this.#wakeUp())
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
    if (recovery !== undefined) this.emit('recovered', recovery)
    let st: SinkStat
    try {
      st = await this.#open()
    } catch (err) {
      throw new FileError(this.file, { cause: err, op: 'open' })
    }
    const { rotateIntervalMs } = this.#options
    if (rotateIntervalMs > 0) {
      const start = intervalStart(Date.now(), rotateIntervalMs)
      // A file last written in an earlier interval belongs to that interval: rotate it first.
      if (st.size > 0 && st.mtimeMs < start) this.#requestSwitch(true)
      this.#nextRotationAt = start + rotateIntervalMs
      this.#wakeAt(this.#nextRotationAt)
    }
    this.#archiver?.resume()
    this.#loop = this.#run()
  }

  /** Queues whole lines; returns the byte offset (since start) at which they end. */
  append (buf: Buffer): number {
    this.#queue.push(buf)
    this.#appended += buf.length
    this.#wakeUp()
    return this.#appended
  }

  /** Bytes appended but not yet counted as written. */
  get pendingBytes (): number {
    return this.#appended - this.#written
  }

  get bytesWritten (): number {
    return this.#written
  }

  get stats (): SinkStats {
    return { ...this.#stats }
  }

  /** Resolves when no more than `maxPending` bytes wait to be written. */
  async waitBelow (maxPending: number): Promise<void> {
    while (this.pendingBytes > maxPending) {
      await once(this, 'written')
    }
  }

  /** Reopens the file by path (logrotate `create` mode), after the write in flight. */
  reopen (): void {
    this.#requestSwitch(false)
  }

  /**
   * Writes what is queued, fsyncs and closes; waits for background gzip. After `deadlineMs` a
   * failing file is given up: the unwritten bytes are dropped (a partly written batch is cut
   * off the file) and their count is the result, 0 when everything was written.
   */
  async end (deadlineMs = Infinity): Promise<number> {
    this.#ending = true
    this.#wakeUp()
    if (this.#loop === undefined) return this.pendingBytes
    const timer = Number.isFinite(deadlineMs) ? setTimeout(() => this.#abandon(), deadlineMs) : undefined
    await this.#loop
    clearTimeout(timer)
    for (const timer of this.#timers.keys()) clearTimeout(timer)
    this.#timers.clear()
    this.#schedule.cancel()
    await this.#archiver?.idle()
    return this.pendingBytes
  }

  async #run (): Promise<void> {
    try {
      for (;;) {
        if (this.#fd === undefined) await this.#attempt('open', async () => await this.#open())
        else if (this.#chunk !== undefined) await this.#writeChunk(this.#chunk)
        else if (this.#checkRotation() && Date.now() >= (this.#switch as Switch).notBefore) await this.#switchFile()
        else if (this.#queue.length > 0) this.#chunk = this.#takeChunk()
        else if (this.#schedule.due) await this.#fsync()
        else if (this.#ending) break
        else await new Promise<void>((resolve) => { this.#wake = resolve })
      }
      await this.#fsync()
      await this.#fs.close(this.#fd as number)
    } catch (err) {
      if (!(err instanceof Abandoned)) throw err
      await this.#giveUp()
    }
  }

  /** Opens the file for appending (creating its directory); the old descriptor is the caller's. */
  async #open (): Promise<SinkStat> {
    await this.#fs.mkdir(dirname(this.file))
    const fd = await this.#fs.open(this.file)
    try {
      const st = await this.#fs.fstat(fd)
      this.#fd = fd
      this.#size = st.size
      return st
    } catch (err) {
      await this.#fs.close(fd).catch(() => {})
      throw err
    }
  }

  async #writeChunk (chunk: Chunk): Promise<void> {
    const { buf } = chunk
    while (chunk.done < buf.length) {
      const n = await this.#attempt('write', async () => {
        const n = await this.#fs.write(this.#fd as number, buf, chunk.done, buf.length - chunk.done)
        if (n <= 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' })
        return n
      })
      chunk.done += n
      this.#size += n
    }
    const st = await this.#attempt('fstat', async () => await this.#fs.fstat(this.#fd as number))
    if (st.nlink === 0) {
      // Writes to an unlinked file succeed and vanish: write the batch again into a new file.
      this.#report(new FileError(this.file, { op: 'write', retryInMs: 0, cause: Object.assign(new Error('the file was removed while open; recreating it'), { code: 'ENOENT' }) }))
      await this.#fs.close(this.#fd as number).catch(() => {})
      this.#fd = undefined
      chunk.done = 0
      return
    }
    if (this.#schedule.afterWrite()) await this.#fsync()
    this.#chunk = undefined
    this.#written = chunk.end
    this.emit('written', this.#written)
  }

  /** Whole batches from the queue, up to MAX_WRITE_BYTES and to what the rotation size leaves. */
  #takeChunk (): Chunk {
    const { rotateSizeBytes } = this.#options
    const limit = Math.min(MAX_WRITE_BYTES, rotateSizeBytes > 0 ? rotateSizeBytes - this.#size : Infinity)
    let bytes = (this.#queue[0] as Buffer).length
    let count = 1
    while (count < this.#queue.length && bytes + (this.#queue[count] as Buffer).length <= limit) {
      bytes += (this.#queue[count++] as Buffer).length
    }
    const bufs = this.#queue.splice(0, count)
    this.#taken += bytes
    return { buf: count === 1 ? bufs[0] as Buffer : Buffer.concat(bufs, bytes), done: 0, end: this.#taken }
  }

  async #fsync (): Promise<void> {
    await this.#attempt('fsync', async () => await this.#fs.fsync(this.#fd as number))
    this.#stats.fsyncs++
    this.#schedule.synced()
  }

  /** Requests a rotation when one is due; true when a file switch is pending. */
  #checkRotation (): boolean {
    const { rotateSizeBytes, rotateIntervalMs } = this.#options
    if (this.#switch?.rotate === true) return true
    const now = Date.now()
    if (rotateIntervalMs > 0 && now >= this.#nextRotationAt) {
      this.#nextRotationAt = intervalStart(now, rotateIntervalMs) + rotateIntervalMs
      this.#wakeAt(this.#nextRotationAt)
      if (this.#size > 0) this.#requestSwitch(true)
    }
    const next = this.#queue[0]
    if (rotateSizeBytes > 0 && next !== undefined && this.#size > 0 && this.#size + next.length > rotateSizeBytes) {
      this.#requestSwitch(true)
    }
    return this.#switch !== undefined
  }

  #requestSwitch (rotate: boolean): void {
    if (this.#switch === undefined) {
      this.#switch = { rotate, rotatedTo: undefined, notBefore: 0, delayMs: RETRY_FIRST_MS, failures: 0 }
    } else {
      this.#switch.rotate ||= rotate
      this.#switch.notBefore = 0
    }
    this.#wakeUp()
  }

  /**
   * Rotation (rename, then open a new file) or reopen. Until the new file opens, writes go on
   * into the old descriptor, so a failing switch costs no data; it is retried with backoff.
   */
  async #switchFile (): Promise<void> {
    const sw = this.#switch as Switch
    const old = this.#fd as number
    try {
      if (sw.rotate && sw.rotatedTo === undefined) {
        sw.rotatedTo = await this.#renameCurrent(old) ?? ''
      }
      await this.#open()
    } catch (err) {
      this.#fd = old
      sw.failures++
      this.#report(new FileError(this.file, { cause: err, op: sw.rotate ? 'rotate' : 'reopen', retryInMs: sw.delayMs }))
      sw.notBefore = Date.now() + sw.delayMs
      this.#wakeAt(sw.notBefore)
      sw.delayMs = Math.min(sw.delayMs * 2, RETRY_MAX_MS)
      return
    }
    this.#switch = undefined
    if (sw.failures > 0) this.emit('resumed', { event: 'resumed', file: this.file, failures: sw.failures })
    await this.#fs.fsync(old).then(() => { this.#stats.fsyncs++ }, () => {})
    await this.#fs.close(old).catch((err: unknown) => debug('closing the old log file failed: %o', err))
    if (sw.rotatedTo !== undefined && sw.rotatedTo !== '') {
      this.#stats.rotations++
      this.emit('rotated', { file: this.file, rotatedTo: sw.rotatedTo })
      this.#archiver?.add(sw.rotatedTo)
    }
  }

  /** Renames the file to its rotated name, unless the path no longer names the open file. */
  async #renameCurrent (fd: number): Promise<string | undefined> {
    const [mine, named] = await Promise.all([this.#fs.fstat(fd), this.#fs.stat(this.file).catch(() => undefined)])
    // logrotate (or a person) moved or removed it already: just open a new file.
    if (named === undefined || named.ino !== mine.ino || named.dev !== mine.dev) return undefined
    let stamp = Math.max(Date.now(), this.#lastRotationStamp + 1)
    while (await this.#exists(rotatedName(this.file, stamp)) || await this.#exists(`${rotatedName(this.file, stamp)}.gz`)) stamp++
    this.#lastRotationStamp = stamp
    const target = rotatedName(this.file, stamp)
    await this.#fs.rename(this.file, target)
    return target
  }

  async #exists (path: string): Promise<boolean> {
    return await this.#fs.stat(path).then(() => true, () => false)
  }

  /** Runs `fn` until it succeeds, with backoff; each failure is reported. */
  async #attempt<T> (op: string, fn: () => Promise<T>): Promise<T> {
    let delayMs = RETRY_FIRST_MS
    for (;;) {
      try {
        const value = await fn()
        if (this.#faulted > 0) {
          this.emit('resumed', { event: 'resumed', file: this.file, failures: this.#faulted })
          this.#faulted = 0
        }
        return value
      } catch (err) {
        if (this.#abandoned) throw new Abandoned()
        this.#faulted++
        this.#report(new FileError(this.file, { cause: err, op, retryInMs: delayMs }))
        await new Promise<void>((resolve) => this.#wakeAt(Date.now() + delayMs, resolve, true))
        if (this.#abandoned) throw new Abandoned()
        delayMs = Math.min(delayMs * 2, RETRY_MAX_MS)
      }
    }
  }

  #report (err: FileError): void {
    this.#stats.fileErrors++
    this.#stats.lastFileError = { op: err.op ?? 'write', fsCode: err.fsCode ?? null, message: err.message }
    this.emit('error', err)
  }

  #wakeUp (): void {
    const wake = this.#wake
    this.#wake = undefined
    wake?.()
  }

  /**
   * Wakes the loop (or calls `fn`) at `time`. Retry waits keep the process alive (`ref`),
   * rotation and switch timers do not; an end deadline runs them all at once.
   */
  #wakeAt (time: number, fn: () => void = () => this.#wakeUp(), ref = false): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer)
      fn()
    }, Math.min(Math.max(0, time - Date.now()), MAX_TIMER_MS))
    if (!ref) timer.unref()
    this.#timers.set(timer, fn)
  }

  #abandon (): void {
    this.#abandoned = true
    for (const [timer, fn] of this.#timers) {
      clearTimeout(timer)
      fn()
    }
    this.#timers.clear()
    this.#wakeUp()
  }

  /** After the end deadline: cut a partly written batch off the file, close it. */
  async #giveUp (): Promise<void> {
    const fd = this.#fd
    if (fd === undefined) return
    const chunk = this.#chunk
    if (chunk !== undefined && chunk.done > 0) {
      await this.#fs.ftruncate(fd, this.#size - chunk.done).catch((err: unknown) => debug('cannot cut the partial batch: %o', err))
    }
    await this.#fs.close(fd).catch(() => {})
  }
}
