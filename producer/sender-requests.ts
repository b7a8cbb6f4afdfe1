import { parentPort } from 'node:worker_threads'
import type { SenderWorker } from './sender-thread-handle.js'
import type { SenderStats } from './sender-stats.js'
import type { PlainError } from './thread-errors.js'
import { reachFromWord, type ReachFacts } from './writer-reach.js'

/**
 * What funnel()'s logging thread (funnel.ts) and its sender thread (sender-thread.ts) tell each
 * other: requests with replies over the worker's port, and a shared control word for the one
 * request that must be answered while the logging thread cannot wait asynchronously (exit).
 */

/** funnel()'s requests to its sender thread (sender-thread.ts); each with an id gets a 'done' reply. */
export type SenderRequest =
  /**
   * With `spooledEnds` (close()), also answered once the writer is away and everything without a
   * receipt is in the spool. With `keep` (the close of the last destination, the sender kept for
   * the next: funnel.ts), drops not reported yet become their notice record first, as at close,
   * and the reply carries the sender's counters.
   */
  | { code: 'flush', id: number, through: number, spooledEnds?: boolean, keep?: boolean }
  | { code: 'close', id: number, settle?: boolean }
  | { code: 'abandon' }

/** The answer to a request with an id; `spooled`: a flush ended by the spool, not by receipts. */
export interface DoneReply { code: 'done', id: number, err?: PlainError, stats?: SenderStats, spooled?: boolean }

/** funnel()'s sender thread to the logging thread. */
export type SenderReply =
  | { code: 'error', err: PlainError }
  /** The sender thread ended the early phase (early-spool.ts): the logging thread closes its segment. */
  | { code: 'early-closed' }
  | DoneReply

/** The error message of a flush the sender thread can no longer meet: it failed too often and stopped taking records. */
export const SENDER_STOPPED = 'the sender stopped after repeated failures'

/** Asks the sender thread to close its sockets at once: the process is exiting. */
export const DESTROY = 'logfunnel:destroy'
const DESTROYED_INDEX = 0
/** Records the exit request could not spool (no spool, or it could not be written). */
const LOST_INDEX = 1
/** 1 once the words after it say where the producer's sequence and spool stand (SpoolPosition). */
const POSITION_INDEX = 2
const ID_WORDS = 4
/** The early phase (early-spool.ts): the appends begun and its CLOSED bit; the appends ended; the entries and records in its segment. */
export const EARLY_STATE_INDEX = POSITION_INDEX + 1 + ID_WORDS + 2 + 2 + 1
export const EARLY_WRITTEN_INDEX = EARLY_STATE_INDEX + 1
export const EARLY_ENTRIES_INDEX = EARLY_WRITTEN_INDEX + 1
export const EARLY_RECORDS_INDEX = EARLY_ENTRIES_INDEX + 1
/** Records in the spool once the exit request was done. */
const SPOOLED_INDEX = EARLY_RECORDS_INDEX + 1
/** What the sender has seen of the writer (WriterReach.word). */
const REACH_INDEX = SPOOLED_INDEX + 1
/** Counted up by the sender thread every BEAT_MS while its event loop runs (publishBeat). */
const BEAT_INDEX = REACH_INDEX + 1
/** The records its sender held in memory only (no receipt, not in the spool) at that beat. */
const HELD_INDEX = BEAT_INDEX + 1
/** Who starts the sender thread: the thread that made the logging thread, or the logging thread itself (claimSenderStart). */
const STARTER_INDEX = HELD_INDEX + 1
/** 1 once the logging thread is gone (its host saw it exit: sender-host.ts); a hosted sender waits for it no more. */
const LOGGING_GONE_INDEX = STARTER_INDEX + 1
const WORDS = LOGGING_GONE_INDEX + 1

/** The sender thread's starter: none yet, the host (sender-host.ts), or the logging thread. */
export const STARTER_NONE = 0
export const STARTER_HOST = 1
export const STARTER_OWN = 2

