import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { PRODUCER_DEFAULTS } from '../shared/options.js'
import { verifyFile } from '../shared/verify.js'
import { exitCode, lineCount, fixture, spawnNode, tempDir, waitFor } from './helpers/children.js'
import { spawnProducer, startWriterChild } from './helpers/cluster.js'
import { unreachedLine } from './helpers/unreached.js'

/**
 * The shortest program people write: log, then nothing. No close(), no end(), no exit():
 * the process must end by itself (pino's own destinations let it), and lose nothing.
 */

const RECORDS = 5000
/** "Within about 1 s of its last log call" with a writer that is up. */
const EXIT_WRITER_UP_MS = 1500
/** With the writer down: `linger` for receipts, then the spool is written. */
const EXIT_WRITER_DOWN_MS = PRODUCER_DEFAULTS.linger + 1500

describe.each(['funnel', 'transport'] as const)('%s: a script that logs and just ends', (mode) => {
  it(`writer up: exits within ${EXIT_WRITER_UP_MS} ms of its last log call, all ${RECORDS} records in the file`, async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const producer = spawnProducer({ endpoint: writer.endpoint, records: RECORDS, mode, endOnItsOwn: true })
    await producer.waitForLine((l) => l.event === 'logged')
    expect(await exitCode(producer, EXIT_WRITER_UP_MS), producer.describe()).toBe(0)
    expect(producer.stderr(), producer.describe()).toBe('')
    await waitFor(() => lineCount(writer.file) >= RECORDS, 10_000, () => `${lineCount(writer.file)} lines in the file`)
    const summary = await writer.stop()
    // The transport spools at pino's exit-time end() what has no receipt yet: copies of it
    // that were already in flight are skipped by the writer (summary.duplicates), never written.
    expect(summary).toMatchObject({ records: RECORDS, producers: 1 })
    expect(await verifyFile(writer.file)).toMatchObject({ lines: RECORDS, producers: 1, gaps: 0, duplicates: 0, reordered: 0, torn: 0, ok: true })
  })

  it(`writer down: exits within ${EXIT_WRITER_DOWN_MS} ms, the records spooled and ingested when a writer comes`, async () => {
    const dir = tempDir()
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    const producer = spawnProducer({ endpoint, records: RECORDS, mode, endOnItsOwn: true })
    await producer.waitForLine((l) => l.event === 'logged')
    expect(await exitCode(producer, EXIT_WRITER_DOWN_MS), producer.describe()).toBe(0)
    // No writer was ever reached: said once, on stderr, with where the records are (before,
    // nothing was said, and a script run with a wrong endpoint never learned it).
    const said = producer.stderr().split('\n')
    expect(said, producer.describe()).toHaveLength(2)
    expect(said[0], producer.describe()).toMatch(unreachedLine(endpoint, RECORDS, join(dir, 'w.sock.spool')))
    expect(said[1]).toBe('')
    expect(readdirSync(join(dir, 'w.sock.spool')).filter((f) => f.endsWith('.spool')).length, producer.describe()).toBeGreaterThan(0)

    const writer = await startWriterChild(dir)
    await waitFor(() => lineCount(writer.file) >= RECORDS, 20_000, () => `${lineCount(writer.file)} lines in the file`)
    const summary = await writer.stop()
    expect(summary).toMatchObject({ records: RECORDS, duplicates: 0 })
    expect(await verifyFile(writer.file)).toMatchObject({ lines: RECORDS, producers: 1, gaps: 0, duplicates: 0, ok: true })
    expect(readdirSync(join(dir, 'w.sock.spool'))).toEqual([])
  })
}, 60_000)

