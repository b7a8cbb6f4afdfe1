import { open, type FileHandle } from 'node:fs/promises'
import { FileError } from '../../shared/errors.js'

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
}

/**
 * Makes sure the log file does not end in a torn line before the writer appends to it. A
 * writer killed in the middle of a write (`kill -9`, power loss) can leave the file ending
 * without `\n`; the next line would then be glued to that fragment. The fragment (the bytes
 * after the last newline, or the whole file if it has none) is appended to `<file>.torn`,
 * which is fsynced, and only then is the log file truncated to its last complete line.
 *
 * Resolves undefined when there was nothing to do (no file, empty, or ends in `\n`).
 * Rejects with LOGFUNNEL_ERR_FILE when the file cannot be read, the fragment cannot be
 * saved, or the file cannot be truncated.
 *
 * @example
 * ```ts
 * const recovery = await recoverTornTail('./logs/app.log')
 * if (recovery) console.error(JSON.stringify(recovery))
 * ```
 */
export async function recoverTornTail (file: string): Promise<Recovery | undefined> {
  let handle: FileHandle
  try {
    handle = await open(file, 'r+')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new FileError(file, { cause: err, op: 'open' })
  }
  try {
    const { size } = await handle.stat()
    const keep = await lastNewlineEnd(handle, size)
    if (keep === size) return undefined
    const tail = Buffer.alloc(size - keep)
    await handle.read(tail, 0, tail.length, keep)
    const movedTo = `${file}.torn`
    await appendDurably(movedTo, Buffer.concat([tail, Buffer.from('\n')]))
    await handle.truncate(keep)
    await handle.sync()
    return { event: 'recovered', file, tornBytes: tail.length, movedTo }
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

async function appendDurably (path: string, data: Buffer): Promise<void> {
  const handle = await open(path, 'a')
  try {
    await handle.appendFile(data)
    await handle.sync()
  } finally {
    await handle.close()
  }
}
