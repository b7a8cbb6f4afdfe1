import { onExit } from 'signal-exit'
import { CloseTimeoutError, LogfunnelError } from '../shared/errors.js'
import { sayOnStderr } from './stdio-lines.js'
import { addHostListener, hostProcess } from './host-process.js'

/**
 * Destinations whose sender thread cannot start for a cause of the process's (Node's permission
 * model without `--allow-worker`: every `new Worker()` throws ERR_ACCESS_DENIED; a removed working
 * directory: every thread fails as it starts), said once per process. The cause belongs to the
 * process, not to a destination: with a logger per request, a job or a test, each new
 * destination said it again, with its close's "went to the spool" after it, two
 * warnings per request on stderr (40 lines for 20 requests). Now the first destination's
 * warnings are said as before; a later one's, where it has no 'error' listener, are counted
 * instead, and one line at the process's exit says how many destinations and records they were.
 * A destination with an 'error' listener still gets each of its own events.
 */
const tally = { destinations: 0, spooled: 0, lost: 0 }
let firstSaid = false
let exitHooked = false

/** A destination's sender thread was refused: true for the process's first, whose reports are said as any destination's. */
export function refusedStart (): boolean {
  if (!firstSaid) {
    firstSaid = true
    return true
  }
  // Now, so that they run after the destinations' own exit and signal hooks (exit-hooks.ts,
  // signal-spool.ts: installed by the first destination). A signal that ends the process ends it
  // without 'exit', and with no later tick for a warning: the line is written to stderr at once.
  if (!exitHooked) {
    exitHooked = true
    addHostListener('exit', () => sayTally(false))
    onExit((_code, signal) => {
      if (signal !== null) sayTally(true)
    }, { alwaysLast: true })
  }
  return false
}

/** What became of the records a later refused destination's ring held (at the exit, or at its collection): counted for the exit's line. */
export function refusedRecords (spooled: number, lost: number): void {
  tally.spooled += spooled
  tally.lost += lost
}

/**
 * A report of a later refused destination that has no 'error' listener: counted for the line at
 * the exit instead of said (false), when it is why its thread did not start or what became of
 * its records at close; anything else is said (true).
 */
export function refusedReport (err: Error): boolean {
  if (err instanceof CloseTimeoutError) {
    tally.spooled += err.spooled ?? 0
    tally.lost += err.lost ?? 0
  } else if ((err as LogfunnelError).code === 'LOGFUNNEL_ERR_SENDER_FAILED') {
    tally.destinations++
  } else {
    return true
  }
  return false
}

/** The process's later refused destinations, what became of their records: one warning, in 'exit' (a later tick never comes), or on stderr at a signal. */
function sayTally (atSignal: boolean): void {
  const { destinations, spooled, lost } = tally
  if (destinations === 0) return
  tally.destinations = 0
  const parts = [`${destinations} more funnel() destinations could not start a sender thread either (said once per process)`]
  if (spooled > 0) parts.push(`${spooled} records without a receipt went to the spool from the logging thread, where the writer ingests them`)
  if (lost > 0) parts.push(`${lost} records are lost (no spool, or it could not be written)`)
  if (atSignal) sayOnStderr(`logfunnel: LOGFUNNEL_ERR_SENDER_FAILED: ${parts.join('; ')}\n`)
  else hostProcess.emit('warning', new LogfunnelError('LOGFUNNEL_ERR_SENDER_FAILED', parts.join('; ')))
}
