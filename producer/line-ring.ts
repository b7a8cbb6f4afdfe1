import { countLines, LineFramer, surelyWithin } from './line-framing.js'
import { CLAIMED, CONSUMED, FILLING, GONE, HEADER_WORDS, PUBLISHED, type RingMemory, SLEEPING, SLOT_WORDS, slotCount, STARTED } from './ring-layout.js'

/** The logging thread's side of the ring (ring-layout.ts); the sender thread's is ring-reader.ts. */

/** The logging thread re-checks for a vanished sender thread this often while it waits. */
const BLOCKED_RECHECK_MS = 1000
/**
 * A sender thread that has not started this long after the ring was made never will (no thread
 * could be made: a pids limit, memory): the logging thread then stops waiting for it with every
 * slot taken, and drops (and counts) what does not fit, instead of blocking its process for good.
 * A thread that starts later takes the ring over as usual. (Test hook: a positive
 * LOGFUNNEL_TEST_SENDER_START_TIMEOUT_MS replaces it, so that test/sender-thread-start.test.ts need not wait 10 s.)
 */
export const SENDER_START_TIMEOUT_MS = Number(process.env.LOGFUNNEL_TEST_SENDER_START_TIMEOUT_MS) > 0 ? Number(process.env.LOGFUNNEL_TEST_SENDER_START_TIMEOUT_MS) : 10_000

/** What the logging thread needs to know about limits. */
export interface RingWriterOptions {
  maxFrameBytes: number
  /** Called for a line over `maxFrameBytes`, which is not sent. */
  onTooLarge: (bytes: number) => void
  /**
   * True while the sender thread, started, gives no sign of life (a loop that never yields):
   * asked once per BLOCKED_RECHECK_MS while the ring is full; the logging thread then drops (and
   * counts) instead of waiting for it for good.
   */
  stuck?: () => boolean
  /**
   * Called when every slot is taken and no sender thread can take them (it could not start and
   * none is being started, or it ended): writes what the ring holds to the spool from this
   * thread (late-spool.ts) and returns true once the slots are free again; false leaves them
   * (no spool, or a thread is starting), and what does not fit is dropped and counted. Before,
   * a process whose sender thread could never start (Node's permission model without
   * `--allow-worker`, a removed working directory) dropped every line past the ring's size.
   */
  spill?: () => boolean
  /**
   * Called while every slot is taken and no sender thread has started yet, before each wait: the
   * logging thread may start its own sender then (a host thread that has not answered, see
   * hosted-link.ts), as its event loop cannot while it waits here.
   */
  starting?: () => void
}

/** Where lines too large for a slot go: the sender thread's port (a MessagePort or a BroadcastChannel). */
export interface LinePort {
  postMessage: (line: ArrayBuffer) => void
}

/**
 * Logging-thread side of the ring. Lines may arrive in pieces; only whole lines are published.
 *
 * When every slot is taken the logging thread waits for the sender thread, whatever `onFull`
 * says: the sender thread takes slots as fast as it can copy them unless `onFull: 'block'`
 * holds it back, and `'drop'` drops in the sender, past `highWaterMark`, where the writer's
 * backlog is known. Dropping here would drop records while the writer keeps up.
 */
export class RingWriter {
  readonly #state: Int32Array
  readonly #data: Buffer
  readonly #slotBytes: number
  readonly #mask: number
  #port: LinePort | undefined
  readonly #opts: RingWriterOptions
  #published = 0
  /** Offset of the slot being filled, -1 when none is. */
  #base = -1
  /** The index of the words of the slot being filled (its bytes, then its records). */
  #meta = HEADER_WORDS
  #used = 0
  #records = 0
  readonly #framer = new LineFramer()
  #tickScheduled = false
  /** Records lost because the sender thread is gone (it failed) or never started. */
  lost = 0
  readonly #createdAt = performance.now()
  /** Lines rejected for being larger than `maxFrameBytes`. */
  tooLarge = 0
  /** Lines too large for a slot, by the count of their slot, until a sender thread has taken them. */
  readonly #oversize = new Map<number, ArrayBuffer>()

  constructor (ring: RingMemory, opts: RingWriterOptions) {
    this.#state = new Int32Array(ring.state)
    this.#data = Buffer.from(ring.data)
    this.#slotBytes = ring.slotBytes
    this.#mask = slotCount(ring) - 1
    this.#opts = opts
  }

