/**
 * A producer's go-back-N window, apart from sockets, timers and policies: the sealed batches
 * without a receipt, oldest first, with their sequence numbers. Batch `seq` is at
 * `#batches[seq - firstSeq]`; `[firstSeq, sendSeq)` has been sent, `[sendSeq, nextSeq)` waits.
 * A receipt for `seq` frees every batch up to it; a rewind sends again from `firstSeq`.
 * A batch moved to the spool keeps its place (the writer receipts it from there) but no longer
 * holds its payload in memory.
 */

/** One sealed batch. */
export interface WindowBatch {
  readonly seq: number
  readonly records: number
  /** Undefined once the batch is in the spool. */
  payload: Buffer | undefined
  /** Times it was sent (more than once after a rewind). */
  sends: number
  /**
   * A copy is in the spool (the writer was away): its receipt may come from there while a send
   * of it still waits for the data connection and holds its payload, so the payload is never
   * reused for another batch (see BatchSender's receipts).
   */
  copied?: boolean
}

export class SendWindow {
  #batches: WindowBatch[] = []
  #firstSeq = 0
  #nextSeq = 0
  #sendSeq = 0
  /** Payload bytes held in memory: counted when sealed, released on receipt or spooling. */
  #bytes = 0

  /** The first batch without a receipt (the `base` of every header). */
  get firstSeq (): number {
    return this.#firstSeq
  }

  /** The sequence the next sealed batch gets. */
  get nextSeq (): number {
    return this.#nextSeq
  }

  /** Batches sealed and not receipted. */
  get unreceipted (): number {
    return this.#nextSeq - this.#firstSeq
  }

  /** True while a batch has been sent and has no receipt. */
  get inFlight (): boolean {
    return this.#sendSeq > this.#firstSeq
  }

  /** Payload bytes held in memory. */
  get bytes (): number {
    return this.#bytes
  }

  /** The batches without a receipt, oldest first. */
  get batches (): readonly WindowBatch[] {
    return this.#batches
  }

  /** Appends a sealed batch; returns it with its sequence number. */
  seal (payload: Buffer, records: number): WindowBatch {
    const batch: WindowBatch = { seq: this.#nextSeq++, records, payload, sends: 0 }
    this.#batches.push(batch)
    this.#bytes += payload.length
    return batch
  }

  /** Appends a batch that is in the spool only (an early phase's that could not be read back). */
  sealInSpool (records: number): void {
    this.#batches.push({ seq: this.#nextSeq++, records, payload: undefined, sends: 0 })
  }

  /**
   * The next batch to send, counted as sent; undefined when none waits, or when the next one
   * is in the spool (it and everything after it reach the writer from there).
   */
  takeNextToSend (): (WindowBatch & { payload: Buffer }) | undefined {
    if (this.#sendSeq >= this.#nextSeq) return undefined
    const batch = this.#batches[this.#sendSeq - this.#firstSeq] as WindowBatch
    if (batch.payload === undefined) return undefined
    this.#sendSeq++
    batch.sends++
    return batch as WindowBatch & { payload: Buffer }
  }

  /**
   * The writer has every batch up to `seq`: frees them, and returns them (oldest first).
   * Undefined for a receipt outside the window.
   */
  receipt (seq: number): WindowBatch[] | undefined {
    if (seq < this.#firstSeq || seq >= this.#nextSeq) return undefined
    const freed = this.#batches.splice(0, seq - this.#firstSeq + 1)
    for (const batch of freed) this.#bytes -= batch.payload?.length ?? 0
    this.#firstSeq = seq + 1
    if (this.#sendSeq < this.#firstSeq) this.#sendSeq = this.#firstSeq
    return freed
  }

  /** Sends again from the first batch without a receipt. False when nothing was in flight. */
  rewind (): boolean {
    if (this.#sendSeq === this.#firstSeq) return false
    this.#sendSeq = this.#firstSeq
    return true
  }

  /**
   * Hands each batch still in memory to `store` (oldest first) and drops its payload. Stops at
   * the first one `store` throws for, and rethrows: the batches before it are in the spool.
   */
  moveToSpool (store: (batch: WindowBatch & { payload: Buffer }) => void): void {
    for (const batch of this.#batches) {
      if (batch.payload === undefined) continue
      store(batch as WindowBatch & { payload: Buffer })
      this.#bytes -= batch.payload.length
      batch.payload = undefined
    }
  }

  /** Records without a receipt, in memory or in the spool. */
  unreceiptedRecords (): number {
    let n = 0
    for (const batch of this.#batches) n += batch.records
    return n
  }

  /** Records without a receipt that only memory holds (not in the spool). */
  heldRecords (): number {
    let n = 0
    for (const batch of this.#batches) if (batch.payload !== undefined) n += batch.records
    return n
  }
}
