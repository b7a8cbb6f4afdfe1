import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { exitCode, lineCount, tempDir, waitFor } from './helpers/children.js'
import { spawnProducer, startWriterChild } from './helpers/cluster.js'
import { unreachedLine } from './helpers/unreached.js'

/**
 * funnel()'s close() while no writer answers: once every record without a receipt is in the
 * spool (copied there by the `spoolAfterMs` rule), waiting out the deadline would only hold the
 * application's shutdown up. With a writer that answers, close() still waits for its receipts.
 */

const RECORDS = 2000
/** Large, so that "well before the deadline" holds on a loaded machine too. */
const DEADLINE_MS = 20_000

function seqsIn (file: string): number[] {
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line).seq)
}

/**
 * onFull 'drop' sized so that the records kept are the first ones: lines of about 5.1 KB, three
 * to a 16 KiB ring slot (threadBufferBytes 64 KiB: 4 slots), and the sender takes or drops a
 * slot whole; two slots fit under highWaterMark 32 KiB and what is left under it (about 2 KB)
 * is less than one line, so every later slot is dropped (no receipt ever frees room).
 */
const DROP_PRODUCER = { onFull: 'drop', maxFrameBytes: 32 * 1024, highWaterMark: 32 * 1024, threadBufferBytes: 64 * 1024 } as const
const DROP_RECORDS = 300

