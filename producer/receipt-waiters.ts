/** Calls waiting for the writer's receipt of a batch sequence (flush, close), each with a deadline. */
export class ReceiptWaiters {
  #waiters: Array<{ seq: number, resolve: () => void, reject: (err: Error) => void }> = []

  /** Resolves once batch `seq` is receipted; rejects with `timeoutError()` after `deadlineMs`. */
  async wait (seq: number, deadlineMs: number, timeoutError: () => Error): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const waiter = { seq, resolve: () => {}, reject: (_err: Error) => {} }
    try {
      await new Promise<void>((resolve, reject) => {
        waiter.resolve = resolve
        waiter.reject = reject
        this.#waiters.push(waiter)
        timer = setTimeout(() => reject(timeoutError()), deadlineMs)
      })
    } finally {
      clearTimeout(timer)
      const i = this.#waiters.indexOf(waiter)
      if (i !== -1) this.#waiters.splice(i, 1)
    }
  }

  /** The writer receipted every batch through `seq`. */
  receipted (seq: number): void {
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      const waiter = this.#waiters[i] as { seq: number, resolve: () => void }
      if (waiter.seq <= seq) waiter.resolve()
    }
  }

  /** Ends every wait with `err`. */
  rejectAll (err: Error): void {
    for (const waiter of this.#waiters.splice(0)) waiter.reject(err)
  }
}
