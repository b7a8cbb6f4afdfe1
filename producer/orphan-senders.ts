import { CloseTimeoutError } from '../shared/errors.js'
import { rescueRest } from './late-spool.js'
import type { SenderThread } from './sender-thread-handle.js'
import type { SenderReply, SenderRequest } from './sender-requests.js'
import { spoolOnFatalSignal } from './signal-spool.js'
import { onProcessEnd } from './exit-hooks.js'
import { refusedRecords } from './refused-threads.js'
import { ringAtExit, spoolAtExit } from './funnel-exit.js'
import { reviveError } from './thread-errors.js'
import { warnBeforeExit } from './process-warning.js'

/**
 * Sender threads whose destination was garbage-collected without close() (a logger made per
 * request and dropped): each is told to close (what has no receipt goes to the spool, or, with
 * none, waits for receipts up to `closeTimeoutMs`) and ends. Until it has, a process exit or a
 * fatal signal has it spool at once, as for a live destination. Before, nothing let such a
 * destination go: every dropped logger kept its thread (~10 MB, 7 descriptors) until the
 * process ended, and the process ended only after `beforeExit` closed them all.
 */
const orphans = new Set<SenderThread>()

/**
 * What a destination's sender thread costs outside V8's heap, about 10 MB resident (its isolate,
 * its sockets) and the ring. V8 counts neither a SharedArrayBuffer nor a worker's isolate in
 * the memory that makes it collect, so a dropped destination weighed a few hundred bytes: in a
 * process whose heap does not grow (a server making a logger per request), none was ever
 * collected (300 requests: 311 threads, 3.4 GB resident). An ArrayBuffer counts (V8's external
 * memory, a collection at least every 64 MiB of it): each destination is given one of this size.
 */
const SENDER_THREAD_WEIGHT_BYTES = 8 * 1024 * 1024

/** Each live destination's weight; an entry goes with its destination. */
const weights = new WeakMap<object, ArrayBuffer>()

/**
 * Gives a destination its weight for V8's collector (SENDER_THREAD_WEIGHT_BYTES). Made without
 * zero-filling and never read nor written, its pages are never touched: no resident memory.
 */
export function weighForCollector (dest: object): void {
  weights.set(dest, Buffer.allocUnsafeSlow(SENDER_THREAD_WEIGHT_BYTES).buffer)
}

/** Register a destination with its thread; unregister it (by the destination) when it closes. */
export const whenCollected = new FinalizationRegistry<SenderThread>((thread) => {
  tracked.delete(thread)
  // No thread to close (it could not start, or it ended): what the ring holds goes to the spool
  // now. Before, it was lost without a word.
  if (thread.exited) return orphanExited(thread)
  closeOrphan(thread)
})

/**
 * Tells `thread` to close, its destination gone (collected, or its logging thread ended:
 * sender-host.ts): it waits for receipts as a close() does (`closeTimeoutMs`, or until the writer
 * is judged away and the rest is in the spool), then spools what still has none; until it has
 * ended, a process exit or a fatal signal has it spool at once. Before, it spooled at once what
 * had no receipt yet, batches the writer then received twice (1 to 6 a run in a pool terminated
 * after its last task, counted as duplicates).
 */
export function closeOrphan (thread: SenderThread): void {
  orphans.add(thread)
  thread.worker.once('exit', () => orphans.delete(thread))
  thread.ring.end()
  const close: SenderRequest = { code: 'close', id: 0, settle: true }
  thread.worker.postMessage(close)
  onProcessEnd('exit', thread, (t) => spoolOrphan(t, false))
  spoolOnFatalSignal(thread, (t) => spoolOrphan(t, true))
}

/**
 * Every destination's thread until the destination closes or its collection is handled above.
 * A FinalizationRegistry callback runs as a task of its own, some time after the collection; a
 * destination collected and not yet handled has neither its own exit and signal hooks (they hold
 * it weakly) nor its orphan's: at the process's end its thread is found here instead. Before, its
 * records were lost without a word when no other destination's wait gave its thread the time to
 * send them (loggers made per test or per job, then dropped: a SIGTERM 0.1 s later).
 */
const tracked = new Set<SenderThread>()
/** The target of the hooks below, never collected; they are installed once. */
const SWEEP = {}
let sweepInstalled = false

/** Tracks a destination's thread (the destination held weakly) until untrackThread or its collection. */
export function trackThread (thread: SenderThread, dest: object): void {
  thread.owner = new WeakRef(dest)
  if (!sweepInstalled) {
    sweepInstalled = true
    onProcessEnd('exit', SWEEP, () => spoolCollected(false))
    spoolOnFatalSignal(SWEEP, () => spoolCollected(true))
  }
  tracked.add(thread)
}

/** The destination closed: its thread is ended, and its own close() said how. */
export function untrackThread (thread: SenderThread): void {
  tracked.delete(thread)
}

/** At the exit or a fatal signal: the threads of destinations collected and not yet handled. */
function spoolCollected (atSignal: boolean): void {
  for (const thread of tracked) {
    if (thread.owner?.deref() !== undefined) continue
    tracked.delete(thread)
    if (thread.exited) ringAtExit(thread)
    else spoolAtExit(thread, atSignal)
  }
}

/** A process exit or a fatal signal: the orphan spools at once, and what it could not is said, as for a live destination. */
function spoolOrphan (thread: SenderThread, atSignal: boolean): void {
  if (!thread.exited && orphans.has(thread)) spoolAtExit(thread, atSignal)
}

/**
 * Records an orphan's sender thread could not keep at its close (no spool, or it could not be
 * written), known from its reply to the close request; said once it has ended (orphanExited).
 */
const abandonedAtClose = new WeakMap<SenderThread, number>()

/*
 * What the sender thread of a collected destination reports (its failure to start, in funnel.ts,
 * too), whether or not the collection has been noticed yet. Nobody can listen for a collected
 * destination's 'error' any more: each is a process warning, said before an exit that follows at
 * once. Before, each was dropped with the destination: a thread that could not start after its
 * destination was collected lost every record its logger wrote without a word.
 */

/** A reply of an orphan's thread: its errors are said; its close's outcome is kept for orphanExited. */
export function orphanMessage (thread: SenderThread, msg: SenderReply): void {
  if (msg.code === 'error') warnBeforeExit(reviveError(msg.err))
  else if (msg.code === 'done' && msg.stats !== undefined) abandonedAtClose.set(thread, msg.stats.abandoned)
}

/**
 * An orphan's thread has ended: records it never took from the ring (it never started, or ended
 * early) go to the spool from here; those the ring dropped meanwhile, those that could not go
 * there and those its close could not keep are lost: said once.
 */
export function orphanExited (thread: SenderThread): void {
  const abandoned = abandonedAtClose.get(thread) ?? 0
  // What it never took goes to the spool from here (late-spool.ts).
  const rescue = rescueRest(thread)
  const spooled = rescue?.spooled ?? 0
  const lost = thread.ring.lost + (rescue?.lost ?? 0) + abandoned
  // One of many refused as the first was: counted, said in one line at the exit.
  if (thread.refused === 'later' && !thread.ring.senderStarted) return refusedRecords(spooled, lost)
  if (lost === 0 && spooled === 0) return
  const why = abandoned === lost && spooled === 0 ? 'no spool to keep them, or it could not be written' : 'the sender thread ended or never started'
  warnBeforeExit(new CloseTimeoutError(0, { lost, spooled, spoolDir: thread.options.spoolDir, why }))
}
