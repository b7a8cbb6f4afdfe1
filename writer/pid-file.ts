import { renameSync, rmSync, writeFileSync } from 'node:fs'
import { LogfunnelError } from '../shared/errors.js'

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
  const tmp = `${path}.${pid}.tmp`
  try {
    writeFileSync(tmp, `${pid}\n`, { mode: 0o644 })
    renameSync(tmp, path)
  } catch (err) {
    rmSync(tmp, { force: true })
    const reason = err instanceof Error ? err.message : String(err)
    throw new LogfunnelError('LOGFUNNEL_ERR_FILE', `cannot write pid file ${path}: ${reason}`, { cause: err })
  }
}

/** Removes the pid file at stop; a file already gone is fine. */
export function removePidFile (path: string): void {
  rmSync(path, { force: true })
}