/**
 * Takes the start of the sender thread for `starter`: true for the first to ask. The host and the
 * logging thread may both try, the host late (its event loop busy): only one starts a thread.
 */
export function claimSenderStart (control: Int32Array, starter: typeof STARTER_HOST | typeof STARTER_OWN): boolean {
  return Atomics.compareExchange(control, STARTER_INDEX, STARTER_NONE, starter) === STARTER_NONE
}

/** How often a running sender thread says it is alive. */
export const BEAT_MS = 250

/**
 * How long a process exit waits for the sender thread to spool what has no receipt (up to
 * highWaterMark bytes, a few ms on a local disk) and close its sockets. (Test hook: a positive
 * LOGFUNNEL_TEST_DESTROY_TIMEOUT_MS replaces it, so that test/sender-fault.test.ts need not wait 5 s.)
 */
export const DESTROY_TIMEOUT_MS = Number(process.env.LOGFUNNEL_TEST_DESTROY_TIMEOUT_MS) > 0 ? Number(process.env.LOGFUNNEL_TEST_DESTROY_TIMEOUT_MS) : 5000

/**
 * The words both threads share: 1 once the sender thread has closed its sockets, and the
 * records it could not spool then and those in the spool; where the producer stands as it
 * ends; the early phase; whether the writer was ever reached.
 */
export function createControl (): Int32Array {
  return new Int32Array(new SharedArrayBuffer(WORDS * Int32Array.BYTES_PER_ELEMENT))
}

/**
 * Where a producer stands once its sender has ended: lines logged later (in a process 'exit'
 * listener) go to the spool from the logging thread, going on from there.
 */
export interface SpoolPosition {
  producerId: Buffer
  /** The sequence the next batch takes. */
  nextSeq: number
  /** The first batch without a receipt (they are in the spool). */
  base: number
  /** The number of the producer's next spool segment. */
  nextSegment: number
}

/** Sender thread, as it ends: says where the producer stands (read by readPosition). */
export function publishPosition (control: Int32Array, pos: SpoolPosition): void {
  const at = POSITION_INDEX + 1
  for (let i = 0; i < ID_WORDS; i++) control[at + i] = pos.producerId.readInt32BE(i * 4)
  writeUint53(control, at + ID_WORDS, pos.nextSeq)
  writeUint53(control, at + ID_WORDS + 2, pos.base)
  control[at + ID_WORDS + 4] = pos.nextSegment
  Atomics.store(control, POSITION_INDEX, 1)
}

/** Logging thread: where the producer stands, once its sender thread has said so. */
export function readPosition (control: Int32Array): SpoolPosition | undefined {
  if (Atomics.load(control, POSITION_INDEX) !== 1) return undefined
  const at = POSITION_INDEX + 1
  const producerId = Buffer.alloc(ID_WORDS * 4)
  for (let i = 0; i < ID_WORDS; i++) producerId.writeInt32BE(control[at + i] as number, i * 4)
  return { producerId, nextSeq: readUint53(control, at + ID_WORDS), base: readUint53(control, at + ID_WORDS + 2), nextSegment: control[at + ID_WORDS + 4] as number }
}

function writeUint53 (words: Int32Array, at: number, n: number): void {
  words[at] = Math.floor(n / 0x100000000) | 0
  words[at + 1] = n % 0x100000000 | 0
}

function readUint53 (words: Int32Array, at: number): number {
  return (words[at] as number) * 0x100000000 + ((words[at + 1] as number) >>> 0)
}

/** How the exit request left the records: `lost`, could not be spooled; `spooled`, in the spool (the sender's spooledRecords). */
export interface DestroyOutcome {
  lost: number
  spooled: number
}

/**
 * Logging thread, where it cannot wait asynchronously (a process 'exit' handler, or before
 * `worker.terminate()`): asks the sender thread to close its sockets and blocks until it has,
 * at most `timeoutMs`. Returns false on timeout, else how it left the records.
 */
