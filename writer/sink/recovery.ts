import { randomBytes } from 'node:crypto'
import { lstatSync } from 'node:fs'
import { open, realpath, type FileHandle } from 'node:fs/promises'
import { FileError } from '../../shared/errors.js'
import { appendNoFollow, sideFileMode } from '../side-files.js'

/** Read size of the backwards scan for the last newline. */
const SCAN_CHUNK_BYTES = 64 * 1024
const NEWLINE = 0x0a

/** What `recoverTornTail` did: the `{"event":"recovered",...}` line the writer prints. */
export interface Recovery {
  event: 'recovered'
  file: string
  /** Bytes after the last newline, removed from the log file. */
  tornBytes: number
  /** Where those bytes were appended (followed by a newline). */
  movedTo: string
  /** When the log path is a symlink: the file it names, which was truncated. */
  target?: string
}

/**
 * Makes sure the log file does not end in a torn line before the writer appends to it. A
 * writer killed in the middle of a write (`kill -9`, power loss) can leave the file ending
 * without `\n`; the next line would then be glued to that fragment. The fragment (the bytes
 * after the last newline, or the whole file if it has none) is appended to `<file>.torn`,
 * which is fsynced, and only then is the log file truncated to its last complete line.
 *
 * `<file>.torn` is never opened through a symlink (or a FIFO, a directory) planted there: the
 * fragment then goes to a fresh `<file>.torn.<random>`, created exclusively, and `movedTo` says
 * so. It gets the log file's mode, never wider. A log path that is a symlink is followed only
 * when the link belongs to the writer's user or root (see checkLogPath), and `target` names the
 * file truncated.
 *
 * Resolves undefined when there was nothing to do (no file, empty, or ends in `\n`).
 * Rejects with LOGFUNNEL_ERR_FILE when the log path is a symlink of another user, the file
 * cannot be read, the fragment cannot be saved, or the file cannot be truncated.
 *
 * @example
 * ```ts
 * const recovery = await recoverTornTail('./logs/app.log')
 * if (recovery) console.error(JSON.stringify(recovery))
 * ```
 */
export async function recoverTornTail (file: string): Promise<Recovery | undefined> {
  checkLogPath(file)
  let handle: FileHandle
  try {
    handle = await open(file, 'r+')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new FileError(file, { cause: err, op: 'open' })
  }
  try {
    const { size, mode } = await handle.stat()
    const keep = await lastNewlineEnd(handle, size)
    if (keep === size) return undefined
    const tail = Buffer.alloc(size - keep)
    await handle.read(tail, 0, tail.length, keep)
    const movedTo = await saveFragment(`${file}.torn`, Buffer.concat([tail, Buffer.from('\n')]), sideFileMode(mode))
    await handle.truncate(keep)
    await handle.sync()
    const target = await realpath(file)
    return { event: 'recovered', file, tornBytes: tail.length, movedTo, ...(lstatSync(file).isSymbolicLink() ? { target } : {}) }
  } catch (err) {
    throw new FileError(file, { cause: err, op: 'recover' })
  } finally {
    await handle.close()
  }
}

/** Offset just past the last `\n` at or before `size` (0 when there is none). */
async function lastNewlineEnd (handle: FileHandle, size: number): Promise<number> {
  const buf = Buffer.alloc(SCAN_CHUNK_BYTES)
  let end = size
  while (end > 0) {
    const start = Math.max(0, end - SCAN_CHUNK_BYTES)
    const { bytesRead } = await handle.read(buf, 0, end - start, start)
    const nl = buf.subarray(0, bytesRead).lastIndexOf(NEWLINE)
    if (nl !== -1) return start + nl + 1
    end = start
  }
  return 0
}

/** Appends to `path`, or when something other than a regular file sits there, to a fresh name; returns where. */
async function saveFragment (path: string, data: Buffer, mode: number): Promise<string> {
  try {
    await appendNoFollow(path, data, mode)
    return path
  } catch (err) {
    if (!['ELOOP', 'EFTYPE', 'ENXIO', 'EISDIR'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err
  }
  const fresh = `${path}.${randomBytes(6).toString('hex')}`
  const handle = await open(fresh, 'wx', mode)
  try {
    await handle.appendFile(data)
    await handle.sync()
  } finally {
    await handle.close()
  }
  return fresh
}

/**
 * The log path may be a symlink (a deployment pointing `app.log` at another volume) only when
 * the link belongs to the writer's user or root: a link someone else planted next to the log
 * would have the writer truncate (recovery) and append to a file of their choosing.
 */
export function checkLogPath (file: string): void {
  let link
  try {
    link = lstatSync(file)
  } catch {
    return
  }
  const uid = typeof process.geteuid === 'function' ? process.geteuid() : undefined
  if (link.isSymbolicLink() && uid !== undefined && link.uid !== uid && link.uid !== 0) {
    const cause = Object.assign(new Error(`the log path is a symlink belonging to uid ${link.uid}, not to the writer's user (uid ${uid}) or root`), { code: 'ELOOP' })
    throw new FileError(file, { cause, op: 'open' })
  }
}
