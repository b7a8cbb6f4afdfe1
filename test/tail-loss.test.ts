import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { tempDir } from './helpers/children.js'
import { runProducers, startWriterChild } from './helpers/cluster.js'

// The measured loss: libzmq drops a connection's unread tail when the writer's receive queue
// is full and the producer closes. A slow writer with a small receive queue and small batches
// keeps that queue full; receipts must still bring every record into the file. 25,000 records
// (143 batches of 32 KiB per producer, over half a second of the writer's 1 ms pauses) are
// logged in a fraction of that, so each producer closes with its batches queued, as with more.
const PRODUCERS = 4
const RECORDS = 25_000

describe('slow writer, producers close right after logging', () => {
  it(`${PRODUCERS} producers x ${RECORDS} records all arrive`, async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir, ['--receive-high-water-mark', '4'], undefined, 1)
    const done = await runProducers(PRODUCERS, {
      endpoint: writer.endpoint,
      records: RECORDS,
      producer: { maxBatchBytes: 32 * 1024, closeTimeoutMs: 120_000 }
    }, 240_000)
    for (const d of done) expect(d.stats).toMatchObject({ records: RECORDS, dropped: 0, heldBytes: 0 })
    const summary = await writer.stop({ spoolTaken: true })
    expect(summary.records).toBe(PRODUCERS * RECORDS)
    expect(summary.rejected).toEqual({})

    const report = await verifyFile(writer.file)
    expect(report).toMatchObject({ lines: PRODUCERS * RECORDS, producers: PRODUCERS, torn: 0, gaps: 0, duplicates: 0, reordered: 0, ok: true })
  })
}, 300_000)
