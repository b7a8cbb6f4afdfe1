import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { debuglog } from 'node:util'
import { MAX_FRAME_BYTES } from '../shared/options.js'
import { parseSpool, parseSpoolPreamble, spoolFileName } from '../shared/spool.js'
import { CLOSED, EARLY_SEGMENT } from './early-spool.js'
import type { SendWindow } from './send-window.js'
import { EARLY_ENTRIES_INDEX, EARLY_RECORDS_INDEX, EARLY_STATE_INDEX, EARLY_WRITTEN_INDEX, isLoggingGone } from './sender-requests.js'
import type { SenderStats } from './sender-stats.js'
import type { SpoolPolicy } from './spool-policy.js'
import type { WriterReach } from './writer-reach.js'

const debug = debuglog('logfunnel')

/**
 * The sender thread's side of the early phase (early-spool.ts): it ends the phase, reads the
 * segment back and takes its entries as the producer's first batches.
 */

/** How long the sender thread waits at most between checks of `written` (it is notified). */
const WRITTEN_RECHECK_MS = 10
/**
 * Test hook: LOGFUNNEL_TEST_EARLY_READ_FAULT=1 makes the sender thread's read-back fail, as it
 * does when the process is out of descriptors (EMFILE) (test/early-spool-ends.test.ts); unset in any real use.
 */
const READ_FAULT = process.env.LOGFUNNEL_TEST_EARLY_READ_FAULT === '1'

/**
 * How a sender starts: the producer id its logging thread made, the early phase that thread
 * began, and where its connections keep what they saw of the writer (each sender of a thread the same).
 */
export interface SenderStart {
  producerId?: Buffer
  /** When `producerId` was made (producerMade(); SpoolPreamble.made). */
  made?: string
  early?: EarlyHandOver
  reach?: WriterReach
}

/** What the early phase left for the sender: `count` batches of `records` in all in `path`, read back (`batches`) unless the file could not be read. */
export interface EarlyBatches {
  path: string
  count: number
  records: number
  batches: Array<{ payload: Buffer, records: number }> | undefined
}

/** Ends the phase and takes what it holds. */
export class EarlyHandOver {
  readonly #control: Int32Array
  readonly #path: string
  readonly #onClosed: () => void

  /** `onClosed`: tells the logging thread, so that it closes the segment (EarlySpool.end()). */
  constructor (control: Int32Array, spoolDir: string, producerId: Buffer, onClosed: () => void) {
    this.#control = control
    this.#path = join(spoolDir, spoolFileName(producerId.toString('hex'), process.pid, EARLY_SEGMENT))
    this.#onClosed = onClosed
  }

  /**
   * Sets CLOSED, waits for the line being appended (a write of a few microseconds), and reads
   * the segment's entries back, in order. `batches` is undefined, with `count` entries in the
   * file, when it could not be read (EMFILE): the sender then leaves them to the writer there.
   */
  close (): EarlyBatches {
    const c = this.#control
    Atomics.or(c, EARLY_STATE_INDEX, CLOSED)
    for (;;) {
      const written = Atomics.load(c, EARLY_WRITTEN_INDEX)
      if (written === (Atomics.load(c, EARLY_STATE_INDEX) & ~CLOSED)) break
      // Ended mid-append (a hosted sender outlives its logging thread: sender-host.ts): the entries
      // counted are whole, the one it was writing is not taken.
      if (isLoggingGone(c)) break
      Atomics.wait(c, EARLY_WRITTEN_INDEX, written, WRITTEN_RECHECK_MS)
    }
    const count = Atomics.load(c, EARLY_ENTRIES_INDEX)
    const records = Atomics.load(c, EARLY_RECORDS_INDEX)
    this.#onClosed()
    return { path: this.#path, count, records, batches: count === 0 ? [] : this.#readBack(count) }
  }

  #readBack (count: number): EarlyBatches['batches'] {
    let buf: Buffer
    try {
      if (READ_FAULT) throw new Error('test fault: the early segment is not read back')
      buf = readFileSync(this.#path)
    } catch {
      return undefined
    }
    const preamble = parseSpoolPreamble(buf)
    if (typeof preamble !== 'object') return undefined
    const { entries } = parseSpool(buf, MAX_FRAME_BYTES, preamble.bytes)
    if (entries.length < count || entries.slice(0, count).some((e, seq) => e.header.seq !== seq)) return undefined
    return entries.slice(0, count).map((e) => ({ payload: e.payload, records: e.header.records }))
  }
}

/**
 * Ends the early phase and takes its batches into a sender's `window` as its first ones:
 * read back, held and sent as any batch, their segment removed once receipted; unread, in the
 * spool only, left to the writer there (see WindowSpool.adoptEarly; `writerAway`: not connected
 * `spoolAfterMs` after the start). Returns how many it took.
 */
export function takeEarlyBatches (early: EarlyHandOver, window: SendWindow, spool: SpoolPolicy, stats: SenderStats, writerAway: boolean): number {
  const { path, count, records, batches } = early.close()
  if (count === 0) return 0
  for (let i = 0; i < count; i++) {
    const batch = batches?.[i]
    // Unread, the records of each are unknown: all counted with the first.
    if (batch !== undefined) window.seal(batch.payload, batch.records)
    else window.sealInSpool(i === 0 ? records : 0)
    stats.batches++
  }
  stats.records += records
  spool.adoptEarly(path, count - 1, batches === undefined, writerAway)
  debug('took %d batches of the early phase', count)
  return count
}
