import { debuglog } from 'node:util'
import type * as zmq from 'zeromq'
import { encodeReceipt, encodeTooLargeFlag, GAP_FLAG, PRODUCER_ID_BYTES, WELCOME_RECEIPT } from '../shared/protocol.js'
import { messages } from '../shared/receive.js'
import type { FileSink } from './sink/file-sink.js'

const debug = debuglog('logfunnel')

/** A receipt waiting to be sent, with its third frame if it has one (GAP_FLAG, a too-large flag). */
interface Due {
  producerId: Buffer
  seq: number
  flag?: Buffer
}

interface Tracked {
  producerId: Buffer
  seq: number
  /** Byte offset (since start) at which the batch ends in the file. */
  end: number
}

/**
 * How long final receipts may take to leave at stop (ZMQ_LINGER of the receipt socket): long
 * enough for a local producer, short enough not to hold up a stopping writer.
 */
const RECEIPT_LINGER_MS = 1000
const SUBSCRIBE = 1
/** A due entry with this sequence sends the welcome (no batch of that producer written yet). */
const NO_RECEIPT = -1

/** Where receipts come from: the writer's producer table (producer-table.ts). */
export interface ReceiptSource {
  /** The producer's receipt, undefined when nothing of it is known to be written. */
  receiptOf: (key: string) => number | undefined
  /** Batch `seq` of the producer is in the file. */
  receipted: (key: string, seq: number) => void
}

/**
 * Publishes receipts: for each producer, the highest batch sequence that has reached the file.
 * Batches are tracked by their end offset and receipted once the sink reports those bytes
 * written; receipts are cumulative, so they coalesce per producer and one send is in flight.
 *
 * The socket is an XPUB so that the writer sees each subscription: a SUB that joins late
 * (ZeroMQ's "slow joiner") misses what was published before, so on subscribe the writer sends
 * that producer's current receipt again instead of leaving it to the producer's resend timer,
 * or the welcome when nothing of it is written yet: either tells the producer it is heard.
 */
export class ReceiptPublisher {
  #pub: zmq.XPublisher
  #tracked: Tracked[] = []
  #head = 0
  readonly #source: ReceiptSource
  /** Receipts waiting to be sent, coalesced per producer. */
  #due = new Map<string, Due>()
  #sending: Promise<void> | undefined

  constructor (pub: zmq.XPublisher, sink: FileSink, source: ReceiptSource) {
    this.#pub = pub
    this.#source = source
    sink.on('written', (written: number) => this.#onWritten(written))
    void this.#receiveSubscriptions()
  }

  async #receiveSubscriptions (): Promise<void> {
    try {
      for await (const [msg] of messages(this.#pub)) {
        if (msg !== undefined && msg[0] === SUBSCRIBE && msg.length === 1 + PRODUCER_ID_BYTES) {
          const producerId = Buffer.from(msg.subarray(1))
          // Its receipt (this run's, or a previous writer's from the saved state), or the welcome.
          this.#publish(producerId)
        }
      }
    } catch (err) {
      if (!this.#pub.closed) debug('subscription socket failed: %o', err)
    }
  }

  /** Registers a batch handed to the sink; it is receipted once `end` bytes are written. */
  track (producerId: Buffer, seq: number, end: number): void {
    this.#tracked.push({ producerId, seq, end })
  }

  /** Sends the producer's current receipt again (it resent a batch that is already written). */
  republish (producerId: Buffer): void {
    if (this.#source.receiptOf(producerId.toString('hex')) !== undefined) this.#publish(producerId)
  }

  /**
   * Tells the producer a batch of its skipped ahead (one before it was lost, e.g. with a
   * previous writer's queue): its current receipt, or the welcome, with GAP_FLAG, so it resends
   * at once.
   */
  gap (producerId: Buffer): void {
    this.#publish(producerId, GAP_FLAG)
  }

  /**
   * Tells the producer a batch of its was over `maxFrameBytes` (its limits are larger than the
   * writer's): its current receipt, or the welcome, with the too-large flag, so it batches
   * within the writer's limit and moves what it holds to the spool.
   */
  tooLarge (producerId: Buffer, maxFrameBytes: number): void {
    this.#publish(producerId, encodeTooLargeFlag(maxFrameBytes))
  }

  /** Queues the producer's receipt, or the welcome when nothing of it is written. */
  #publish (producerId: Buffer, flag?: Buffer): void {
    const key = producerId.toString('hex')
    const seq = this.#source.receiptOf(key) ?? NO_RECEIPT
    this.#due.set(key, flag === undefined ? { producerId, seq } : { producerId, seq, flag })
    this.#kick()
  }

  /** Drops a receipt still due for a producer that is forgotten (see pruneProducerStates). */
  forget (key: string): void {
    this.#due.delete(key)
  }

  /** Sends the receipts still due, then closes the socket. */
  async close (): Promise<void> {
    this.#kick()
    await this.#sending
    this.#pub.linger = RECEIPT_LINGER_MS
    this.#pub.close()
  }

  #onWritten (written: number): void {
    const tracked = this.#tracked
    while (this.#head < tracked.length && (tracked[this.#head] as Tracked).end <= written) {
      const { producerId, seq } = tracked[this.#head++] as Tracked
      const key = producerId.toString('hex')
      this.#source.receipted(key, seq)
      this.#due.set(key, { producerId, seq })
    }
    if (this.#head > 1024 && this.#head * 2 > tracked.length) {
      this.#tracked = tracked.slice(this.#head)
      this.#head = 0
    }
    this.#kick()
  }

  #kick (): void {
    if (this.#sending !== undefined || this.#due.size === 0) return
    this.#sending = this.#drain().catch((err: unknown) => {
      // A lost receipt costs nothing: the next one, or the producer's resend, covers it.
      debug('receipt send failed: %o', err)
    }).finally(() => {
      this.#sending = undefined
      if (this.#due.size > 0 && !this.#pub.closed) this.#kick()
    })
  }

  async #drain (): Promise<void> {
    while (this.#due.size > 0 && !this.#pub.closed) {
      const [key, { producerId, seq, flag }] = this.#due.entries().next().value as [string, Due]
      this.#due.delete(key)
      const receipt = seq === NO_RECEIPT ? WELCOME_RECEIPT : encodeReceipt(seq)
      await this.#pub.send(flag === undefined ? [producerId, receipt] : [producerId, receipt, flag])
    }
  }
}
