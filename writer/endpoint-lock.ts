import { closeSync, openSync } from 'node:fs'
import { createRequire } from 'node:module'
import { EndpointInUseError, FileError } from '../shared/errors.js'

const require = createRequire(import.meta.url)
const { flockSync } = require('fs-ext') as { flockSync: (fd: number, flags: 'exnb' | 'un') => void }

/**
 * An exclusive, non-blocking `flock(2)` on a file beside the endpoint, held while the writer
 * runs. Binding an ipc path a second time silently takes the socket from the first writer, so
 * the lock is what keeps a second writer out. The kernel drops the lock if the process dies.
 * Its directory is created and checked beforehand (endpoint-security.ts).
 *
 * @throws EndpointInUseError (LOGFUNNEL_ERR_ENDPOINT_IN_USE) when another writer holds it.
 */
export class EndpointLock {
  readonly path: string
  #fd: number

  constructor (endpoint: string, path: string) {
    this.path = path
    try {
      this.#fd = openSync(path, 'a', 0o600)
    } catch (err) {
      throw new FileError(path, { cause: err })
    }
    try {
      flockSync(this.#fd, 'exnb')
    } catch (err) {
      closeSync(this.#fd)
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK') throw new EndpointInUseError(endpoint, path, { cause: err })
      throw new FileError(path, { cause: err })
    }
  }

  release (): void {
    if (this.#fd < 0) return
    closeSync(this.#fd)
    this.#fd = -1
  }
}
