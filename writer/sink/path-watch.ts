import { dirname } from 'node:path'
import type { SinkFs, SinkStat } from './sink-fs.js'

/**
 * Whether the log path still leads to the open file. The kernel keeps a renamed, removed or
 * unmounted file writable through its descriptor, so the sink compares what the path and its
 * directory name (stat) with the descriptor's file (fstat).
 */

/** Which checks hold for a file, decided at its open (see `checksAtOpen`). */
export interface PathChecks {
  /** stat(path) named the open file at open: a later mismatch means it was moved. */
  moved: boolean
  /** The directory was on the file's device at open: a later difference means it was unmounted. */
  unmounted: boolean
}

/** What the path and its directory are now: `path` null when nothing is there, undefined when not known. */
export interface PathNow {
  path: SinkStat | null | undefined
  dir: SinkStat | undefined
}

/** Stats the path and its directory (errors become null for a missing path, else undefined). */
export async function statPath (fs: SinkFs, file: string): Promise<PathNow> {
  const [path, dir] = await Promise.all([
    fs.stat(file).then((st) => st, (err: NodeJS.ErrnoException | undefined) => err?.code === 'ENOENT' || err?.code === 'ENOTDIR' ? null : undefined),
    fs.stat(dirname(file)).then((st) => st, () => undefined)
  ])
  return { path, dir }
}

/**
 * At open: a file system whose stat and fstat disagree on a file (overlayfs before Linux 4.19)
 * gets no checks, rather than a reopen at every write; a path that is a symlink to another
 * volume gets no unmount check.
 */
export async function checksAtOpen (fs: SinkFs, file: string, st: SinkStat): Promise<PathChecks> {
  const { path, dir } = await statPath(fs, file)
  const named = names(path, st)
  return { moved: named, unmounted: named && dir?.dev === st.dev }
}

/** The path names the file `st` describes. */
export function names (path: SinkStat | null | undefined, st: SinkStat): boolean {
  return path !== undefined && path !== null && path.dev === st.dev && path.ino === st.ino
}

/**
 * The open file's file system is no longer the one at its directory's path (unmounted, perhaps
 * another mounted in its place) and the path does not name the file: its bytes are out of reach.
 */
export function isUnmounted (st: SinkStat, now: PathNow): boolean {
  if (now.path === undefined || now.dir === undefined || names(now.path, st)) return false
  return now.dir.dev !== st.dev
}

/**
 * For an operation on `fd` that keeps failing: whether the file is out of reach for good (removed,
 * or its file system unmounted), so that the sink should leave the descriptor for a new file
 * rather than retry on it. False when it cannot tell.
 */
export async function outOfReach (fs: SinkFs, file: string, fd: number, checks: PathChecks): Promise<boolean> {
  const st = await fs.fstat(fd).catch(() => undefined)
  if (st === undefined) return false
  if (st.nlink === 0) return true
  return checks.unmounted && isUnmounted(st, await statPath(fs, file))
}

/**
 * How long the path may name nothing after the open file was renamed away before the sink makes
 * a new file there: logrotate's `create` makes one right after its rename, and must find the
 * name free. A new file found at the path is reopened at once.
 */
export const MOVED_GRACE_MS = 1000

/** A move of the open file, said once per move (FileSink's `'moved'` event). */
export interface Moved {
  newFile: boolean
  reopenInMs: number
}

/**
 * The open file's path, watched: which checks hold (decided at its open) and since when the path
 * has not named the file. The file renamed away without a SIGHUP (an operator's `mv`, logrotate
 * without a `postrotate`): what was written is in the renamed file; the next writes go to the
 * path, reopened at once when a new file is there, else at the first commit round after
 * MOVED_GRACE_MS.
 */
export class PathWatch {
  checks: PathChecks = { moved: false, unmounted: false }
  /** Since when (ms since the epoch) the path has not named the open file; undefined while it does. */
  #movedSince: number | undefined

  constructor (readonly fs: SinkFs, readonly file: string) {}

  /** A file was opened at the path (`st`: its fstat). */
  async opened (st: SinkStat): Promise<void> {
    this.checks = await checksAtOpen(this.fs, this.file, st)
    this.#movedSince = undefined
  }

  /**
   * After a commit round (`st`: the open file, `path`: what the path named then): `moved` the
   * first time the path no longer names the file, and whether to reopen now.
   */
  follow (st: SinkStat, path: SinkStat | null | undefined): { moved?: Moved, reopen: boolean } {
    if (!this.checks.moved || path === undefined || names(path, st)) {
      this.#movedSince = undefined
      return { reopen: false }
    }
    const now = Date.now()
    const reopenInMs = path === null ? Math.max(0, (this.#movedSince ?? now) + MOVED_GRACE_MS - now) : 0
    const moved = this.#movedSince === undefined ? { newFile: path !== null, reopenInMs } : undefined
    this.#movedSince ??= now
    return { moved, reopen: reopenInMs === 0 }
  }

  /** For an operation on `fd` that keeps failing: a check whether the file is out of reach for good. */
  goneCheck (fd: number): () => Promise<boolean> {
    return async () => await outOfReach(this.fs, this.file, fd, this.checks)
  }
}
