import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { exitCode, lineCount, tempDir, waitFor } from './helpers/children.js'
import { spawnProducer, startWriterChild } from './helpers/cluster.js'
import { readSpooled, writeSpool } from './helpers/spool-files.js'

/**
 * The writer takes a spool segment as soon as it lands (it watches the spool directory), not at
 * its next scan: with `spoolPollMs` at 10 s, every wait here ends within half of that.
 */
const POLL_MS = 10_000
const WITHIN_MS = POLL_MS / 2
const KiB = 1024

describe(`spool segments are taken as they land (spoolPollMs ${POLL_MS / 1000} s)`, () => {
  // 'there': the spool directory exists when the writer starts; 'made later': a producer makes it
  // after (the writer watches its parent meanwhile); 'made anew': it is removed and made again
  // while the writer runs.
  for (const dirCase of ['there', 'made later', 'made anew'] as const) {
    it(`a segment renamed into the spool directory (${dirCase}) is written within ${WITHIN_MS / 1000} s`, async () => {
      const RECORDS = 300
      const dir = tempDir()
      const spoolDir = join(dir, 'w.sock.spool')
      if (dirCase !== 'made later') mkdirSync(spoolDir, { mode: 0o700 })
      const writer = await startWriterChild(dir, ['--spool-poll-ms', String(POLL_MS)])
      let expected = 0
      if (dirCase === 'made anew') {
        writeSpool(spoolDir, { endpoint: writer.endpoint, records: RECORDS, tag: 'first' })
        expected += RECORDS
        await waitFor(() => lineCount(writer.file) >= expected && readSpooled(spoolDir).files === 0, WITHIN_MS, () => `${lineCount(writer.file)} of ${expected} lines`)
        rmSync(spoolDir, { recursive: true })
      }
      if (dirCase !== 'there') mkdirSync(spoolDir, { mode: 0o700 })
      writeSpool(spoolDir, { endpoint: writer.endpoint, records: RECORDS, tag: 'landed' })
      expected += RECORDS
      await waitFor(() => lineCount(writer.file) >= expected && readSpooled(spoolDir).files === 0, WITHIN_MS,
        () => `${lineCount(writer.file)} of ${expected} lines; ${readSpooled(spoolDir).files} spool files`)
      const summary = await writer.stop()
      expect(summary).toMatchObject({ records: expected, duplicates: 0, rejected: {}, spool: { files: expected / RECORDS, entries: expected / 10, torn: 0, rejected: 0 } })
      expect(await verifyFile(writer.file)).toMatchObject({ lines: expected, torn: 0, ok: true })
    })
  }

  it('a stop that lands while a scan ingests ends without waiting out spoolPollMs', async () => {
    const FILES = 40
    const RECORDS = 20_000
    const dir = tempDir()
    const spoolDir = join(dir, 'w.sock.spool')
    mkdirSync(spoolDir, { mode: 0o700 })
    // About a second of ingesting (see spool-stop.test.ts).
    for (let f = 0; f < FILES; f++) writeSpool(spoolDir, { endpoint: `ipc://${join(dir, 'w.sock')}`, records: RECORDS, perBatch: 100, tag: `f${f}-${'x'.repeat(40)}` })
    // A stop takes the spool files ready in its drain: a drain of 100 ms ends in the middle of them.
    const writer = await startWriterChild(dir, ['--spool-poll-ms', String(POLL_MS), '--drain-idle-ms', '1', '--drain-timeout-ms', '100'])
    await waitFor(() => lineCount(writer.file) > 0, WITHIN_MS, () => `no line yet; stderr: ${writer.child.stderr()}`)
    const started = performance.now()
    const summary = await writer.stop()
    const stopMs = performance.now() - started
    // The stop came while files were left (else this test proved nothing).
    expect(readSpooled(spoolDir).files, 'the stop came after the whole spool was ingested').toBeGreaterThan(0)
    expect(summary.records).toBe(lineCount(writer.file))
    // Before, the scan it stopped was followed by a whole poll interval's wait: 10 s.
    expect(stopMs).toBeLessThan(WITHIN_MS)
  })

  it(`onFull 'spool', a producer logging fast past a small highWaterMark while the writer is up: close() ends well within ${WITHIN_MS / 1000} s; every record once`, async () => {
    const RECORDS = 20_000
    const dir = tempDir()
    const writer = await startWriterChild(dir, ['--spool-poll-ms', String(POLL_MS)])
    const producer = spawnProducer({
      endpoint: writer.endpoint,
      records: RECORDS,
      sizes: [200],
      producer: { onFull: 'spool', highWaterMark: 256 * KiB, maxFrameBytes: 64 * KiB, maxBatchBytes: 16 * KiB, threadBufferBytes: 64 * KiB }
    })
    const done = await producer.waitForLine((l) => l.event === 'done', 60_000)
    expect(await exitCode(producer), producer.describe()).toBe(0)
    expect(done.closeError).toBe(null)
    expect(done.stats).toMatchObject({ records: RECORDS, dropped: 0, abandoned: 0, spoolErrors: 0, spoolCopies: 0 })
    // It did go through the spool: the writer took those segments as they landed. (Before, the
    // first waited for the writer's next scan, and close() with it: 9.9 s in a run.)
    expect(done.stats.spooled).toBeGreaterThan(0)
    expect(done.closeMs).toBeLessThan(WITHIN_MS)
    const summary = await writer.stop({ spoolTaken: true, spoolDeadlineMs: WITHIN_MS })
    expect(summary).toMatchObject({ records: RECORDS, rejected: {}, spool: { entries: done.stats.spooled, torn: 0, rejected: 0 } })
    expect(await verifyFile(writer.file)).toMatchObject({ lines: RECORDS, producers: 1, gaps: 0, duplicates: 0, reordered: 0, torn: 0, ok: true })
  })
}, 120_000)
