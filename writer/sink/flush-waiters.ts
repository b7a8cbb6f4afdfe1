import { FileError } from '../../shared/errors.js'

/**
 * `FileSink.flushed()` callers, each waiting until the bytes appended before its call count as
 * written (and so fsynced under `fsync: 'batch'`). Oldest first: targets only grow.
 */
export class FlushWaiters {
  #waiting: Array<{ target: number, resolve: () => void, reject: (err: Error) => void }> = []

  /** Resolves once `written` reaches `target` (`settle()`), or rejects if the file is given up first. */
  async add (target: number): Promise<void> {
    await new Promise<void>((resolve, reject) => this.#waiting.push({ target, resolve, reject }))
  }

  /** True when the oldest waiter's bytes are written. */
  due (written: number): boolean {
    const first = this.#waiting[0]
    return first !== undefined && first.target <= written
  }

  /** Resolves every waiter whose bytes are written. */
  settle (written: number): void {
    while (this.due(written)) this.#waiting.shift()?.resolve()
  }

  /** At the end: the written ones resolve, the others (the file was given up) reject. */
  end (written: number, file: string): void {
    for (const waiter of this.#waiting.splice(0)) {
      if (waiter.target <= written) waiter.resolve()
      else waiter.reject(new FileError(file, { op: 'fsync', cause: new Error('the file was given up before these bytes were written') }))
    }
  }
}
