import { constants, createReadStream } from 'node:fs'
import { open, readdir, rename, stat, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { debuglog } from 'node:util'
import { createGzip } from 'node:zlib'
import { FileError } from '../../shared/errors.js'
import type { SinkFs } from './sink-fs.js'

const debug = debuglog('logfunnel')

/** The suffix of a rotated file: a UTC time to the millisecond, optionally `.gz`. */
const ROTATED_SUFFIX = /^\d{8}T\d{6}\.\d{3}Z(\.gz)?$/
const GZIP_TMP_SUFFIX = '.gz.tmp'

/**
 * The name a rotated file gets: `app.log` rotated at 2024-05-01 12:00:00.123 UTC becomes
 * `app.log.20240501T120000.123Z`. The names are fixed-width, so sorting them by name sorts
 * them by rotation time, and a file keeps its name once rotated (no renumbering as in
 * logrotate's `.1`, `.2`, which would race with a background gzip).
 */
export function rotatedName (file: string, timeMs: number): string {
  const stamp = new Date(timeMs).toISOString().replace(/[-:]/g, '')
  return `${file}.${stamp}`
}

/**
 * Renames `file` to its rotated name, stamped `Date.now()` or later (at least `minStamp`, and
 * past any name already taken), unless the path no longer names the open file `fd` (logrotate
 * or a person moved or removed it already): then resolves undefined and nothing is renamed.
 */
export async function renameForRotation (fs: SinkFs, file: string, fd: number, minStamp: number): Promise<{ path: string, stamp: number } | undefined> {
  const [mine, named] = await Promise.all([fs.fstat(fd), fs.stat(file).catch(() => undefined)])
  if (named === undefined || named.ino !== mine.ino || named.dev !== mine.dev) return undefined
  const taken = async (path: string): Promise<boolean> => await fs.stat(path).then(() => true, () => false)
  let stamp = Math.max(Date.now(), minStamp)
  while (await taken(rotatedName(file, stamp)) || await taken(`${rotatedName(file, stamp)}.gz`)) stamp++
  const path = rotatedName(file, stamp)
  await fs.rename(file, path)
  return { path, stamp }
}

/** Rotated files of `file`, plain and gzipped, oldest first (full paths). */
export async function listRotated (file: string): Promise<string[]> {
  const prefix = `${basename(file)}.`
  let names: string[]
  try {
    names = await readdir(dirname(file))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  return names
    .filter((name) => name.startsWith(prefix) && ROTATED_SUFFIX.test(name.slice(prefix.length)))
    .sort()
    .map((name) => join(dirname(file), name))
}

/** Start of the interval that holds `timeMs`: intervals are multiples of `intervalMs` since the epoch (UTC). */
export function intervalStart (timeMs: number, intervalMs: number): number {
  return Math.floor(timeMs / intervalMs) * intervalMs
}

/**
 * When the next interval rotation is due (`rotateIntervalMs`): at every multiple of the interval
 * since the epoch. A file last written in an earlier interval belongs to that interval.
 */
export class RotationClock {
  readonly #intervalMs: number
  /** The next boundary; Infinity with interval rotation off. */
  next = Infinity

  constructor (intervalMs: number) {
    this.#intervalMs = intervalMs
  }

  /** At open: arms the next boundary; true when the file, last written before this interval, must rotate first. */
  start (now: number, size: number, mtimeMs: number): boolean {
    if (this.#intervalMs === 0) return false
    const start = intervalStart(now, this.#intervalMs)
    this.next = start + this.#intervalMs
    return size > 0 && mtimeMs < start
  }

  /** True once a boundary has passed; then arms the next one. */
  due (now: number): boolean {
    if (now < this.next) return false
    this.next = intervalStart(now, this.#intervalMs) + this.#intervalMs
    return true
  }
}

/** What `RotationArchiver` does with each rotated file. */
export interface ArchiverOptions {
  gzip: boolean
  /** Rotated files kept; 0 keeps all. */
  keep: number
  /** A gzip or delete failed; the rotated file stays as it was. */
  onError: (err: FileError) => void
}

/**
 * The background half of rotation, off the write path: gzips each rotated file
 * (`<name>.gz.tmp`, flushed, renamed to `<name>.gz`, then the original removed), then deletes
 * the oldest rotated files beyond `keep`. Jobs run one at a time, in rotation order.
 */
export class RotationArchiver {
  readonly #file: string
  readonly #options: ArchiverOptions
  #queue: Promise<void> = Promise.resolve()
  /** Aborted by stop() past its deadline: the gzip in progress ends, the others are not begun. */
  readonly #abandon = new AbortController()

  constructor (file: string, options: ArchiverOptions) {
    this.#file = file
    this.#options = options
  }

  /**
   * At start: removes half-written `.gz.tmp` files of an earlier run and, with gzip on,
   * compresses rotated files it left uncompressed.
   */
  resume (): void {
    this.#enqueue(async () => {
      for (const path of await listRotated(this.#file)) {
        if (path.endsWith('.gz')) continue
        await unlink(`${path}${GZIP_TMP_SUFFIX}`).catch(() => {})
        if (this.#options.gzip) await this.#gzip(path)
      }
    })
  }

  /** Queues the work for a file just rotated to `path`. */
  add (path: string): void {
    this.#enqueue(async () => {
      if (this.#options.gzip) await this.#gzip(path)
      await this.#prune()
    })
  }

  /** Resolves once every queued job is done. */
  async idle (): Promise<void> {
    let last: Promise<void> | undefined
    while (last !== this.#queue) {
      last = this.#queue
      await last
    }
  }

  /**
   * For a stop: lets the queued jobs run at most `deadlineMs`, then abandons the gzip in
   * progress (its `.gz.tmp` removed) and the gzips not begun; the next start's resume() does
   * them. Before, a stop waited for every one: 24 rotated files of 8 MB left uncompressed made a
   * SIGTERM take 11.6 s with `drainTimeoutMs` 5 s, and a writer whose gzip fell behind its
   * rotations (a busy machine) took past 30 s and was SIGKILLed by the soak (bench/soak.ts).
   */
  async stop (deadlineMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const expired = new Promise<void>((resolve) => { timer = setTimeout(resolve, deadlineMs) })
    await Promise.race([this.idle(), expired])
    clearTimeout(timer)
    this.#abandon.abort()
    await this.idle()
  }

  #enqueue (job: () => Promise<void>): void {
    this.#queue = this.#queue.then(job).catch((err: unknown) => {
      this.#options.onError(err instanceof FileError ? err : new FileError(this.#file, { cause: err, op: 'archive' }))
    })
  }

  async #gzip (path: string): Promise<void> {
    if (this.#abandon.signal.aborted) return
    const tmp = `${path}${GZIP_TMP_SUFFIX}`
    try {
      // O_NOFOLLOW: a symlink planted at the temp name is not written through; the rotated file's mode, never wider.
      const { mode } = await stat(path)
      const out = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, mode & 0o666)
      await pipeline(createReadStream(path), createGzip(), out.createWriteStream({ flush: true }), { signal: this.#abandon.signal })
      await rename(tmp, `${path}.gz`)
      await unlink(path)
      debug('gzipped %s', path)
    } catch (err) {
      await unlink(tmp).catch(() => {})
      if (this.#abandon.signal.aborted) return   // left for the next start, not a failure
      throw new FileError(path, { cause: err, op: 'gzip' })
    }
  }

  async #prune (): Promise<void> {
    const { keep } = this.#options
    if (keep === 0) return
    const rotated = await listRotated(this.#file)
    for (const path of rotated.slice(0, Math.max(0, rotated.length - keep))) {
      try {
        await unlink(path)
        debug('deleted %s (rotateKeep %d)', path, keep)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new FileError(path, { cause: err, op: 'delete' })
      }
    }
  }
}
