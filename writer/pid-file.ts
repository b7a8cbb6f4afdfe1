import { accessSync, constants, rmSync, statSync } from 'node:fs'
import { dirname } from 'node:path'
import { LogfunnelError } from '../shared/errors.js'
import { withReserveSync } from './fd-reserve.js'
import { replaceFileSync } from './side-files.js'

/**
 * Writes `pid` and a newline to `path` atomically: a temp file beside it, then a rename, so
 * a reader (logrotate's `postrotate`: `kill -HUP "$(cat app.pid)"`) never sees it half-written.
 * Throws `LOGFUNNEL_ERR_FILE` when the directory is not writable.
 *
 * @example
 * ```ts
 * writePidFile('/run/logfunnel/app.pid', process.pid)
 * ```
 */
export function writePidFile (path: string, pid: number): void {
  try {
    // A fresh, exclusively created temp name: never written through a symlink planted beside it.
    withReserveSync(() => replaceFileSync(path, `${pid}\n`, 0o644))
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err)
    throw new LogfunnelError('LOGFUNNEL_ERR_FILE', `cannot write pid file ${path}: ${reason}`, { cause: err })
  }
}

/**
 * Checks, before the writer starts, that `path` can be written later: its directory exists, is
 * a directory and is writable. Throws `LOGFUNNEL_ERR_FILE` saying which. Before, a missing
 * directory was found once the writer had bound and opened the file: it stopped again, printed
 * its final stats line, then the error.
 */
export function checkPidFileDir (path: string): void {
  const dir = dirname(path)
  try {
    if (!statSync(dir).isDirectory()) throw Object.assign(new Error(`${dir} is not a directory`), { code: 'ENOTDIR' })
    accessSync(dir, constants.W_OK)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const reason = code === 'ENOENT' ? `its directory ${dir} does not exist` : code === 'EACCES' || code === 'EROFS' ? `its directory ${dir} is not writable (${code})` : (err as Error).message
    throw new LogfunnelError('LOGFUNNEL_ERR_FILE', `cannot write pid file ${path}: ${reason}`, { cause: err })
  }
}

/** Removes the pid file at stop; a file already gone is fine. */
export function removePidFile (path: string): void {
  rmSync(path, { force: true })
}
