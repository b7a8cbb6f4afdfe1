/**
 * How a wait for receipts ended: every batch receipted, or (for a wait that accepts it, close())
 * the writer is away and every batch without a receipt is in the spool.
 */
export type Settled = 'receipted' | 'spooled'

interface Waiter {
  seq: number
  /** The wait also ends once everything without a receipt is in the spool while the writer is away. */
  spooledEnds: boolean
  resolve: (how: Settled) => void
  reject: (err: Error) => void
}

/** Calls waiting for the writer's receipt of a batch sequence (flush, close), each with a deadline. */
export class ReceiptWaiters {
  #waiters: Waiter[] = []

  /**
   * Resolves once batch `seq` is receipted (or, with `spooledEnds`, once `spooled()` says the
   * rest is in the spool); rejects with `timeoutError()` after `deadlineMs`.
   */
  async wait (seq: number, deadlineMs: number, timeoutError: () => Error, spooledEnds = false): Promise<Settled> {
    let timer: NodeJS.Timeout | undefined
    const waiter: Waiter = { seq, spooledEnds, resolve: () => {}, reject: () => {} }
    try {
      return await new Promise<Settled>((resolve, reject) => {
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
      const waiter = this.#waiters[i] as Waiter
      if (waiter.seq <= seq) waiter.resolve('receipted')
    }
  }

  /** The writer is away and every batch without a receipt is in the spool: ends the waits that accept that. */
  spooled (): void {
    for (const waiter of this.#waiters) if (waiter.spooledEnds) waiter.resolve('spooled')
  }

  /** Ends every wait with `err`. */
  rejectAll (err: Error): void {
    for (const waiter of this.#waiters.splice(0)) waiter.reject(err)
  }
}
