import { isMainThread } from 'node:worker_threads'
import type { ResolvedProducerOptions } from '../shared/options.js'
import { rescueRest, rescueRing } from './late-spool.js'
import type { SenderThread } from './sender-thread-handle.js'
import { DESTROY_TIMEOUT_MS, destroySenderSync, readBeat } from './sender-requests.js'
import { refusedRecords } from './refused-threads.js'
import { HostedLink } from './hosted-link.js'
import { sayOnStderr } from './stdio-lines.js'

/**
 * How a funnel() destination (funnel.ts) ends with its process: when the program's work is done
 * without close() ('beforeExit'), and at the exit itself, where nothing asynchronous runs any more.
 */

/**
 * At the end of the program's work, receipts are awaited at least this long before the rest
 * goes to the spool: a writer that is up answers within a few ms.
 */
const MIN_EXIT_LINGER_MS = 100

/** Set by the first 'exit' listener: records logged from then on can no longer be sent. */
let processExiting = false
process.prependListener('exit', () => { processExiting = true })

/** True once the process is exiting ('exit' listeners run). */
export function isProcessExiting (): boolean {
  return processExiting
}

/**
 * 'beforeExit' without close(): how long receipts are awaited. With a spool, `linger` ms (at
 * least MIN_EXIT_LINGER_MS), then the rest goes there; without one (tcp endpoint and no
 * `spoolDir`) nothing could keep the records, so `closeTimeoutMs`.
 */
export function exitDeadlineMs (options: ResolvedProducerOptions): number {
  return options.spoolDir !== undefined ? Math.max(options.linger, MIN_EXIT_LINGER_MS) : options.closeTimeoutMs
}

/**
 * 'exit' (also `process.exit()`), or a signal about to end the process: the ring is handed
 * over, then the sender thread spools what has no receipt while this thread waits (at most
 * DESTROY_TIMEOUT_MS). What could not be kept is said on stderr. Returns the records in the
 * spool (0 when the sender thread did not answer in time).
 */
export function spoolAtExit (thread: SenderThread, atSignal = false): number {
  thread.ring.publish()
  // At a signal, a sender thread still starting (loading its modules: 0.1 to 0.5 s, longer with
  // several destinations or a loaded machine) would hold the end that long: the ring goes to the
  // spool from here at once. Before, test runners' workers (vitest's forks, jest-worker), which
  // get SIGKILL 0.5 s after their SIGTERM, lost every record. Not at process.exit(): records logged
  // in a later 'exit' listener follow where the sender says it stood (LateSpool). Main thread
  // only (signals are handled there).
  if (atSignal && isMainThread && thread.options.spoolDir !== undefined && thread.ring.claimUnstarted()) return ringAtExit(thread)
  // A sender thread its host has not started yet (its event loop busy) is started here now.
  if (thread.worker instanceof HostedLink) thread.worker.forExit()
  const beats = readBeat(thread.control).beats
  const outcome = destroySenderSync(thread.worker, thread.control)
  // The process ends now: an exit handler's warning would never print. Written at once.
  if (outcome === false) {
    // One that never started took nothing from the ring (a machine too loaded to start it, a thread stuck before).
    // Claimed: one that starts after all takes nothing (its host may start it late).
    if (thread.ring.claimUnstarted()) return ringAtExit(thread)
    // Not a sign of life through the whole wait: the thread is stuck (a hung disk, a loop) and
    // takes nothing more from the ring, whose lines then go to the spool from here.
    const rescue = readBeat(thread.control).beats === beats && thread.ring.untaken > 0 ? rescueRing(thread.ring, thread.options) : undefined
    const rescued = rescue !== undefined && rescue.spooled > 0 ? `; ${rescue.spooled} it had not taken went to the spool, where the writer ingests them` : ''
    const dropped = thread.ring.lost + (rescue?.lost ?? 0)
    sayOnStderr(`logfunnel: LOGFUNNEL_ERR_CLOSE_TIMEOUT: the process ended while the sender thread ` +
      `had not spooled within ${DESTROY_TIMEOUT_MS} ms: records without a receipt may be lost${rescued}` +
      `${dropped > 0 ? `; ${dropped} that no sender thread took are lost` : ''}\n`)
    return rescue?.spooled ?? 0
  }
  const { lost, spooled } = outcome
  if (lost > 0) {
    // Before, silent: a spool directory it may not write, or a full disk, at process.exit().
    sayOnStderr(`logfunnel: LOGFUNNEL_ERR_CLOSE_TIMEOUT: the process ended with ${lost} records without ` +
      'a receipt that could not be spooled (no spool, or it could not be written): they may be lost\n')
  }
  // A sender that failed too often stopped taking from the ring: what it left goes to the spool
  // from here, and what the ring dropped since is said (before, silent).
  return spooled + ringAtExit(thread)
}

/**
 * 'exit' with no sender thread taking from the ring (it could not start, a new one not tried yet,
 * or it never answered; it ended; it failed too often): what the ring holds goes to the spool from this thread
 * (rescueRing); what could not, and the records the ring dropped once full, are lost: said at
 * once, as close() says it. Before, all were lost, and before that silently. Returns the records
 * spooled.
 */
export function ringAtExit (thread: SenderThread): number {
  const rescue = rescueRest(thread)
  const lost = thread.ring.lost + (rescue?.lost ?? 0)
  const rescued = rescue?.spooled ?? 0
  // One of many refused as the first was: counted, said in one line at the exit.
  if (thread.refused === 'later' && !thread.ring.senderStarted) {
    refusedRecords(rescued, lost)
    return rescued
  }
  if (lost === 0) return rescued
  const spooled = rescued > 0 ? `; ${rescued} went to the spool, where the writer ingests them` : ''
  sayOnStderr(`logfunnel: LOGFUNNEL_ERR_CLOSE_TIMEOUT: the process ended with ${lost} records that no sender ` +
    `thread took (it never started, it ended, or it failed too often): lost${spooled}\n`)
  return rescued
}

/** A record logged in a process 'exit' listener after the destination ended its sending: lost, said at once (a warning would never print there). */
export function closedAtExit (): void {
  sayOnStderr("logfunnel: LOGFUNNEL_ERR_CLOSED: a record was logged in a process 'exit' listener, after " +
    'the destination had ended its sending: it is lost (such records are counted in closedDrops and reported ' +
    "this once). Log before the process exits, or end with await dest.close() after the last record\n")
}
