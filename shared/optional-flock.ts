import { createRequire } from 'node:module'
import { MissingDependencyError } from './errors.js'
import { moduleBase } from './module-base.js'

const require = createRequire(moduleBase(import.meta.url))

/** `flock(2)` as fs-ext offers it: `ex`/`sh` block, an `nb` suffix fails with EAGAIN, `un` releases. */
export type FlockSync = (fd: number, flags: 'ex' | 'exnb' | 'sh' | 'shnb' | 'un') => void

let loaded: FlockSync | undefined

/**
 * fs-ext's `flockSync`, loaded on first use. fs-ext is an optional dependency: it is a native
 * addon that compiles with node-gyp at install, so it is missing where there is no compiler
 * (slim container images) or with `npm install --ignore-scripts`. Only the lock-based baseline
 * (ProcessLock, flockDestination, the bench's flock strategy) needs it.
 *
 * @throws MissingDependencyError (LOGFUNNEL_ERR_MISSING_DEPENDENCY) naming `user` and what to install.
 */
export function loadFlock (user: string): FlockSync {
  if (loaded !== undefined) return loaded
  try {
    loaded = (require('fs-ext') as { flockSync: FlockSync }).flockSync
  } catch (err) {
    throw new MissingDependencyError('fs-ext', user, { cause: err })
  }
  return loaded
}

/** Whether fs-ext can be loaded. */
export function hasFlock (): boolean {
  try {
    loadFlock('hasFlock')
    return true
  } catch {
    return false
  }
}