  /**
   * The channel to the sender thread (for lines too large for a slot); a new one with each thread.
   * Lines too large for a slot that no thread has taken yet are posted on it again: those posted
   * to a thread that could not start (or ended) went with it. Before, the new thread found its
   * port empty at such a slot and failed on it again and again, until sending stopped.
   */
  setPort (port: LinePort): void {
    this.#port = port
    this.#pruneOversize()
    for (const line of this.#oversize.values()) port.postMessage(line)
  }

  /**
   * The writing side of a ring another thread wrote (a host thread's, once that thread is gone:
   * sender-host.ts): it goes on from what that thread published.
   */
  static adopt (ring: RingMemory, opts: RingWriterOptions): RingWriter {
    const writer = new RingWriter(ring, opts)
    writer.#published = Atomics.load(writer.#state, PUBLISHED)
    // The slot that thread was filling, with the whole lines it had written (#mark): end() publishes them.
    const slot = writer.#published & writer.#mask
    writer.#meta = HEADER_WORDS + slot * SLOT_WORDS
    const meta = writer.#meta
    const used = Atomics.load(writer.#state, meta)
    if (Atomics.load(writer.#state, FILLING) === ((writer.#published + 1) | 0) && used > 0) {
      writer.#base = slot * writer.#slotBytes
      writer.#used = used
      writer.#records = Atomics.load(writer.#state, meta + 1)
    }
    return writer
  }

  /** True once a sender thread has run on this ring. */
  get senderStarted (): boolean {
    return Atomics.load(this.#state, STARTED) === 1
  }

  /**
   * At the process's end, before any sender thread has started: the ring is this thread's to
   * spool (rescueRing), and a thread that starts after takes nothing from it. False when one has
   * started (then it takes the ring, as usual).
   */
  claimUnstarted (): boolean {
    return Atomics.compareExchange(this.#state, STARTED, 0, CLAIMED) === 0
  }

  /** The count of slots published so far (a flush waits until the reader has freed them). */
  get published (): number {
    return this.#published
  }

  /** True while the last chunk ended mid-line. */
  get hasPartial (): boolean {
    return this.#framer.hasPartial
  }

  /** Takes text; whole lines go into the ring, a trailing partial line waits for the rest. */
  write (chunk: string): void {
    this.#framer.take(chunk, this.#writeWhole)
  }

  /** Whole lines: into the slot being filled, or line by line through #writeLines. */
  readonly #writeWhole = (text: string): void => {
    // The common case: the whole chunk surely fits in the slot being filled, and no line in it
    // can pass maxFrameBytes.
    if (surelyWithin(text, Math.min(this.#slotBytes - this.#used, this.#opts.maxFrameBytes)) && this.#acquire()) {
      this.#used += this.#data.write(text, this.#base + this.#used)
      this.#records += countLines(text)
      this.#mark()
    } else {
      this.#writeLines(text)
    }
    if (!this.#tickScheduled && this.#base !== -1) {
      this.#tickScheduled = true
      setImmediate(() => {
        this.#tickScheduled = false
        this.publish()
      })
    }
  }

  /** Publishes the slot being filled, if any. */
  publish (): void {
    if (this.#base === -1) return
    this.#publishSlot(this.#used, this.#records)
  }

  /** Ends a trailing partial line with `\n` and publishes everything (a close). */
  end (): void {
    const rest = this.#framer.end()
    if (rest.length > 0) this.write(rest)
    this.publish()
  }

  #writeLines (text: string): void {
    let start = 0
    while (start < text.length) {
      const end = text.indexOf('\n', start) + 1
      this.#writeLine(start === 0 && end === text.length ? text : text.slice(start, end))
      start = end
    }
  }

  #writeLine (line: string): void {
    const room = this.#slotBytes - this.#used
    const bytes = surelyWithin(line, Math.min(room, this.#opts.maxFrameBytes)) ? -1 : Buffer.byteLength(line)
    if (bytes > this.#opts.maxFrameBytes) {
      this.tooLarge++
      this.#opts.onTooLarge(bytes)
      return
    }
    if (bytes > this.#slotBytes) {
      this.#writeOversize(line, bytes)
      return
    }
    if (bytes > room) this.publish()
    if (!this.#acquire()) {
      this.#drop(1)
      return
    }
    this.#used += this.#data.write(line, this.#base + this.#used)
    this.#records++
    this.#mark()
  }

  /**
   * Keeps the slot being filled's whole lines in its words as they come (plain stores: only a
   * host reads them, once this thread has ended, sender-host.ts): the lines of a tick cut short by
   * `worker.terminate()` (a pool that ends its thread as soon as the task has answered) are
   * published by the host (adopt). The bytes go last: they count the lines that are whole.
   */
  #mark (): void {
    this.#state[this.#meta + 1] = this.#records
    this.#state[this.#meta] = this.#used
  }

  /** A line larger than a slot travels on the port; its slot only marks its place in order. */
  #writeOversize (line: string, bytes: number): void {
    this.publish()
    if (!this.#acquire()) {
      this.#drop(1)
      return
    }
    const copy = new ArrayBuffer(bytes)
    Buffer.from(copy).write(line)
    this.#pruneOversize()
    this.#oversize.set(this.#published, copy)
    // Copied by the post, not transferred: kept here until taken.
    this.#port?.postMessage(copy)
    this.#publishSlot(-bytes, 1)
  }

  /** Forgets the lines too large for a slot whose slots a sender thread has taken. */
  #pruneOversize (): void {
    if (this.#oversize.size === 0) return
    const consumed = Atomics.load(this.#state, CONSUMED)
    for (const k of this.#oversize.keys()) {
      if (((k - consumed) | 0) >= 0) break
      this.#oversize.delete(k)
    }
  }

  #publishSlot (bytes: number, records: number): void {
    const meta = this.#meta
    Atomics.store(this.#state, meta, bytes)
    Atomics.store(this.#state, meta + 1, records)
    this.#published = (this.#published + 1) | 0
    Atomics.store(this.#state, PUBLISHED, this.#published)
    if (Atomics.load(this.#state, SLEEPING) === 1) Atomics.notify(this.#state, PUBLISHED)
    this.#base = -1
    this.#used = 0
    this.#records = 0
    this.#pruneOversize()
  }

  /** Makes sure a slot is being filled: false only when the sender thread is gone. */
  #acquire (): boolean {
    if (this.#base !== -1) return true
    for (;;) {
      const consumed = Atomics.load(this.#state, CONSUMED)
      if (((this.#published - consumed) | 0) <= this.#mask) break
      const unstarted = Atomics.load(this.#state, STARTED) === 0
      const waited = performance.now() - this.#createdAt
      if (Atomics.load(this.#state, GONE) === 1 || (unstarted && waited >= SENDER_START_TIMEOUT_MS)) {
        if (this.#opts.spill?.() === true) continue
        return false
      }
      if (!unstarted && this.#opts.stuck?.() === true) return false
      if (unstarted) this.#opts.starting?.()
      Atomics.wait(this.#state, CONSUMED, consumed, unstarted ? Math.min(BLOCKED_RECHECK_MS, SENDER_START_TIMEOUT_MS - waited) : BLOCKED_RECHECK_MS)
    }
    const slot = this.#published & this.#mask
    this.#meta = HEADER_WORDS + slot * SLOT_WORDS
    this.#base = slot * this.#slotBytes
    this.#mark()
    Atomics.store(this.#state, FILLING, (this.#published + 1) | 0)
    return true
  }

  #drop (records: number): void {
    this.lost += records
  }

  /** Records written that the sender thread never took: in published slots, or in the one being filled. */
  get untaken (): number {
    let records = this.#base === -1 ? 0 : this.#records
    for (let k = Atomics.load(this.#state, CONSUMED); k !== this.#published; k = (k + 1) | 0) {
      records += Atomics.load(this.#state, HEADER_WORDS + (k & this.#mask) * SLOT_WORDS + 1)
    }
    return records
  }

  /**
   * Once no sender thread can take them any more (it is gone for good: exited or terminated):
   * hands each line it never took to `take` in order (whole lines and their count; the bytes are
   * only valid during the call) and frees their slots. Returns the records that cannot be handed
   * over: lines larger than a slot, which travelled on the gone thread's port.
   */
  takeUntaken (take: (bytes: Buffer, records: number) => void): number {
    this.publish()
    let unreachable = 0
    for (let k = Atomics.load(this.#state, CONSUMED); k !== this.#published; k = (k + 1) | 0) {
      const meta = HEADER_WORDS + (k & this.#mask) * SLOT_WORDS
      const bytes = Atomics.load(this.#state, meta)
      const records = Atomics.load(this.#state, meta + 1)
      const oversize = this.#oversize.get(k)
      if (bytes >= 0) {
        const base = (k & this.#mask) * this.#slotBytes
        take(this.#data.subarray(base, base + bytes), records)
      } else if (oversize !== undefined) {
        take(Buffer.from(oversize), records)
      } else {
        unreachable += records
      }
      Atomics.store(this.#state, CONSUMED, (k + 1) | 0)
    }
    this.#oversize.clear()
    return unreachable
  }

  /** The sender thread ended (or failed to start): the logging thread stops waiting for it. */
  readerGone (): void {
    Atomics.store(this.#state, GONE, 1)
  }
}