it('funnel(), writer down, more than highWaterMark logged but less than it and the thread buffer: the records the sender had not taken yet are spooled too', async () => {
  // With the defaults (16 MiB held, 4 MiB of thread buffer, blockTimeoutMs 10 s) 18,000 records
  // of 1 KiB fill the sender to the mark and leave ~2 MiB in the buffer, while the log calls
  // never wait. The exit's close (linger) ends long before the 'block' wait would: what the
  // sender had not taken must reach the spool with the rest.
  const records = 18_000
  const dir = tempDir()
  const endpoint = `ipc://${join(dir, 'w.sock')}`
  const producer = spawnProducer({ endpoint, records, sizes: [1000], endOnItsOwn: true })
  await producer.waitForLine((l) => l.event === 'logged')
  expect(await exitCode(producer, EXIT_WRITER_DOWN_MS), producer.describe()).toBe(0)
  const writer = await startWriterChild(dir)
  await waitFor(() => lineCount(writer.file) >= records, 20_000, () => `${lineCount(writer.file)} of ${records} lines in the file`)
  expect((await writer.stop()).records).toBe(records)
  expect(await verifyFile(writer.file)).toMatchObject({ lines: records, producers: 1, gaps: 0, duplicates: 0, reordered: 0, torn: 0 })
}, 60_000)

it('funnel() with nothing logged: the process exits at once', async () => {
  const dir = tempDir()
  const producer = spawnProducer({ endpoint: `ipc://${join(dir, 'w.sock')}`, records: 0, endOnItsOwn: true })
  await producer.waitForLine((l) => l.event === 'logged')
  expect(await exitCode(producer, EXIT_WRITER_UP_MS), producer.describe()).toBe(0)
})

const WORKERS = 4
// A cluster worker ends by disconnecting (Node keeps it alive while connected to the primary).
describe.each(['cluster', 'fork'] as const)('a %s pool whose workers log and end without closing', (kind) => {
  it(`every worker and the parent end by themselves, ${WORKERS * RECORDS} records in the file`, async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const pool = spawnNode([fixture('pool-ends-by-itself'), JSON.stringify({ endpoint: writer.endpoint, kind, workers: WORKERS, records: RECORDS })])
    const done = await pool.waitForLine((l) => l.event === 'done', 20_000)
    expect(done.codes).toEqual(Array(WORKERS).fill(0))
    expect(await exitCode(pool, EXIT_WRITER_UP_MS), pool.describe()).toBe(0)
    await waitFor(() => lineCount(writer.file) >= WORKERS * RECORDS, 10_000, () => `${lineCount(writer.file)} lines in the file`)
    const summary = await writer.stop()
    // A worker whose receipts lag past `linger` (a loaded machine) spools the rest; copies
    // already in flight are then skipped by the writer (summary.duplicates), never written.
    expect(summary).toMatchObject({ records: WORKERS * RECORDS, producers: WORKERS })
    expect(await verifyFile(writer.file)).toMatchObject({ lines: WORKERS * RECORDS, producers: WORKERS, gaps: 0, duplicates: 0, torn: 0, ok: true })
  })
}, 60_000)

describe('funnel(): records logged in a process \'exit\' listener', () => {
  for (const how of ['end', 'exit'] as const) {
    it(`${how === 'end' ? 'a script that just ends' : 'process.exit()'}: they go to the spool after the others (before, lost without a word); all 105 in the file`, async () => {
      const dir = tempDir()
      const writer = await startWriterChild(dir)
      const producer = spawnNode([fixture('exit-listener-logs'), writer.endpoint, '100', how])
      expect(await exitCode(producer), producer.describe()).toBe(0)
      expect(producer.stderr(), producer.describe()).toBe('')
      await waitFor(() => lineCount(writer.file) >= 105, 15_000, () => `${lineCount(writer.file)} lines`)
      expect((await writer.stop()).records).toBe(105)
      const lines = readFileSync(writer.file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
      // In the order they were logged: the 100, then the 5 from the listener.
      expect(lines.map((l) => l.seq ?? l.msg)).toEqual([...Array.from({ length: 100 }, (_, i) => i), ...Array.from({ length: 5 }, () => 'in an exit listener')])
    })
  }

  it('after the application\'s own close(): dropped, as after close() anywhere, and said once on stderr at once', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const producer = spawnNode([fixture('exit-listener-logs'), writer.endpoint, '100', 'close'])
    expect(await exitCode(producer), producer.describe()).toBe(0)
    const said = producer.stderr().split('\n').filter((l) => l.includes('LOGFUNNEL_ERR_CLOSED'))
    expect(said, producer.describe()).toEqual([expect.stringContaining("a record was logged in a process 'exit' listener")])
    expect((await writer.stop()).records).toBe(100)
  })
})

