/**
 * The part of `fs-ext` (a CommonJS native binding that ships no types) that logfunnel uses.
 * Failures are thrown (sync) or passed to the callback as errors with `code` set to the errno
 * name, e.g. `EAGAIN` when a non-blocking lock is held elsewhere.
 */
declare module 'fs-ext' {
  /** `sh`/`ex`: shared/exclusive, `nb` suffix: fail with EAGAIN instead of blocking, `un`: release. */
  export type FlockFlag = 'sh' | 'ex' | 'shnb' | 'exnb' | 'un'

  /** flock(2) on `fd`; blocks the calling thread for `sh`/`ex` until the lock is granted. */
  export function flockSync (fd: number, flags: FlockFlag | number): void

  /** flock(2) on the libuv thread pool; `callback` gets the error, if any. */
  export function flock (fd: number, flags: FlockFlag | number, callback?: (err: NodeJS.ErrnoException | null) => void): void

  export const constants: {
    readonly LOCK_SH: number
    readonly LOCK_EX: number
    readonly LOCK_NB: number
    readonly LOCK_UN: number
  }

  const fsExt: {
    flockSync: typeof flockSync
    flock: typeof flock
    constants: typeof constants
  }
  export default fsExt
}