export function destroySenderSync (worker: SenderWorker, control: Int32Array, timeoutMs = DESTROY_TIMEOUT_MS): false | DestroyOutcome {
  if (Atomics.load(control, DESTROYED_INDEX) !== 1) {
    worker.postMessage({ code: DESTROY })
    if (Atomics.wait(control, DESTROYED_INDEX, 0, timeoutMs) === 'timed-out') return false
  }
  return { lost: Atomics.load(control, LOST_INDEX), spooled: Atomics.load(control, SPOOLED_INDEX) }
}

/**
 * Sender thread: on the request, runs `destroy` (closing the sockets; it says how it left the
 * records) and says so.
 */
export function onDestroyRequest (control: Int32Array, destroy: () => DestroyOutcome, from: { on: (event: 'message', listener: (msg: { code?: unknown } | null) => void) => unknown } | null = parentPort): void {
  from?.on('message', (msg: { code?: unknown } | null) => {
    if (msg?.code !== DESTROY) return
    const { lost, spooled } = destroy()
    Atomics.store(control, LOST_INDEX, Math.min(lost, 0x7fffffff))
    Atomics.store(control, SPOOLED_INDEX, Math.min(spooled, 0x7fffffff))
    // Only once the closed sockets' pending sends and receives have settled on this thread's
    // loop: a promise of theirs settling during the thread's teardown aborts the process too.
    setImmediate(() => markDestroyed(control))
  })
}

/** Host: the logging thread has ended; a sender waiting for its early phase's last append stops waiting. */
export function markLoggingGone (control: Int32Array): void {
  Atomics.store(control, LOGGING_GONE_INDEX, 1)
  Atomics.notify(control, EARLY_WRITTEN_INDEX)
}

/** Sender thread: true once its logging thread is gone. */
export function isLoggingGone (control: Int32Array): boolean {
  return Atomics.load(control, LOGGING_GONE_INDEX) === 1
}

/** True once the sender thread has closed its sockets (at a close or an exit request). */
export function isDestroyed (control: Int32Array): boolean {
  return Atomics.load(control, DESTROYED_INDEX) === 1
}

/** Sender thread: its sockets are closed (a later destroySenderSync returns at once). */
export function markDestroyed (control: Int32Array): void {
  Atomics.store(control, DESTROYED_INDEX, 1)
  Atomics.notify(control, DESTROYED_INDEX)
}

/** Sender thread: what it has seen of the writer (WriterReach.word), for the logging thread's report at the end. */
export function publishReach (control: Int32Array, word: number): void {
  Atomics.store(control, REACH_INDEX, word)
}

/** Logging thread: what the sender has seen of the writer, as it last published it. */
export function readReach (control: Int32Array): ReachFacts {
  return reachFromWord(Atomics.load(control, REACH_INDEX))
}

/** Sender thread, every BEAT_MS: alive, and holding `heldRecords` records that only its memory keeps. */
export function publishBeat (control: Int32Array, heldRecords: number): void {
  Atomics.store(control, HELD_INDEX, Math.min(heldRecords, 0x7fffffff))
  Atomics.add(control, BEAT_INDEX, 1)
}

/** Logging thread: the sender thread's beats so far, and what it held at the last one. */
export function readBeat (control: Int32Array): { beats: number, heldRecords: number } {
  return { beats: Atomics.load(control, BEAT_INDEX), heldRecords: Atomics.load(control, HELD_INDEX) }
}

/** Logging thread: tells a sender thread that gives no sign of life (no beat) for a while. */
export class BeatWatch {
  readonly #control: Int32Array
  #beats: number
  #since = performance.now()

  constructor (control: Int32Array) {
    this.#control = control
    this.#beats = readBeat(control).beats
  }

  /** True once no beat has come for `ms`, counted from the last beat this watch saw (or its making). */
  silentFor (ms: number): boolean {
    const beats = readBeat(this.#control).beats
    const now = performance.now()
    if (beats !== this.#beats) {
      this.#beats = beats
      this.#since = now
      return false
    }
    return now - this.#since >= ms
  }
}
