import { constants, readdirSync, type Stats } from 'node:fs'
import { lstat, open } from 'node:fs/promises'
import { MAX_FRAME_BYTES } from '../shared/options.js'
import { maxSpoolFileBytes, parseSpoolName, processStartTime, threadStartTime, type SpoolThread } from '../shared/spool.js'

/** A spool file (complete or not) waits in `dir`: false when there is none, or no directory. */
export function spoolFileWaits (dir: string | undefined): boolean {
  if (dir === undefined) return false
  try {
    return readdirSync(dir).some((name) => parseSpoolName(name) !== undefined)
  } catch {
    return false
  }
}

/**
 * Spool files in `dir` that a scan would take: complete `.spool` files and `.spool.tmp` files
 * whose process is gone (told by pid alone here), `skip` aside (files reported and left where
 * they are); 0 when there is no directory.
 */
export function spoolFilesReady (dir: string, skip: ReadonlySet<string>): number {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return 0
  }
  return names.filter((name) => {
    const parsed = parseSpoolName(name)
    return parsed !== undefined && !skip.has(name) && (parsed.complete || !isAlive(parsed.pid, null))
  }).length
}

/** A file set aside or refused; thrown inside SpoolIngester's ingest, reported by its scan. */
export class Refusal {
  constructor (readonly reason: string, readonly setAside: boolean) {}
}

/** Reads a spool file whole through a checked descriptor, or throws a Refusal; undefined when it is gone. */
export async function readSpoolFile (path: string, dirStat: Stats): Promise<{ buf: Buffer, mtimeMs: number, version: string } | undefined> {
  let st: Stats
  try {
    st = await lstat(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new Refusal(`lstat failed: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, true)
  }
  if (!st.isFile()) throw new Refusal(`not a regular file (${kindOf(st)})`, true)
  if (!ownerMayWrite(st, dirStat)) throw new Refusal(`owned by uid ${st.uid}, who may not write the spool directory`, true)
  const max = maxSpoolFileBytes(MAX_FRAME_BYTES)
  if (st.size > max) throw new Refusal(`${st.size} bytes, more than a producer writes (${max})`, true)
  let handle
  try {
    // O_NOFOLLOW and O_NONBLOCK: a file swapped for a symlink or a FIFO since lstat is not followed or waited on.
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return undefined
    throw new Refusal(`cannot open: ${code ?? 'error'}`, true)
  }
  try {
    const fst = await handle.stat()
    if (!fst.isFile() || fst.ino !== st.ino || fst.size > max) throw new Refusal('changed while being opened', true)
    const buf = Buffer.alloc(fst.size)
    let offset = 0
    while (offset < buf.length) {
      const { bytesRead } = await handle.read(buf, offset, buf.length - offset, offset)
      if (bytesRead === 0) break
      offset += bytesRead
    }
    return { buf: buf.subarray(0, offset), mtimeMs: fst.mtimeMs, version: versionOf(fst) }
  } catch (err) {
    if (err instanceof Refusal) throw err
    throw new Refusal(`cannot read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, true)
  } finally {
    await handle.close()
  }
}

/** The producer is alive: its pid exists and, when the file recorded it, with the same start time. */
export function isAlive (pid: number, start: string | null): boolean {
  if (start !== null) {
    const now = processStartTime(pid)
    if (now !== undefined) return now === start
  }
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The thread of live process `pid` that a file names (SpoolPreamble.thread) is alive: it exists, with the same start time when recorded. */
export function isThreadAlive (pid: number, thread: SpoolThread): boolean {
  const now = threadStartTime(pid, thread.tid)
  return now !== undefined && (thread.start === null || now === thread.start)
}

/** The file's owner may write the directory: this process's user, root, the directory's owner, or its group when group-writable. */
function ownerMayWrite (st: Stats, dirStat: Stats): boolean {
  const uid = typeof process.geteuid === 'function' ? process.geteuid() : undefined
  if (uid === undefined) return true
  return st.uid === uid || st.uid === 0 || st.uid === dirStat.uid || ((dirStat.mode & 0o020) !== 0 && st.gid === dirStat.gid)
}

/** What tells one content of a file from a later one: its size and mtime. */
export function versionOf (st: Stats): string {
  return `${st.size}:${st.mtimeMs}`
}

/** What a file that is not a regular one is, for a report. */
function kindOf (st: Stats): string {
  if (st.isSymbolicLink()) return 'symlink'
  if (st.isFIFO()) return 'fifo'
  if (st.isDirectory()) return 'directory'
  if (st.isSocket()) return 'socket'
  return 'device'
}
