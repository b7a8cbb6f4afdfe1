import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { exitCode, tempDir } from './helpers/children.js'
import { spawnProducer, startWriterChild } from './helpers/cluster.js'

const RECORDS = 10_000

/**
 * A writer started with a smaller `--max-frame-bytes` than its producers' (they batch up to
 * 256 KiB by default): it refuses their large batches over the network as `too_large`, says so
 * once per producer on stderr, and tells the producer (the too-large receipt flag). The
 * producer then batches within the writer's limit and moves what it holds to the spool, where
 * the writer takes batches of any size. Before, not one record reached the file: the batches
 * were refused, resent and refused until close(), and their spool entries were then set aside
 * as torn (`bad_header`); a transport whose script called `log.flush()` waited for ever.
 */
describe('a writer whose --max-frame-bytes is below the producers\' batches', () => {
  // 16 KiB: the batches are over 4x the limit, which the writer's reader reads past (it dropped the connection before).
  it.each([['funnel', 65536], ['transport', 65536], ['funnel', 16384]] as const)('%s, writer limit %d: every record reaches the file, the early ones through the spool, later ones over the network; close() succeeds; the writer names the mismatch once', async (mode, limit) => {
    const dir = tempDir()
    const writer = await startWriterChild(dir, ['--max-frame-bytes', String(limit), '--spool-poll-ms', '100'])
    // A burst of 2,000 records (~370 KB) every 200 ms: batches larger than 64 KiB until the producer hears.
    const producer = spawnProducer({ endpoint: writer.endpoint, records: RECORDS, mode, pauseEvery: 2000, pauseMs: 200 })
    const done = await producer.waitForLine((l) => l.event === 'done', 60_000)
    expect(await exitCode(producer), producer.describe()).toBe(0)
    expect(done.closeError, producer.describe()).toBe(null)
    expect(done.stats, producer.describe()).toMatchObject({ records: RECORDS, abandoned: 0, dropped: 0 })
    // The first burst goes through the spool; once the writer has it, batches go over the network.
    process.stdout.write(`${mode}, ${limit}: ${done.stats.spooledRecords} of ${RECORDS} records through the spool\n`)
    expect(done.stats.spooledRecords).toBeGreaterThan(0)
    expect(done.stats.spooledRecords).toBeLessThan(RECORDS)
    const summary = await writer.stop({ spoolTaken: true })
    expect(summary.records).toBe(RECORDS)
    expect(summary.spool.torn).toBe(0)
    expect(summary.rejected.too_large).toBeGreaterThan(0)
    const told = writer.child.stderr().split('\n').filter((l) => l.includes('"batch-too-large"')).map((l) => JSON.parse(l))
    expect(told).toHaveLength(1)
    expect(told[0]).toMatchObject({ maxFrameBytes: limit })
    expect(told[0].bytes).toBeGreaterThan(limit)
    expect(await verifyFile(writer.file)).toMatchObject({ lines: RECORDS, producers: 1, torn: 0, gaps: 0, duplicates: 0, reordered: 0 })
  })
}, 120_000)
