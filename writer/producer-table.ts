import type { BatchHeader } from '../shared/protocol.js'
import { pruneProducerStates, touch, type ProducerState, type ProducerStates } from './producer-state.js'

/** Batches remembered per producer to tell a resend from another sender's batch (see admit()). */
const PRINTS_PER_PRODUCER = 16

/**
 * What to do with a batch:
 * - `write`: the next one expected;
 * - `duplicate`: already written (a resend), answer with the current receipt;
 * - `gap`: it skips ahead of what was received (earlier ones were lost): refuse, ask for a resend;
 * - `base_skip`: its `base` claims receipts for batches this writer never received, after it
 *   has written batches of that id that came over the network: another sender uses the id (or
 *   forged the header);
 * - `id_conflict`: a batch with an already written sequence but other content: two senders share
 *   the id, and the receipts (one topic per id) reach both.
 * The answer to a duplicate or a gap is the producer's receipt (`receiptOf()`).
 */
export type Verdict =
  /** `skippedFrom`: with `acceptGap`, the sequence it expected, written past. */
  | { kind: 'write', key: string, skippedFrom?: number }
  | { kind: 'duplicate' | 'gap', key: string, expected: number }
  /** `first`: the first conflict of this id (report it once; count them all). */
  | { kind: 'id_conflict' | 'base_skip', key: string, expected: number, first: boolean }

/** A producer's runtime state: the saved fields, plus fingerprints of its last written batches. */
interface Entry extends ProducerState {
  /**
   * [seq, fingerprint] pairs of the last PRINTS_PER_PRODUCER written batches, a ring (a plain
   * array that grows as needed: one-batch producers, the common short-lived kind, keep two numbers).
   */
  prints?: number[]
  /** A conflict of this id was reported. */
  reported?: boolean
  /** This writer has written a batch of the id that came over the network (see admit()). */
  live?: boolean
}

/**
 * The writer's per-producer sequencing, in one place and without I/O: given a header it answers
 * write, duplicate, gap or conflict; it owns each producer's next expected batch, the `floor`
 * (what a previous writer wrote, from the saved state), the sequence receipted in this run, and
 * the snapshot the state file saves. The writer does the file and socket work around it: each
 * producer's batches are written once and in order, the state survives restarts, and producers
 * gone for long are forgotten (pruneProducerStates), so memory and saves stay bounded.
 *
 * Trust: anyone who may connect to the data socket can send a header with any producer id
 * (ids are visible to every subscriber of the receipt socket). The table does not let one
 * header move another producer's position: a `base` past unreceived batches of an id that is
 * being written is refused, and a second sender of an id is detected by content and reported.
 */
export class ProducerTable {
  #states: ProducerStates = new Map()
  /** Highest batch receipted per producer in this run (its bytes are in the file). */
  #receipted = new Map<string, number>()
  /** Changes so far: a save whose snapshot has no change since the last one is skipped. */
  #changes = 0
  #savedChanges = -1

  get size (): number {
    return this.#states.size
  }

  /** Starts from a previous writer's saved state. */
  restore (states: ProducerStates): void {
    this.#states = states
  }

