import { once } from 'node:events'
import { debuglog } from 'node:util'
import { CloseTimeoutError } from '../shared/errors.js'
import type { ResolvedProducerOptions } from '../shared/options.js'
import type { SenderThread } from './orphan-senders.js'
import { withDeadline, type SenderCalls } from './sender-calls.js'
import type { SenderStats } from './sender-stats.js'

const debug = debuglog('logfunnel')

/** How long close() waits for the sender thread to end by itself before terminating it. */
const THREAD_END_TIMEOUT_MS = 5000

/**
 * Ends funnel()'s sender thread at close(): asks it to close (it flushes within `closeTimeoutMs`,
 * closes its sockets and answers with its counters), then waits for it to exit, at most
 * THREAD_END_TIMEOUT_MS, and terminates it past that. A thread that does not answer within
 * `closeTimeoutMs` + THREAD_END_TIMEOUT_MS (stuck in a loop, a bug) is terminated at once: close()
 * waited for that answer with no deadline and never ended. Resolves with the counters (undefined:
 * the thread ended without them) and whether the wait timed out.
 */
export async function closeSenderThread (thread: SenderThread, calls: SenderCalls, closeTimeoutMs: number): Promise<{ stats: SenderStats | undefined, timedOut: boolean }> {
  thread.worker.ref()
  let timedOut = false
  const deadline = { ms: closeTimeoutMs + THREAD_END_TIMEOUT_MS, error: () => new SilentThreadError(closeTimeoutMs + THREAD_END_TIMEOUT_MS) }
  const reply = await calls.request({ code: 'close' }, deadline).catch((err: Error) => {
    debug('close: %s', err.message)
    timedOut = err instanceof SilentThreadError
    return undefined
  })
  await threadEnded(thread, reply === undefined ? 0 : THREAD_END_TIMEOUT_MS)
  return { stats: reply?.stats, timedOut }
}

class SilentThreadError extends Error {
  constructor (ms: number) {
    super(`the sender thread did not answer close() within ${ms} ms`)
  }
}

/** Waits `waitMs` at most for the thread to exit by itself (its sockets closed and settled), then terminates it. */
async function threadEnded (thread: SenderThread, waitMs: number): Promise<void> {
  if (thread.exited) return
  await withDeadline(once(thread.worker, 'exit'), waitMs, () => new Error('the sender thread did not end in time'))
    .catch(async (err: Error) => {
      debug('%s: terminating it', err.message)
      await thread.worker.terminate()
    })
}

/** What close() ended with: the sender's counters (undefined: it gave none), the ring's records it never took, and how the wait ended. */
export interface CloseFacts {
  stats: SenderStats | undefined
  /** Records the sender thread never took from the ring (0 unless it ended early). */
  untaken: number
  /** Records the ring dropped (no sender to take them). */
  ringLost: number
  /** close()'s flush failed or passed its deadline. */
  failed: boolean
  /** The writer is away and what has no receipt is in the spool. */
  writerAway: boolean
  deadlineMs: number
  /** The sender thread did not answer close() in time and was stopped. */
  silent: boolean
}

/** The error close() reports (undefined: every record has a receipt), and how many records are lost. */
export function closeError (facts: CloseFacts, options: ResolvedProducerOptions): { err: CloseTimeoutError | undefined, lost: number } {
  const { stats, untaken, failed, writerAway, deadlineMs } = facts
  const detail = stats !== undefined
    ? { spooled: stats.spooledRecords, spoolDir: options.spoolDir, lost: stats.abandoned + untaken }
    // The sender thread ended without a word, never started (no thread could be made), or was stuck.
    : { lost: facts.ringLost + untaken, why: facts.silent ? 'the sender thread did not answer and was stopped' : 'the sender thread ended or never started' }
  // Without a spool the sender waits for receipts up to its own closeTimeoutMs, then gives up.
  const err = failed || writerAway || (stats !== undefined && stats.abandoned + untaken > 0)
    ? new CloseTimeoutError(failed || writerAway ? deadlineMs : options.closeTimeoutMs, { ...detail, writerAway })
    : undefined
  return { err, lost: detail.lost }
}
