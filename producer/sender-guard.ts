import { debuglog } from 'node:util'
import { SenderFailedError } from '../shared/errors.js'
import type { ResolvedProducerOptions } from '../shared/options.js'
import type { SenderStart } from './early-hand-over.js'
import { BatchSender } from './sender.js'
import { sumStats, type SenderStats } from './sender-stats.js'
import { WriterReach } from './writer-reach.js'

const debug = debuglog('logfunnel')

/** More failures than this within FAULT_WINDOW_MS and the thread stops sending (a bug that repeats). */
const MAX_FAULTS = 5
const FAULT_WINDOW_MS = 60_000

/**
 * Keeps a producer's sending going through an exception in its thread (funnel()'s sender
 * thread, the transport's worker): the failed BatchSender puts what has no receipt into the
 * spool, closes its sockets, and a new one (a new producer id: the old one's sequence ends in
 * the spool) takes the records that follow. The process is never disturbed; each failure is
 * reported with LOGFUNNEL_ERR_SENDER_FAILED. After MAX_FAULTS within FAULT_WINDOW_MS it gives up:
 * `broken`, and the caller drops and counts what comes next.
 */
export class GuardedSender {
  readonly #opts: ResolvedProducerOptions
  readonly #setup: (sender: BatchSender) => void
  readonly #report: (err: SenderFailedError) => void
  #current: BatchSender
  /** Counters of the senders replaced so far. */
  #retired: SenderStats | undefined
  #faults: number[] = []
  #broken = false
  /** What every sender of this thread saw of the writer. */
  readonly reach: WriterReach

  /** `first`: how the first sender starts (its id and early phase); those that replace it make their own id. */
  constructor (opts: ResolvedProducerOptions, setup: (sender: BatchSender) => void, report: (err: SenderFailedError) => void, first: SenderStart = {}) {
    this.#opts = opts
    this.#setup = setup
    this.#report = report
    this.reach = first.reach ?? new WriterReach()
    this.#current = this.#start(first)
  }

  /** The sender in use. */
  get current (): BatchSender {
    return this.#current
  }

  /** True once failures repeated too often: nothing is sent any more. */
  get broken (): boolean {
    return this.#broken
  }

  /** The counters of every sender of this thread together. */
  get stats (): SenderStats {
    if (this.#retired === undefined) return this.#current.stats
    // Once broken, the current sender is the last one that failed, already counted in #retired
    // (before, its records were counted twice: 200 more spooled than the spool held).
    return this.#broken ? this.#retired : sumStats(this.#retired, this.#current.stats)
  }

  #start (start: SenderStart = {}): BatchSender {
    const sender = new BatchSender(this.#opts, { ...start, reach: this.reach })
    this.#setup(sender)
    return sender
  }

  /** An exception reached the thread's top: spool what the sender holds, then replace it. */
  fault (err: unknown): void {
    debug('sender failed: %o', err)
    const failed = this.#current
    const before = failed.stats.spooledRecords
    try {
      if (!failed.spoolAndDestroy()) failed.destroy()
    } catch (spoolErr) {
      debug('spooling after a failure failed too: %o', spoolErr)
      failed.destroy()
    }
    const after = failed.stats
    const now = performance.now()
    this.#faults = this.#faults.filter((t) => now - t < FAULT_WINDOW_MS)
    this.#faults.push(now)
    this.#broken = this.#faults.length > MAX_FAULTS
    this.#retired = this.#retired === undefined ? after : sumStats(this.#retired, after)
    if (!this.#broken) this.#current = this.#start()
    this.#report(new SenderFailedError(err, { spooledRecords: after.spooledRecords - before, lostRecords: after.abandoned, restarted: !this.#broken }))
  }
}

/** Routes the thread's uncaught exceptions and rejections to `guard` instead of ending the thread. */
export function catchThreadFaults (guard: GuardedSender): void {
  process.on('uncaughtException', (err) => guard.fault(err))
  process.on('unhandledRejection', (err) => guard.fault(err))
}
