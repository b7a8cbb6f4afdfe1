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
 * THREAD_END_TIMEOUT_MS, and terminates it past that. The answer itself has no deadline: a
 * thread starved of CPU on a saturated machine answers late, and one terminated then takes the
 * records it holds with it (a deadline of closeTimeoutMs + 5 s lost 47 of 50 producers' records
 * at a load average of 160). Resolves with the counters, undefined when the thread ended without
 * them.
 */
export async function closeSenderThread (thread: SenderThread, calls: SenderCalls): Promise<SenderStats | undefined> {
  thread.worker.ref()
  const reply = await calls.request({ code: 'close' }).catch((err: Error) => {
    debug('close: %s', err.message)
    return undefined
  })
  await threadEnded(thread)
  return reply?.stats
}

/** Waits THREAD_END_TIMEOUT_MS at most for the thread to exit by itself (its sockets closed and settled), then terminates it. */
async function threadEnded (thread: SenderThread): Promise<void> {
  if (thread.exited) return
  await withDeadline(once(thread.worker, 'exit'), THREAD_END_TIMEOUT_MS, () => new Error('the sender thread did not end in time'))
    .catch(async (err: Error) => {
      debug('%s: terminating it', err.message)
      await thread.worker.terminate()
    })
}

/** What close() ended with: the sender's counters (undefined: it gave none), the ring's records, and how its flush ended. */
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
}

/** The error close() reports (undefined: every record has a receipt), and how many records are lost. */
export function closeError (facts: CloseFacts, options: ResolvedProducerOptions): { err: CloseTimeoutError | undefined, lost: number } {
  const { stats, untaken, failed, writerAway, deadlineMs } = facts
  const detail = stats !== undefined
    ? { spooled: stats.spooledRecords, spoolDir: options.spoolDir, lost: stats.abandoned + untaken }
    // The sender thread ended without a word, or never started (no thread could be made).
    : { lost: facts.ringLost + untaken, why: 'the sender thread ended or never started' }
  // Without a spool the sender waits for receipts up to its own closeTimeoutMs, then gives up.
  const err = failed || writerAway || (stats !== undefined && stats.abandoned + untaken > 0)
    ? new CloseTimeoutError(failed || writerAway ? deadlineMs : options.closeTimeoutMs, { ...detail, writerAway })
    : undefined
  return { err, lost: detail.lost }
}
