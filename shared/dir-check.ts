import { lstatSync, statSync, type Stats } from 'node:fs'
import { dirname } from 'node:path'
import { parseEndpoint, runtimeDir } from './endpoint.js'
import { UnsafeEndpointError } from './errors.js'
import { makeDirsSync } from './make-dirs.js'

const GROUP_WRITE = 0o020
const OTHERS_WRITE = 0o002
const ROOT_UID = 0

export interface DirCheckOptions {
  /** A group-writable directory is accepted (the group is trusted: `socketMode` 0660). */
  groupWritable: boolean
  /**
   * A directory owned by another user is accepted when this process is in the directory's
   * group: a producer reaching a writer of another user through a shared group.
   */
  otherOwnerInGroup: boolean
}

function euid (): number | undefined {
  return typeof process.geteuid === 'function' ? process.geteuid() : undefined
}

function inGroup (gid: number): boolean {
  if (typeof process.getegid === 'function' && process.getegid() === gid) return true
  return typeof process.getgroups === 'function' && process.getgroups().includes(gid)
}

/**
 * Why `dir` is not safe to hold sockets or spool files, or undefined when it is: it must be a
 * real directory (a symlink is accepted only when it belongs to this process's user or root,
 * and then its target is checked), owned by this process's user or root (or see
 * `otherOwnerInGroup`), and not writable by others (by its group only with `groupWritable`).
 * Whoever can write the directory, or re-point a symlink to it, could replace the socket and
 * read what producers send. Throws the fs error when `dir` cannot be examined (ENOENT).
 */
export function unsafeDirReason (dir: string, options: DirCheckOptions): string | undefined {
  const uid = euid()
  const link = lstatSync(dir)
  let stat: Stats = link
  if (link.isSymbolicLink()) {
    if (uid !== undefined && link.uid !== uid && link.uid !== ROOT_UID) {
      return `${dir} is a symlink belonging to uid ${link.uid}, who could re-point it; use a real directory`
    }
    stat = statSync(dir)
  }
  if (!stat.isDirectory()) return `${dir} is not a directory`
  const shownMode = `0${(stat.mode & 0o7777).toString(8)}`
  if (uid !== undefined && stat.uid !== uid && stat.uid !== ROOT_UID && !(options.otherOwnerInGroup && inGroup(stat.gid))) {
    return `directory ${dir} belongs to uid ${stat.uid}, not to this process's user (uid ${uid}) or root; use a directory of your own`
  }
  if ((stat.mode & OTHERS_WRITE) !== 0) {
    return `directory ${dir} is writable by others (mode ${shownMode}), so anyone could replace the socket; use a directory of its own (chmod 700)`
  }
  if ((stat.mode & GROUP_WRITE) !== 0 && !options.groupWritable) {
    return `directory ${dir} is writable by its group (mode ${shownMode}); chmod g-w, or set socketMode 0660 to trust that group`
  }
  return undefined
}

/**
 * The producer's side of the socket directory check (the writer's is in
 * writer/endpoint-security.ts): before connecting, each ipc endpoint's directory must pass
 * unsafeDirReason, else a squatter's socket would get the producer's lines. A directory owned
 * by another user passes only when this process is in its group (a writer of another user
 * sharing a group with its producers). A missing default directory
 * (`<tmpdir>/logfunnel-<uid>/`) is created 0700 first, so nobody can squat it later; any other
 * missing directory is the writer's to create.
 */
export function producerEndpointProblem (endpoints: string[]): UnsafeEndpointError | undefined {
  for (const ep of endpoints) {
    const parsed = parseEndpoint(ep)
    if (parsed.transport !== 'ipc') continue
    const dir = dirname(parsed.path)
    const reason = checkOrCreate(dir, dir === runtimeDir())
    if (reason !== undefined) return new UnsafeEndpointError(ep, reason)
  }
  return undefined
}

/**
 * Checks a spool directory before a producer writes into it: the directory itself, or when it
 * does not exist yet, the one it would be created in. Throws UnsafeEndpointError.
 */
export function checkSpoolDir (dir: string): void {
  let reason: string | undefined
  try {
    reason = unsafeDirReason(dir, PRODUCER_CHECK)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    reason = checkOrCreate(dirname(dir), false)
  }
  if (reason !== undefined) throw new UnsafeEndpointError(`spool directory ${dir}`, reason)
}

const PRODUCER_CHECK: DirCheckOptions = { groupWritable: true, otherOwnerInGroup: true }

function checkOrCreate (dir: string, create: boolean): string | undefined {
  try {
    return unsafeDirReason(dir, PRODUCER_CHECK)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return `${dir} cannot be examined: ${(err as Error).message}`
    if (!create) return undefined
  }
  try {
    makeDirsSync(dir, 0o700)
    return unsafeDirReason(dir, PRODUCER_CHECK)
  } catch (err) {
    return `${dir} cannot be created: ${(err as Error).message}`
  }
}
