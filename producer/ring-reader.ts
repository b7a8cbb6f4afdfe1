import { BroadcastChannel, receiveMessageOnPort, type MessagePort } from 'node:worker_threads'
import { CLAIMED, CONSUMED, GONE, HEADER_WORDS, PUBLISHED, type RingMemory, SLEEPING, SLOT_WORDS, slotCount, STARTED } from './ring-layout.js'

/** Node 20 has Atomics.waitAsync (V8 11); TypeScript's lib declares it from es2024 on. */
interface AtomicsWithWaitAsync {
  waitAsync: (array: Int32Array, index: number, value: number, timeoutMs: number) => { async: boolean, value: Promise<string> | string }
}

/** Sender-thread side of the ring. */
export class RingReader {
  readonly #state: Int32Array
  readonly #data: Buffer
  readonly #slotBytes: number
  readonly #mask: number
  readonly #port: MessagePort | BroadcastChannel
  /** Lines from a BroadcastChannel its event loop delivered before a take asked for them, in order. */
  readonly #delivered: ArrayBuffer[] = []
  /** Resolves when a line too large for a slot arrives, while a take waits for one (waitForPosted). */
  #arrived: (() => void) | undefined
  /** A take stopped at a slot whose line has not arrived yet. */
  #awaitingPosted = false
  #consumed = 0
  /** The line too large for a slot taken from the port for the slot at #consumed, until that slot is freed. */
  #posted: Buffer | undefined
  /** The logging thread took the ring at the process's end before this thread started: nothing is taken. */
  readonly #claimed: boolean

  /**
   * `port` carries the lines too large for a slot: a MessagePort (the logging thread started this
   * thread), or a BroadcastChannel (its host thread did, sender-host.ts): such a line may then
   * arrive after its slot, once the logging thread has the channel (hosted-link.ts), and an event
   * loop delivers a channel's messages even to no listener, so they are kept as they come.
   */
  constructor (ring: RingMemory, port: MessagePort | BroadcastChannel) {
    this.#state = new Int32Array(ring.state)
    this.#data = Buffer.from(ring.data)
    this.#slotBytes = ring.slotBytes
    this.#mask = slotCount(ring) - 1
    this.#port = port
    if (port instanceof BroadcastChannel) {
      port.onmessage = (event) => {
        this.#delivered.push((event as { data: ArrayBuffer }).data)
        this.#arrived?.()
      }
    }
    // Made in the sender thread as it starts (again, after a thread that could not start): it
    // takes the ring from where it stands, and the logging thread may wait for it from now on.
    this.#consumed = Atomics.load(this.#state, CONSUMED)
    // GONE cleared before STARTED is set: a logging thread that saw this thread started and the
    // failed one's GONE still set would take it for gone (and spool the ring from its close()).
    Atomics.store(this.#state, GONE, 0)
    this.#claimed = Atomics.compareExchange(this.#state, STARTED, 0, 1) === CLAIMED
    Atomics.notify(this.#state, CONSUMED)
  }

  /** True once every slot up to the count `published` has been taken. */
  reached (published: number): boolean {
    return ((this.#consumed - published) | 0) >= 0
  }

  get hasPublished (): boolean {
    return !this.#claimed && Atomics.load(this.#state, PUBLISHED) !== this.#consumed
  }

  /**
   * Hands each published slot to `take` (bytes of whole lines and their count; the bytes are
   * only valid during the call) and frees it, while `more()` says so.
   */
  takeAll (take: (bytes: Buffer, records: number) => void, more: () => boolean): void {
    while (!this.#claimed && Atomics.load(this.#state, PUBLISHED) !== this.#consumed && more()) {
      const meta = HEADER_WORDS + (this.#consumed & this.#mask) * SLOT_WORDS
      const bytes = Atomics.load(this.#state, meta)
      const records = Atomics.load(this.#state, meta + 1)
      if (bytes >= 0) {
        const base = (this.#consumed & this.#mask) * this.#slotBytes
        take(this.#data.subarray(base, base + bytes), records)
      } else {
        // Posted before its slot was published, so it is already on a MessagePort. Kept until the
        // slot is freed: a take that throws (a sender's fault) meets this slot again.
        this.#posted ??= this.#nextPosted()
        if (this.#posted === undefined) {
          this.#awaitingPosted = true
          return
        }
        take(this.#posted, records)
        this.#posted = undefined
      }
      this.#consumed = (this.#consumed + 1) | 0
      Atomics.store(this.#state, CONSUMED, this.#consumed)
      Atomics.notify(this.#state, CONSUMED)
    }
  }

  #nextPosted (): Buffer | undefined {
    const line = this.#delivered.shift() ?? receiveMessageOnPort(this.#port as MessagePort)?.message as ArrayBuffer | undefined
    return line === undefined ? undefined : Buffer.from(line)
  }

  /** True while a take waits for a line too large for a slot that has not arrived yet. */
  get awaitingPosted (): boolean {
    return this.#awaitingPosted
  }

  /** Resolves once a line too large for a slot arrives (or after `timeoutMs`). */
  async waitForPosted (timeoutMs: number): Promise<void> {
    if (this.#delivered.length === 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs)
        this.#arrived = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      this.#arrived = undefined
    }
    this.#awaitingPosted = false
  }

  /** Resolves when a slot is published, or after `timeoutMs` (a missed wake-up costs no more). */
  async waitForPublished (timeoutMs: number): Promise<void> {
    Atomics.store(this.#state, SLEEPING, 1)
    const waited = (Atomics as unknown as AtomicsWithWaitAsync).waitAsync(this.#state, PUBLISHED, this.#consumed, timeoutMs)
    if (waited.async) await waited.value
    Atomics.store(this.#state, SLEEPING, 0)
  }

  /** Tells the logging thread not to wait for this side any more. */
  markGone (): void {
    Atomics.store(this.#state, GONE, 1)
    Atomics.notify(this.#state, CONSUMED)
  }
}
