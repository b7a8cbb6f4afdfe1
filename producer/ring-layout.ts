/**
 * The hand-over between funnel()'s logging thread and its sender thread: a ring of fixed-size
 * slots in shared memory, one writer (the logging thread) and one reader (the sender thread).
 *
 * The logging thread encodes each line straight into the slot it is filling (one UTF-8 encode
 * per record, no per-record message or wake-up) and publishes the slot when it is full or at
 * the end of the tick; the sender thread copies published slots into its batches and frees
 * them. Both threads run at once: the logging thread only waits when every slot is taken.
 *
 * Counters are Int32 and wrap; the slot count is a power of two so `count & mask` stays the
 * slot index across the wrap, and distances are taken as `(a - b) | 0`.
 */

/** Slots published by the logging thread. */
export const PUBLISHED = 0
/** Slots freed by the sender thread. */
export const CONSUMED = 1
/** 1 once the sender thread is gone: the logging thread must not wait for it any more. */
export const GONE = 2
/**
 * 1 while the sender thread waits for a slot. Waking a thread from Atomics.waitAsync costs
 * microseconds (measured here: ~17 us per notify against ~0.2 us per record), so the logging
 * thread notifies only then. Both sides use sequentially consistent Atomics: the reader sets
 * the flag before its wait re-checks PUBLISHED, the writer stores PUBLISHED before it reads the
 * flag, so one of them always sees the other (no lost wake-up).
 */
export const SLEEPING = 3
/** 1 once the sender thread runs; CLAIMED once the logging thread took the ring first (claimUnstarted). */
export const STARTED = 4
export const CLAIMED = 2
/**
 * The count of the slot the logging thread fills, plus one, from when it begins to fill it (its
 * words then say how many whole lines it holds so far): once that thread is gone, its host
 * publishes them (RingWriter.adopt). Stale once that slot is published.
 */
export const FILLING = 5
export const HEADER_WORDS = 6
/** Per slot: bytes (negative: a line too large for a slot, sent on the port), records. */
export const SLOT_WORDS = 2

/** A slot's size: large enough to make the per-slot cost vanish, small enough to keep many. */
export const MAX_SLOT_BYTES = 256 * 1024
export const MIN_SLOTS = 4
/** The shared memory of one ring; sent to the sender thread in workerData. */
export interface RingMemory {
  state: SharedArrayBuffer
  data: SharedArrayBuffer
  slotBytes: number
}

/** A ring of about `totalBytes` (at least MIN_SLOTS slots, a power of two). */
export function createRing (totalBytes: number): RingMemory {
  const slotBytes = Math.min(MAX_SLOT_BYTES, Math.floor(totalBytes / MIN_SLOTS))
  const slots = 2 ** Math.floor(Math.log2(Math.max(MIN_SLOTS, Math.floor(totalBytes / slotBytes))))
  return {
    state: new SharedArrayBuffer((HEADER_WORDS + slots * SLOT_WORDS) * Int32Array.BYTES_PER_ELEMENT),
    data: new SharedArrayBuffer(slots * slotBytes),
    slotBytes
  }
}

export function slotCount (ring: RingMemory): number {
  return ring.data.byteLength / ring.slotBytes
}
