import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { tempDir } from './helpers/children.js'
import { runProducers, startWriterChild } from './helpers/cluster.js'
import { readFile } from 'node:fs/promises'

const PRODUCERS = 4
/** 16 of each size per producer: the 4 producers' lines still alternate in the file (84 switches from one to another in 192 lines in a run; 125 in 480 with 120 records each). */
const RECORDS = 48
const SIZES = [100, 64 * 1024, 900 * 1024]

describe('records of 100 B, 64 KiB and 900 KiB from 4 producers', () => {
  it('writes every record whole: no torn or interleaved line', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    await runProducers(PRODUCERS, { endpoint: writer.endpoint, records: RECORDS, sizes: SIZES })
    const summary = await writer.stop({ spoolTaken: true })
    expect(summary).toMatchObject({ records: PRODUCERS * RECORDS, rejected: {} })

    const report = await verifyFile(writer.file)
    expect(report).toMatchObject({ lines: PRODUCERS * RECORDS, producers: PRODUCERS, torn: 0, gaps: 0, duplicates: 0, reordered: 0, ok: true })

    // Each line must carry exactly the payload its seq was logged with.
    const text = await readFile(writer.file, 'utf8')
    const sizesSeen = new Map<number, number>()
    for (const line of text.split('\n').slice(0, -1)) {
      const record = JSON.parse(line) as { seq: number, payload: string }
      expect(record.payload.length).toBe(SIZES[record.seq % SIZES.length])
      sizesSeen.set(record.payload.length, (sizesSeen.get(record.payload.length) ?? 0) + 1)
    }
    expect(Object.fromEntries(sizesSeen)).toEqual(Object.fromEntries(SIZES.map((s) => [s, PRODUCERS * RECORDS / SIZES.length])))
  })
}, 120_000)
