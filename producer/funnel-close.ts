import { once } from 'node:events'
import { debuglog } from 'node:util'
import { CloseTimeoutError } from '../shared/errors.js'
import type { ResolvedProducerOptions } from '../shared/options.js'
import type { SenderThread } from './sender-thread-handle.js'
import { withDeadline, type SenderCalls } from './sender-calls.js'
import { BeatWatch, readBeat, SENDER_STOPPED } from './sender-requests.js'
import type { SenderStats } from './sender-stats.js'
import type { Rescue } from './late-spool.js'
import type { RingWriter } from './line-ring.js'

const debug = debuglog('logfunnel')

/** How long close() waits for the sender thread to end by itself before terminating it. */
const THREAD_END_TIMEOUT_MS = 5000

/**
 * A sender thread that gives no sign of life this long while close() waits for its answer is
 * stuck (a loop that never yields: a bug): close() ends it. A thread starved of CPU still beats
 * (every BEAT_MS) many times in that span. (Test hook: a positive LOGFUNNEL_TEST_SILENT_THREAD_MS
 * replaces it, so that test/sender-fault.test.ts need not wait 30 s.)
 */
export const SILENT_THREAD_MS = Number(process.env.LOGFUNNEL_TEST_SILENT_THREAD_MS) > 0 ? Number(process.env.LOGFUNNEL_TEST_SILENT_THREAD_MS) : 30_000
const SILENCE_CHECK_MS = Math.min(1000, SILENT_THREAD_MS / 4)

/** How close()'s flush ended (flushForClose). */
export interface CloseFlush {
  /** It failed or passed its deadline: the sender was told to abandon what it holds. */
  failed: boolean
  /** The sender had stopped taking records: it failed too often. */
  stopped: boolean
  /** The writer is away and what has no receipt is in the spool: waiting on would not help. */
  writerAway: boolean
}

/**
 * close()'s flush of everything the ring holds, within `deadlineMs`. With no sender thread run
 * yet (its start failed, before or while close() began), one more is started for what the ring
 * holds (`startAgain`); past the deadline the ring is given up, and a thread started then would
 * only be terminated.
 */
export async function flushForClose (ring: RingWriter, calls: SenderCalls, deadlineMs: number, startAgain: () => void): Promise<CloseFlush> {
  const flush = { code: 'flush', through: ring.published, spooledEnds: true } as const
  let failed = false
  const flushed = calls.request(flush).catch(async (err: unknown) => {
    if (ring.senderStarted || failed) throw err
    startAgain()
    return await calls.request(flush)
  })
  try {
    const writerAway = (await withDeadline(flushed, deadlineMs, () => new CloseTimeoutError(deadlineMs))).spooled === true
    return { failed, stopped: false, writerAway }
  } catch (err) {
    failed = true
    debug('close: %s', (err as Error).message)
    calls.post({ code: 'abandon' })
    return { failed, stopped: (err as Error).message === SENDER_STOPPED, writerAway: false }
  }
}

/** How the sender thread ended at close(). */
export interface ThreadEnd {
  /** Its counters; undefined when it ended without them. */
  stats?: SenderStats
  /** It gave no sign of life for SILENT_THREAD_MS and was terminated, holding this many records at its last sign. */
  silentHolding?: number
}

/**
 * Ends funnel()'s sender thread at close(): asks it to close (it flushes within `closeTimeoutMs`,
 * closes its sockets and answers with its counters), then waits for it to exit, at most
 * THREAD_END_TIMEOUT_MS, and terminates it past that. The answer has no deadline of its own: a
 * thread starved of CPU on a saturated machine answers late, and one terminated then takes the
 * records it holds with it (a deadline of closeTimeoutMs + 5 s lost 47 of 50 producers' records
 * at a load average of 160). What ends the wait is the thread's silence: no sign of life
 * (sender-requests.ts' beats) for SILENT_THREAD_MS. Before, a stuck thread held close(), and its
 * process, for good.
 */
export async function closeSenderThread (thread: SenderThread, calls: SenderCalls): Promise<ThreadEnd> {
  thread.worker.ref()
  const silence = watchSilence(thread.control)
  try {
    const reply = await Promise.race([
      calls.request({ code: 'close' }).catch((err: Error) => {
        debug('close: %s', err.message)
        return undefined
      }),
      silence.silent
    ])
    if (reply === SILENT) {
      debug('close: no sign of life from the sender thread for %d ms: terminating it', SILENT_THREAD_MS)
      await thread.worker.terminate()
      return { silentHolding: readBeat(thread.control).heldRecords }
    }
    await threadEnded(thread)
    return { stats: reply?.stats }
  } finally {
    silence.stop()
  }
}

