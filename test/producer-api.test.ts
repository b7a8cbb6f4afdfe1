import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { exitCode, lineCount, ROOT, spawnNode, tempDir, waitFor } from './helpers/children.js'
import { runProducers, spawnProducer, startWriterChild } from './helpers/cluster.js'
import { unreachedLine } from './helpers/unreached.js'

describe('producer API', () => {
  for (const mode of ['funnel', 'transport'] as const) {
    it(`${mode}: a record over maxFrameBytes is rejected locally and counted; the others are written`, async () => {
      const dir = tempDir()
      const writer = await startWriterChild(dir)
      const [done] = await runProducers(1, { endpoint: writer.endpoint, records: 30, sizes: [100, 2 * 1024 * 1024, 100], mode })
      expect(done.stats).toMatchObject({ records: 20, tooLarge: 10 })
      const summary = await writer.stop({ spoolTaken: true })
      expect(summary).toMatchObject({ records: 20, rejected: {} })
      const report = await verifyFile(writer.file)
      // The rejected records are the seq gaps: 1, 4, 7, ...
      expect(report).toMatchObject({ lines: 20, torn: 0, gaps: 10, duplicates: 0, reordered: 0 })
    })
  }

  for (const mode of ['funnel', 'transport'] as const) {
    it(`${mode}: bytes larger than a batch (a 256 KiB ring slot, a 4 MiB transport chunk) go out as whole lines in full batches, a line larger than a batch alone`, async () => {
      const dir = tempDir()
      const writer = await startWriterChild(dir)
      const maxBatchBytes = 16 * 1024
      const [done] = await runProducers(1, {
        endpoint: writer.endpoint,
        records: 6000,
        sizes: [100, 3000, 20_000, 700],
        mode,
        producer: { maxBatchBytes, threadBufferBytes: 1024 * 1024 }
      })
      expect(done.stats).toMatchObject({ records: 6000, tooLarge: 0, dropped: 0 })
      const fileBytes = statSync(writer.file).size
      // Every 20 000-B line fills a batch of its own; the rest pack into batches of at most 16 KiB.
      expect(done.stats.batches).toBeGreaterThanOrEqual(1500 + Math.ceil((fileBytes - 1500 * 20_000) / maxBatchBytes))
      const summary = await writer.stop({ spoolTaken: true })
      expect(summary).toMatchObject({ records: 6000, batches: done.stats.batches, rejected: {} })
      expect(await verifyFile(writer.file)).toMatchObject({ lines: 6000, torn: 0, gaps: 0, duplicates: 0, reordered: 0 })
    })
  }

  it('a script run by `node --max-old-space-size=256 -r <preload> --input-type=module -e` (its sender thread starts, without the preload); records logged after close() (a request still in flight at shutdown): dropped, counted, reported once, the process goes on', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const code = `
      import pino from 'pino'
      import { funnel } from ${JSON.stringify(join(ROOT, 'dist', 'producer', 'index.js'))}
      const dest = funnel({ endpoint: ${JSON.stringify(writer.endpoint)} })
      const log = pino(dest)
      for (let i = 0; i < 100; i++) log.info({ i }, 'before close')
      await dest.close()
      for (let i = 0; i < 3; i++) log.info({ i }, 'late')
      setTimeout(() => console.log(JSON.stringify({ event: 'after', closedDrops: dest.closedDrops })), 10)`
    const child = spawnNode(['--max-old-space-size=256', '-r', join(ROOT, 'test', 'fixtures', 'preload-count.cjs'), '--input-type=module', '-e', code], { cwd: ROOT })
    const after = await child.waitForLine((l) => l.event === 'after')
    expect(await exitCode(child), child.describe()).toBe(0)
    expect(after.closedDrops).toBe(3)
    expect(child.stdout().split('\n').filter((l) => l.startsWith('preload ran'))).toEqual(['preload ran in the main thread'])
    expect(child.stderr().split('\n').filter((l) => l.includes('LOGFUNNEL_ERR_CLOSED')), child.describe()).toHaveLength(1)
    await writer.stop({ spoolTaken: true })
    expect(await verifyFile(writer.file)).toMatchObject({ lines: 100, torn: 0 })
  })

  it('close() with no writer and spoolAfterMs 0 resolves after its deadline, the records in the spool, says so once (LOGFUNNEL_ERR_CONNECT: no writer ever reached, and how close() ended); the process exits 0', async () => {
    const dir = tempDir()
    // spoolAfterMs 0: nothing is copied to the spool while close() waits, so it waits its deadline
    // (with copies it ends once they are all there: test/close-writer-away.test.ts).
    const producer = spawnProducer({ endpoint: `ipc://${join(dir, 'w.sock')}`, records: 100, closeDeadlineMs: 500, producer: { spoolAfterMs: 0 } })
    const done = await producer.waitForLine((l) => l.event === 'done', 30_000)
    // Before, it rejected: an application awaiting close() in its shutdown ended with an error.
    expect(done.closeError).toBe(null)
    expect(done.stats).toMatchObject({ spooledRecords: 100, abandoned: 0, spoolCopies: 0 })
    expect(await exitCode(producer, 30_000)).toBe(0)
    // One line (no 'error' listener) that says why, where the records went and how close() ended;
    // before, a LOGFUNNEL_ERR_CLOSE_TIMEOUT warning followed it.
    const said = producer.stderr().split('\n').filter((l) => l.includes('LOGFUNNEL_ERR_'))
    expect(said, producer.describe()).toHaveLength(1)
    expect(said[0]).toMatch(unreachedLine(`ipc://${join(dir, 'w.sock')}`, 100, join(dir, 'w.sock.spool'), 10_000, 'close took longer than 500 ms'))
    const writer = await startWriterChild(dir)
    await waitFor(() => existsSync(writer.file) && lineCount(writer.file) === 100, 15_000, () => writer.child.describe())
    expect((await writer.stop()).records).toBe(100)
  })

  it("onFull 'drop' against a stopped writer: drops are counted and reported once in the file", async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    writer.child.proc.kill('SIGSTOP')
    const producer = spawnProducer({
      endpoint: writer.endpoint,
      records: 50_000,
      producer: { onFull: 'drop', highWaterMark: 1024 * 1024, maxFrameBytes: 64 * 1024, maxBatchBytes: 64 * 1024, threadBufferBytes: 64 * 1024 },
      announceAfter: 50_000,
      closeDeadlineMs: 60_000
    })
    await producer.waitForLine((l) => l.event === 'logging', 30_000)
    writer.child.proc.kill('SIGCONT')
    const done = await producer.waitForLine((l) => l.event === 'done', 60_000)
    expect(done.closeError).toBe(null)
    const { dropped, records } = done.stats
    expect(dropped).toBeGreaterThan(0)
    expect(records + dropped).toBe(50_000)

    const lines = (): string[] => readFileSync(writer.file, 'utf8').split('\n').filter(Boolean)
    await waitFor(() => lines().length === records + 1, 10_000, () => `${lines().length} lines, expected ${records + 1}`)
    const notices = lines().map((l) => JSON.parse(l)).filter((r) => r.logfunnelDropped !== undefined)
    expect(notices).toHaveLength(1)
    expect(notices[0]).toMatchObject({ level: 40, logfunnelDropped: dropped, msg: `logfunnel dropped ${dropped} records` })
    const seqs = lines().map((l) => JSON.parse(l).seq).filter((seq) => seq !== undefined)
    expect(new Set(seqs).size).toBe(records)
    const report = await verifyFile(writer.file)
    expect(report).toMatchObject({ lines: records + 1, unkeyed: 1, torn: 0, duplicates: 0, reordered: 0 })
    // Missing sequence numbers inside the range plus those after it are exactly the drops.
    expect(report.gaps + (49_999 - Math.max(...seqs))).toBe(dropped)
    await writer.stop()
  })
}, 90_000)