  /**
   * The producer's receipt: the highest batch in the file, this run's or, if higher, what a
   * previous writer had written (`floor`); undefined when nothing of it is known to be written.
   */
  receiptOf (key: string): number | undefined {
    const floor = (this.#states.get(key)?.floor ?? 0) - 1
    const receipted = this.#receipted.get(key) ?? -1
    const seq = Math.max(floor, receipted)
    return seq < 0 ? undefined : seq
  }

  /** Batch `seq` of the producer is in the file. */
  receipted (key: string, seq: number): void {
    this.#receipted.set(key, seq)
  }

  /**
   * Decides what to do with a batch whose header and payload passed the protocol checks;
   * `fromSpool`: read from the producer's spool, not received over the network; `acceptGap`:
   * a batch that skips ahead is written all the same (the spool of a producer that has ended:
   * no one will send the batches before it).
   */
  admit (header: BatchHeader, payload: Buffer, fromSpool = false, acceptGap = false): Verdict {
    const key = header.producerId.toString('hex')
    const now = Date.now()
    let state = this.#states.get(key) as Entry | undefined
    if (state === undefined) {
      state = { next: header.base, seen: now, floor: 0, written: -1 }
      this.#states.set(key, state)
      this.#changes++
    } else {
      touch(this.#states, key, state, now)
    }
    if (header.base > state.next) {
      // The producer holds receipts up to base - 1 from an earlier writer: nothing before it
      // is owed. Once the producer's batches reach this writer over the network, no earlier
      // writer can get more of them. Batches from the spool do not count: they may be copies
      // an earlier writer also wrote and receipted after its state was last saved (kill -9).
      if (state.live === true) return { kind: 'base_skip', key, expected: state.next, first: firstConflict(state) }
      state.next = header.base
      this.#changes++
    }
    if (header.seq < state.next) {
      const print = state.prints === undefined ? undefined : findPrint(state.prints, header.seq)
      if (print !== undefined && print !== fingerprint(payload)) return { kind: 'id_conflict', key, expected: state.next, first: firstConflict(state) }
      return { kind: 'duplicate', key, expected: state.next }
    }
    let skippedFrom: number | undefined
    if (header.seq > state.next) {
      if (!acceptGap) return { kind: 'gap', key, expected: state.next }
      skippedFrom = state.next
      state.next = header.seq
    }
    state.next++
    state.written = header.seq
    if (!fromSpool) state.live = true
    this.#changes++
    state.prints ??= []
    const slot = (header.seq % PRINTS_PER_PRODUCER) * 2
    state.prints[slot] = header.seq
    state.prints[slot + 1] = fingerprint(payload)
    return skippedFrom === undefined ? { kind: 'write', key } : { kind: 'write', key, skippedFrom }
  }

  /**
   * Forgets producers silent for long or beyond the cap, of those whose last written batch is
   * receipted; `forget` is told each one (the receipt publisher drops what it keeps of it).
   */
  prune (now: number, forget: (key: string) => void): void {
    const settled = (key: string, s: ProducerState): boolean => s.written < 0 || (this.#receipted.get(key) ?? -1) >= s.written
    this.#changes += pruneProducerStates(this.#states, now, settled, (key) => {
      this.#receipted.delete(key)
      forget(key)
    })
  }

  /** A copy of the saved fields, taken before the fsync that makes them true. */
  snapshot (): { states: ProducerStates, changes: number } {
    const states: ProducerStates = new Map()
    for (const [key, s] of this.#states) states.set(key, { next: s.next, seen: s.seen, floor: s.floor, written: s.written })
    return { states, changes: this.#changes }
  }

  /** Whether a snapshot holds changes that the last saved one did not. */
  isNew (snapshot: { changes: number }): boolean {
    return snapshot.changes !== this.#savedChanges
  }

  /** The snapshot is in the file. */
  saved (snapshot: { changes: number }): void {
    this.#savedChanges = snapshot.changes
  }
}

function firstConflict (state: Entry): boolean {
  const first = state.reported !== true
  state.reported = true
  return first
}

function findPrint (prints: number[], seq: number): number | undefined {
  const slot = (seq % PRINTS_PER_PRODUCER) * 2
  return prints[slot] === seq ? prints[slot + 1] : undefined
}

/** FNV-1a over the length and the first and last 64 bytes: cheap, and differs between two senders' batches (time, pid). */
function fingerprint (payload: Buffer): number {
  let h = 0x811c9dc5 ^ payload.length
  const edge = Math.min(64, payload.length)
  for (let i = 0; i < edge; i++) h = Math.imul(h ^ (payload[i] as number), 0x01000193)
  for (let i = Math.max(edge, payload.length - 64); i < payload.length; i++) h = Math.imul(h ^ (payload[i] as number), 0x01000193)
  // 30 bits: a small integer V8 stores inline, no heap number per fingerprint.
  return h & 0x3fffffff
}
