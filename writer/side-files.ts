import { randomBytes } from 'node:crypto'
import { closeSync, constants, openSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

/**
 * Files the writer creates beside the log file and in the spool directory (`.torn` files, the
 * state file) are never opened through a symlink someone planted there, and never get wider
 * permissions than the log file itself (see issue 13: a planted `<state>.tmp` or `<file>.torn`
 * symlink made the writer overwrite or append to its target).
 */

/** Mode for a side file: the log file's read/write bits, never execute or special bits. */
export function sideFileMode (logMode: number): number {
  return logMode & 0o666
}

/**
 * Appends `data` to `path` (created with `mode`), fsyncs and closes. O_NOFOLLOW: a symlink at
 * `path` fails with ELOOP instead of being followed.
 */
export async function appendNoFollow (path: string, data: Buffer, mode: number): Promise<void> {
  const handle = await open(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK, mode)
  try {
    if (!(await handle.stat()).isFile()) throw Object.assign(new Error(`${path} is not a regular file`), { code: 'EFTYPE' })
    await handle.appendFile(data)
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/**
 * Replaces `path` with `data` atomically: writes a fresh, exclusively created temp file
 * (`.<name>.<random>.tmp` in the same directory: O_EXCL never follows a symlink and fails on
 * any existing name), renames it over `path` (rename replaces a symlink at `path`,
 * it does not write through it).
 */
export function replaceFileSync (path: string, data: string, mode: number): void {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`)
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode)
  try {
    const buf = Buffer.from(data)
    let offset = 0
    while (offset < buf.length) offset += writeSync(fd, buf, offset)
  } catch (err) {
    closeSync(fd)
    unlinkSync(tmp)
    throw err
  }
  closeSync(fd)
  try {
    renameSync(tmp, path)
  } catch (err) {
    unlinkSync(tmp)
    throw err
  }
}
