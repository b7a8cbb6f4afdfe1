import * as fs from 'node:fs'

/**
 * A descriptor held in reserve (on /dev/null) for the writer's own files: when the process runs
 * out of descriptors (EMFILE: connections from other local users, issue 13 point 5; a limit
 * lowered under it), an open of the log file (SIGHUP, rotation, a removed file) or of the state
 * file's temp file closes the reserve and tries again, so the file stays writable and the state
 * saved. Taken again after each use.
 */
let reserveFd = -1

/** Takes the reserve descriptor, if it is not held (and one can be had). */
export function holdReserve (): void {
  if (reserveFd !== -1) return
  try {
    reserveFd = fs.openSync('/dev/null', 'r')
  } catch {}
}

function outOfDescriptors (err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code
  return code === 'EMFILE' || code === 'ENFILE'
}

function spendReserve (): boolean {
  if (reserveFd === -1) return false
  fs.closeSync(reserveFd)
  reserveFd = -1
  return true
}

/** Runs `open`; on EMFILE/ENFILE, once more with the reserve descriptor let go. */
export async function withReserve<T> (open: () => Promise<T>): Promise<T> {
  holdReserve()
  try {
    return await open()
  } catch (err) {
    if (!outOfDescriptors(err) || !spendReserve()) throw err
    try {
      return await open()
    } finally {
      holdReserve()
    }
  }
}

/** `withReserve` for a synchronous `open` (the state file's save). */
export function withReserveSync<T> (open: () => T): T {
  holdReserve()
  try {
    return open()
  } catch (err) {
    if (!outOfDescriptors(err) || !spendReserve()) throw err
    try {
      return open()
    } finally {
      holdReserve()
    }
  }
}
