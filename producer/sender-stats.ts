import { hostname } from 'node:os'

/** Counters of one producer. */
export interface SenderStats {
  /** Records accepted into batches. */
  records: number
  /** Batches sealed. */
  batches: number
  /** Highest batch sequence with a receipt (-1: none yet). */
  receipted: number
  /** Times sending went back to the first unreceipted batch. */
  resends: number
  /** Records dropped because the buffer was full (`onFull: 'drop'`). */
  dropped: number
  /** Records rejected locally for being larger than `maxFrameBytes`. */
  tooLarge: number
  /** Bytes held: the open batch plus sealed batches without a receipt. */
  heldBytes: number
  /** Batches written to the spool. */
  spooled: number
  /** Records in those batches. */
  spooledRecords: number
  /** Records without a receipt and not in the spool when the sockets closed: lost. */
  abandoned: number
  /** Spool writes that failed (the batches stayed in memory, or were lost at exit). */
  spoolErrors: number
  /** Batches copied to the spool while the writer did not answer (`spoolAfterMs`); kept in memory too. */
  spoolCopies: number
  /** The last spool write that failed, its message (`EACCES: permission denied, open '...'`); null when none did. */
  lastSpoolError: string | null
}

/** Every counter at its start. */
export function newSenderStats (): SenderStats {
  return { records: 0, batches: 0, receipted: -1, resends: 0, dropped: 0, tooLarge: 0, heldBytes: 0, spooled: 0, spooledRecords: 0, abandoned: 0, spoolErrors: 0, spoolCopies: 0, lastSpoolError: null }
}

/** Counters of two senders together; `receipted`, `heldBytes` and `lastSpoolError` (if any) are the later one's. */
export function sumStats (a: SenderStats, b: SenderStats): SenderStats {
  const sum = { ...b, lastSpoolError: b.lastSpoolError ?? a.lastSpoolError }
  for (const key of Object.keys(sum) as Array<keyof SenderStats>) {
    if (key !== 'receipted' && key !== 'heldBytes' && key !== 'lastSpoolError') sum[key] += a[key]
  }
  return sum
}

/**
 * The counters of a sender since `base` (its counters when the last destination's close() left it
 * kept for the next: funnel.ts), as a sender started at `base` would have them: counts are the
 * difference, `receipted` counts from the batch after `base`'s last (-1: none since),
 * `heldBytes` is now's, `lastSpoolError` now's if a spool write failed since.
 */
export function statsSince (now: SenderStats, base: SenderStats): SenderStats {
  const since = { ...now, lastSpoolError: now.spoolErrors > base.spoolErrors ? now.lastSpoolError : null }
  for (const key of Object.keys(since) as Array<keyof SenderStats>) {
    if (key !== 'receipted' && key !== 'heldBytes' && key !== 'lastSpoolError') since[key] -= base[key]
  }
  since.receipted = Math.max(-1, now.receipted - (base.receipted + 1))
  return since
}

/** The record that stands for `n` records dropped (`onFull: 'drop'`), written once there is room again. */
export function dropNotice (n: number): Buffer {
  const notice = { level: 40, time: Date.now(), pid: process.pid, hostname: hostname(), logfunnelDropped: n, msg: `logfunnel dropped ${n} records` }
  return Buffer.from(JSON.stringify(notice) + '\n')
}
