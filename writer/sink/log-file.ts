import { dirname } from 'node:path'
import type { FaultRetry } from './fault-retry.js'
import type { PathWatch } from './path-watch.js'
import type { SinkFs, SinkStat } from './sink-fs.js'
import { writeSome, type Chunk } from './write-queue.js'

/**
 * The log file the sink has open for appending: its descriptor and its size, opened by path (its
 * directory created) and written a chunk at a time, each failure retried with backoff (FaultRetry).
 * The sink decides when it is opened, left or switched; `fd` is undefined while none is open.
 */
export class LogFile {
  fd: number | undefined
  /** Bytes in the open file: what it held at its open, and what was written to it since. */
  size = 0
  readonly #fs: SinkFs
  readonly #file: string
  readonly #path: PathWatch
  readonly #retry: FaultRetry

  constructor (fs: SinkFs, file: string, path: PathWatch, retry: FaultRetry) {
    this.#fs = fs
    this.#file = file
    this.#path = path
    this.#retry = retry
  }

  /** Opens the file for appending (creating its directory); the old descriptor is the caller's. */
  async open (): Promise<SinkStat> {
    await this.#fs.mkdir(dirname(this.#file))
    const fd = await this.#fs.open(this.#file)
    try {
      const st = await this.#fs.fstat(fd)
      await this.#path.opened(st)
      this.fd = fd
      this.size = st.size
      return st
    } catch (err) {
      await this.#fs.close(fd).catch(() => {})
      throw err
    }
  }

  /** Writes the rest of the chunk, retrying failures with backoff; `size` follows. */
  async writeOut (chunk: Chunk, gone?: () => Promise<boolean>): Promise<void> {
    while (chunk.done < chunk.bytes) {
      const n = await this.#retry.attempt('write', async () => {
        const n = await writeSome(this.#fs, this.fd as number, chunk)
        if (n <= 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' })
        return n
      }, undefined, gone)
      chunk.done += n
      this.size += n
    }
  }

  /** For a failing operation on the open file: whether it is out of reach for good (path-watch.ts). */
  goneCheck (): () => Promise<boolean> {
    return this.#path.goneCheck(this.fd as number)
  }
}