const SILENT = Symbol('silent')

/** Resolves `silent` once the thread's beat has not moved for SILENT_THREAD_MS. */
function watchSilence (control: Int32Array): { silent: Promise<typeof SILENT>, stop: () => void } {
  let timer: NodeJS.Timeout | undefined
  const watch = new BeatWatch(control)
  const silent = new Promise<typeof SILENT>((resolve) => {
    timer = setInterval(() => {
      if (watch.silentFor(SILENT_THREAD_MS)) resolve(SILENT)
    }, SILENCE_CHECK_MS)
  })
  return { silent, stop: () => clearInterval(timer) }
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
  /** What the logging thread did with the records no sender took from the ring (rescueRing). */
  rescue: Rescue | undefined
  /** The thread gave no sign of life and was ended, holding this many records (ThreadEnd). */
  silentHolding: number | undefined
  /** Records the ring dropped (no sender to take them). */
  ringLost: number
  /** The sender had stopped taking records (it failed too often): close()'s flush could not be met. */
  stopped: boolean
  /** close()'s flush failed or passed its deadline. */
  failed: boolean
  /** The writer is away and what has no receipt is in the spool. */
  writerAway: boolean
  deadlineMs: number
}

/** The error close() reports (undefined: every record has a receipt), and how many records are lost. */
export function closeError (facts: CloseFacts, options: ResolvedProducerOptions): { err: CloseTimeoutError | undefined, lost: number } {
  const { stats, rescue, failed, writerAway, deadlineMs } = facts
  const rescued = rescue?.spooled ?? 0
  const unkept = rescue?.lost ?? 0
  const rescueError = rescue?.err === undefined ? undefined : (rescue.err as Error).message
  const detail = stats !== undefined
    ? {
        spooled: stats.spooledRecords + rescued,
        spoolDir: options.spoolDir,
        // The ring drops only with no sender to take from it: one that failed too often stopped taking.
        lost: stats.abandoned + unkept + facts.ringLost,
        spoolError: stats.lastSpoolError ?? rescueError,
        why: facts.stopped || facts.ringLost > 0 ? 'the sender stopped taking records (it failed too often)' : undefined
      }
    // The sender thread ended without a word, never started (no thread could be made), or was ended for its silence.
    : {
        spooled: rescued,
        spoolDir: options.spoolDir,
        lost: facts.ringLost + unkept + (facts.silentHolding ?? 0),
        spoolError: rescueError,
        why: facts.silentHolding !== undefined
          ? `the sender thread gave no sign of life for ${SILENT_THREAD_MS} ms and was ended`
          : 'the sender thread ended or never started'
      }
  // Without a spool the sender waits for receipts up to its own closeTimeoutMs, then gives up.
  const err = failed || writerAway || detail.lost > 0 || rescued > 0 || facts.silentHolding !== undefined || facts.stopped
    ? new CloseTimeoutError(failed || writerAway ? deadlineMs : options.closeTimeoutMs, { ...detail, writerAway })
    : undefined
  return { err, lost: detail.lost }
}

/**
 * How close() ends once closeError has judged it. Every record in the file or in the spool, where
 * the writer ingests it: a shutdown while the writer is away (restarting, not started yet) is no
 * failure of the application's, and a rejection there would end it with an error, so it is said
 * once (`say.error`: the 'error' event, else a warning). With no writer ever reached, that report
 * (`say.unreached`, unreached-report.ts) also says how close() ended: one report for the one
 * cause, not a second one after it. Records lost: thrown.
 */
export function endClose (judged: { err: CloseTimeoutError | undefined, lost: number }, stats: SenderStats | undefined, reportSpooled: boolean,
  say: { unreached: (ending: string | undefined) => boolean, error: (err: Error) => void }): void {
  const { err, lost } = judged
  const spooledReport = err !== undefined && stats !== undefined && lost === 0 && stats.spooledRecords > 0 && reportSpooled
  const unreached = say.unreached(spooledReport ? err.ending : undefined)
  if (err === undefined) return
  if (lost > 0) throw err
  // No thread's counters (it was ended, or none ran), yet every record is in the spool: said.
  if (stats === undefined || (spooledReport && !unreached)) say.error(err)
  else debug('%s', err.message)
}
