import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { EarlyHandOver } from '../producer/early-hand-over.js'
import { CLOSED, EarlySpool } from '../producer/early-spool.js'
import { BatchSender } from '../producer/sender.js'
import { createControl, EARLY_STATE_INDEX } from '../producer/sender-requests.js'
import { resolveProducerOptions, type ProducerOptions } from '../shared/options.js'
import { producerMade, spoolFileName } from '../shared/spool.js'
import { tempDir, waitFor } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'

/**
 * A sender whose early phase (producer/early-spool.ts) ends while its connection to the writer
 * is still being made: by a line in the ring (the logging thread ended the phase itself), or a
 * flush. The batches after the early ones are copied to the spool only when the writer counts as
 * away by `spoolAfterMs` (not connected that long after the start, or judged away), not for the
 * connection still in progress. Before, each was copied at once with the early segment handed
 * over, and the writer read every batch twice (test/fixtures/early-phase-ends.ts: 4 duplicates
 * of 4 batches, the writer up, with `spoolAfterMs: 0` too). In one process: the first batch is
 * sealed in the same turn as the sender is made, before any handshake can complete.
 */

const ID = Buffer.alloc(16, 0xab)
const line = (seq: number): string => `{"level":30,"w":0,"seq":${seq},"msg":"line"}\n`
const lines = (from: number, to: number): string => Array.from({ length: to - from }, (_, i) => line(from + i)).join('')

/** A sender with an early phase that logged `early` lines (in entries of 1 KiB): the logging thread's side, then the sender. */
function earlySender (opts: ProducerOptions, early: number): { sender: BatchSender, control: Int32Array, spoolDir: string } {
  const options = resolveProducerOptions({ connectTimeoutMs: 0, maxBatchBytes: 1024, ...opts })
  const spoolDir = options.spoolDir as string
  const control = createControl()
  const spool = new EarlySpool(control, { ...options, spoolDir }, ID, producerMade())
  for (let seq = 0; seq < early; seq++) expect(spool.append(line(seq))).toBe(true)
  const sender = new BatchSender(options, { producerId: ID, early: new EarlyHandOver(control, spoolDir, ID, () => spool.end()) })
  return { sender, control, spoolDir }
}

const segment = (n: number, suffix: string): string => spoolFileName(ID.toString('hex'), process.pid, n).replace(/\.spool\.tmp$/, suffix)

describe('the early phase ends before the sender is connected', () => {
  for (const spoolAfterMs of [0, 60_000]) {
    it(`the writer up (spoolAfterMs ${spoolAfterMs}): a line in the ring ends the phase, nothing is copied, the flush gets receipts and the writer reads each batch once`, async () => {
      const writer = await startWriterChild(tempDir())
      const { sender, spoolDir } = earlySender({ endpoint: writer.endpoint, spoolAfterMs }, 100)
      try {
        // The ring's first line: the sender takes the early batches, then seals its own (flush()
        // seals before it waits); its handshake cannot have completed within this turn.
        sender.writeBytes(Buffer.from(lines(100, 200)), 100)
        const flushed = sender.flush(30_000)
        flushed.catch(() => {}) // awaited below; rejected only when an assertion before ends the test
        expect(sender.stats).toMatchObject({ records: 200, spoolCopies: 0, spooled: 0 })
        expect(readdirSync(spoolDir), 'the early segment, not handed over; no segment of the sender\'s own').toEqual([segment(0, '.spool.tmp')])
        await flushed
        expect(sender.stats).toMatchObject({ receipted: sender.stats.batches - 1, spoolCopies: 0 })
        expect(readdirSync(spoolDir), 'the early segment is removed once receipted').toEqual([])
      } finally {
        sender.destroy()
      }
      expect(await writer.stop()).toMatchObject({ records: 200, duplicates: 0, spool: { files: 0 } })
    })
  }

  it('no writer within spoolAfterMs (100): the sender ends the phase, and what comes later is copied to the spool after the early segment', async () => {
    const dir = tempDir()
    const { sender, control, spoolDir } = earlySender({ endpoint: `ipc://${join(dir, 'w.sock')}`, spoolAfterMs: 100 }, 100)
    try {
      await waitFor(() => (Atomics.load(control, EARLY_STATE_INDEX) & CLOSED) !== 0, 10_000, () => 'the sender did not end the early phase')
      sender.writeBytes(Buffer.from(lines(100, 110)), 10)
      const flushed = sender.flush(30_000)
      flushed.catch(() => {})
      expect(sender.stats).toMatchObject({ records: 110, spoolCopies: 1 })
      expect(readdirSync(spoolDir).sort()).toEqual([segment(0, '.spool'), segment(1, '.spool.tmp')])
    } finally {
      sender.destroy()
    }
  })
})
