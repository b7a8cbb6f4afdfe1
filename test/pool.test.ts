import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { tempDir } from './helpers/children.js'
import { runProducers, startWriterChild } from './helpers/cluster.js'

const PRODUCERS = 8
/** About 0.85 MB per producer: several batches of maxBatchBytes (256 KiB) each, 40,000 lines interleaved. */
const RECORDS = 5000

describe.each(['funnel', 'transport'] as const)(`%s: ${PRODUCERS} producers x ${RECORDS} records`, (mode) => {
  it(`writes exactly ${PRODUCERS * RECORDS} lines, each producer's seq 0..${RECORDS - 1} in order`, async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const done = await runProducers(PRODUCERS, { endpoint: writer.endpoint, records: RECORDS, mode })
    for (const d of done) {
      expect(d.stats).toMatchObject({ records: RECORDS, dropped: 0, tooLarge: 0, heldBytes: 0 })
    }
    const summary = await writer.stop({ spoolTaken: true })
    expect(summary).toMatchObject({ records: PRODUCERS * RECORDS, producers: PRODUCERS, rejected: {} })
    // A batch reaches the writer twice only when its producer also copied it to the spool
    // (spoolAfterMs: the writer answered nothing for a while, as on a saturated machine).
    const copies = done.reduce((n, d) => n + (d.stats.spoolCopies as number), 0)
    expect(summary.duplicates).toBeLessThanOrEqual(copies)

    const report = await verifyFile(writer.file)
    expect(report).toMatchObject({
      lines: PRODUCERS * RECORDS, producers: PRODUCERS, torn: 0, gaps: 0, duplicates: 0, reordered: 0, unkeyed: 0, ok: true
    })
  })
}, 120_000)
