import { rmSync } from 'node:fs'
import { LogfunnelError } from '../shared/errors.js'
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
    replaceFileSync(path, `${pid}\n`, 0o644)
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err)
    throw new LogfunnelError('LOGFUNNEL_ERR_FILE', `cannot write pid file ${path}: ${reason}`, { cause: err })
  }
}

/** Removes the pid file at stop; a file already gone is fine. */
export function removePidFile (path: string): void {
  rmSync(path, { force: true })
}