describe('close() and a writer that is away', () => {
  it(`no writer: close(${DEADLINE_MS}) resolves well before its deadline, every record in the spool, said once (one LOGFUNNEL_ERR_CONNECT line); a writer started later writes each once, in order`, async () => {
    const dir = tempDir()
    const producer = spawnProducer({ endpoint: `ipc://${join(dir, 'w.sock')}`, records: RECORDS, closeDeadlineMs: DEADLINE_MS })
    const done = await producer.waitForLine((l) => l.event === 'done', 2 * DEADLINE_MS)
    expect(await exitCode(producer), producer.describe()).toBe(0)
    // Before, it waited the whole deadline.
    expect(done.closeMs, producer.describe()).toBeLessThan(DEADLINE_MS / 3)
    expect(done.closeError).toBe(null)
    expect(done.stats).toMatchObject({ records: RECORDS, receipted: -1, spooledRecords: RECORDS, abandoned: 0, spoolErrors: 0 })
    // No writer ever reached: one report, LOGFUNNEL_ERR_CONNECT's line (no 'error' listener), saying
    // where the records are and how close() ended; before, a LOGFUNNEL_ERR_CLOSE_TIMEOUT warning followed it.
    const said = producer.stderr().split('\n').filter((l) => l.includes('LOGFUNNEL_ERR_'))
    expect(said, producer.describe()).toHaveLength(1)
    expect(said[0]).toMatch(unreachedLine(`ipc://${join(dir, 'w.sock')}`, RECORDS, join(dir, 'w.sock.spool'), 10_000, `close ended before its ${DEADLINE_MS} ms deadline: the writer does not answer`))

    const writer = await startWriterChild(dir)
    await waitFor(() => lineCount(writer.file) >= RECORDS, 15_000, () => `${lineCount(writer.file)} of ${RECORDS} lines in the file`)
    expect(await writer.stop()).toMatchObject({ records: RECORDS, duplicates: 0 })
    expect(await verifyFile(writer.file)).toMatchObject({ lines: RECORDS, producers: 1, gaps: 0, duplicates: 0, reordered: 0, torn: 0, ok: true })
    expect(seqsIn(writer.file)).toEqual(Array.from({ length: RECORDS }, (_v, i) => i))
  })

  it('the writer reached, then stopped (SIGSTOP), `await dest.close(); process.exit(0)` (the README\'s ending for a SIGTERM handler of its own): the report that the rest went to the spool is still said, once', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const half = RECORDS / 2
    const go = join(dir, 'go')
    // The first half receipted (flushed), then the writer stopped before the second half is logged.
    const producer = spawnProducer({ endpoint: writer.endpoint, records: RECORDS, flushEvery: half, announceAfter: half, waitForFile: go, closeDeadlineMs: DEADLINE_MS, exitAfterClose: true })
    await producer.waitForLine((l) => l.event === 'logging', 30_000)
    writer.child.proc.kill('SIGSTOP')
    writeFileSync(go, '')
    const done = await producer.waitForLine((l) => l.event === 'done', 2 * DEADLINE_MS)
    expect(await exitCode(producer), producer.describe()).toBe(0)
    expect(done.closeError).toBe(null)
    expect(done.stats).toMatchObject({ records: RECORDS, spooledRecords: half, abandoned: 0, spoolErrors: 0 })
    // Before, the warning was due on the next tick, and process.exit() came first: nothing was said.
    const said = producer.stderr().split('\n').filter((l) => l.includes('LOGFUNNEL_ERR_CLOSE_TIMEOUT'))
    expect(said, producer.describe()).toHaveLength(1)
    expect(said[0]).toContain(`the writer does not answer: ${half} records without a receipt went to the spool in ${join(dir, 'w.sock.spool')}`)

    writer.child.proc.kill('SIGCONT')
    expect(await writer.stop({ spoolTaken: true })).toMatchObject({ records: RECORDS })
    expect(await verifyFile(writer.file)).toMatchObject({ lines: RECORDS, producers: 1, gaps: 0, duplicates: 0, reordered: 0, torn: 0, ok: true })
  })

  it("onFull 'drop', the writer stopped (SIGSTOP) throughout: close() ends by spooling, the drops' notice record with the rest; the file holds the records kept and one notice counting every drop", async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    writer.child.proc.kill('SIGSTOP')
    const producer = spawnProducer({ endpoint: writer.endpoint, records: DROP_RECORDS, sizes: [5000], closeDeadlineMs: DEADLINE_MS, producer: DROP_PRODUCER })
    const done = await producer.waitForLine((l) => l.event === 'done', 2 * DEADLINE_MS)
    expect(await exitCode(producer), producer.describe()).toBe(0)
    expect(done.closeError).toBe(null)
    const { records, dropped } = done.stats
    expect(done.stats, producer.describe()).toMatchObject({ records: 6, dropped: DROP_RECORDS - 6, receipted: -1, abandoned: 0, spoolErrors: 0 })
    // It ended by the writer-away rule (no PING answered for spoolAfterMs), not at its deadline:
    // what had no receipt, the notice record included, went to the spool.
    expect(done.closeMs, producer.describe()).toBeLessThan(DEADLINE_MS / 3)
    expect(producer.stderr(), producer.describe()).toContain(`close ended before its ${DEADLINE_MS} ms deadline: the writer does not answer`)

    writer.child.proc.kill('SIGCONT')
    const summary = await writer.stop({ spoolTaken: true })
    expect(summary).toMatchObject({ records: records + 1, duplicates: 0 })
    const lines = readFileSync(writer.file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line))
    // Before, a close that ended with the writer away left the notice out: 6 lines, no notice.
    expect(lines.filter((l) => l.logfunnelDropped !== undefined), writer.child.describe()).toMatchObject([{ logfunnelDropped: dropped, msg: `logfunnel dropped ${dropped} records` }])
    expect(lines.filter((l) => l.logfunnelDropped === undefined).map((l) => l.seq)).toEqual(Array.from({ length: records }, (_v, i) => i))
    expect(await verifyFile(writer.file)).toMatchObject({ lines: records + 1, producers: 1, unkeyed: 1, gaps: 0, duplicates: 0, reordered: 0, torn: 0, ok: true })
  })

  it('a writer that answers but receipts slowly (it pauses after each batch): close() waits for the receipts, nothing goes to the spool', async () => {
    const SLOW_MS = 300
    const records = 100
    const dir = tempDir()
    const writer = await startWriterChild(dir, [], undefined, SLOW_MS)
    // Batches of 16 KiB: 100 records of 1 KB make several, each receipted a pause after the one before.
    const producer = spawnProducer({ endpoint: writer.endpoint, records, sizes: [1000], closeDeadlineMs: DEADLINE_MS, producer: { maxBatchBytes: 16 * 1024 } })
    const done = await producer.waitForLine((l) => l.event === 'done', 2 * DEADLINE_MS)
    expect(await exitCode(producer), producer.describe()).toBe(0)
    expect(done.closeError).toBe(null)
    expect(done.stats.batches, producer.describe()).toBeGreaterThan(1)
    // Longer than spoolAfterMs, with every PING answered: receipts, not the spool, ended the close.
    expect(done.closeMs).toBeGreaterThanOrEqual(SLOW_MS)
    expect(done.stats).toMatchObject({ records, receipted: done.stats.batches - 1, spooledRecords: 0, spoolCopies: 0, abandoned: 0 })
    expect(producer.stderr(), producer.describe()).not.toContain('LOGFUNNEL_ERR_CLOSE_TIMEOUT')
    expect(await writer.stop()).toMatchObject({ records, duplicates: 0 })
    expect(await verifyFile(writer.file)).toMatchObject({ lines: records, producers: 1, gaps: 0, duplicates: 0, reordered: 0, torn: 0, ok: true })
  })
}, 90_000)
