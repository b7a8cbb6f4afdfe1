import type { Worker } from 'node:worker_threads'
import type { RingWriter } from './line-ring.js'
import { destroySenderSync, type SenderRequest } from './sender-requests.js'
import { spoolOnFatalSignal } from './signal-spool.js'
import { onProcessEnd } from './exit-hooks.js'

/** What a destination's sender thread needs of it once the destination is gone. */
export interface SenderThread {
  worker: Worker
  control: Int32Array
  ring: RingWriter
  exited: boolean
}

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
  if (thread.exited) return
  orphans.add(thread)
  thread.worker.once('exit', () => orphans.delete(thread))
  thread.ring.end()
  const close: SenderRequest = { code: 'close', id: 0 }
  thread.worker.postMessage(close)
  onProcessEnd('exit', thread, spoolOrphan)
  spoolOnFatalSignal(thread, spoolOrphan)
})

function spoolOrphan (thread: SenderThread): void {
  if (!thread.exited && orphans.has(thread)) destroySenderSync(thread.worker, thread.control)
}
