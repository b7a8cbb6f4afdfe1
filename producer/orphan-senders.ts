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
