import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { exitCode, fixture, spawnNode, tempDir } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'
import { verifyFile } from '../shared/verify.js'

/**
 * funnel() destinations made in one thread with the same options share one sender (funnel.ts):
 * each keeps its own order and its own close; the sender ends with the last one's close.
 */
describe('two funnel() destinations with the same options', () => {
  const RECORDS = 1000

  it(`writer up: the first's close() waits for its receipts (all ${2 * RECORDS} lines in the file then) and leaves the other sending; its record after close() dropped and said to it alone; the last close() brings the sender's stats; ${3 * RECORDS} lines, each destination's in order`, async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const child = spawnNode([fixture('shared-destinations'), writer.endpoint, String(RECORDS), writer.file])
    expect(await exitCode(child), child.describe()).toBe(0)
    expect(await child.waitForLine((l) => l.event === 'a-closed')).toEqual({ event: 'a-closed', stats: false, writable: false, bWritable: true, lines: 2 * RECORDS })
    expect(await child.waitForLine((l) => l.event === 'done')).toEqual({
      event: 'done', aStats: true, bRecords: 3 * RECORDS, aClosedDrops: 1, bClosedDrops: 0, aErrors: ['LOGFUNNEL_ERR_CLOSED'], bErrors: []
    })
    expect(await writer.stop()).toMatchObject({ records: 3 * RECORDS, producers: 1 })
    expect(await verifyFile(writer.file, { producerKey: 'who', seqKey: 'seq' })).toMatchObject({ ok: true, lines: 3 * RECORDS, producers: 2, torn: 0, gaps: 0, duplicates: 0, reordered: 0 })
  })

  it(`no writer: the first's close() ends once its records are in the spool; the last one's close() says the writer was never reached, to its own listener; a writer started later takes all ${3 * RECORDS}, each destination's in order`, async () => {
    const dir = tempDir()
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    const child = spawnNode([fixture('shared-destinations'), endpoint, String(RECORDS)])
    expect(await exitCode(child), child.describe()).toBe(0)
    expect(await child.waitForLine((l) => l.event === 'a-closed')).toEqual({ event: 'a-closed', stats: false, writable: false, bWritable: true, lines: -1 })
    expect(await child.waitForLine((l) => l.event === 'done')).toEqual({
      event: 'done', aStats: true, bRecords: 3 * RECORDS, aClosedDrops: 1, bClosedDrops: 0, aErrors: ['LOGFUNNEL_ERR_CLOSED'], bErrors: ['LOGFUNNEL_ERR_CONNECT']
    })
    const writer = await startWriterChild(dir)
    expect(await writer.stop({ spoolTaken: true })).toMatchObject({ records: 3 * RECORDS })
    expect(await verifyFile(writer.file, { producerKey: 'who', seqKey: 'seq' })).toMatchObject({ ok: true, lines: 3 * RECORDS, producers: 2, torn: 0, gaps: 0, duplicates: 0, reordered: 0 })
  })
})
