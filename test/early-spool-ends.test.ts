import { existsSync, writeFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { exitCode, fixture, spawnCommand, spawnNode, tempDir, type Child } from './helpers/children.js'
import { startWriterChild, type WriterChild } from './helpers/cluster.js'
import { SPOOL_ENTRY_OVERHEAD } from '../shared/spool.js'
import { verifyFile } from '../shared/verify.js'

/**
 * The early phase of a worker thread's funnel() (producer/early-spool.ts) ended by the logging
 * thread itself, or its segment not read back by the sender thread: the lines before go to the
 * writer from the segment, the line that ended it and every later one through the ring, each
 * record once and in order, and no spool file is left (test/fixtures/early-phase-ends.ts).
 */

const line = (seq: number, msg = 'early'): number => Buffer.byteLength(`{"level":30,"w":0,"seq":${seq},"msg":"${msg}"}\n`)

interface Job { before: number, after: number, trigger: 'partial' | 'oversize' | 'none', options?: Record<string, unknown> }

async function run (writer: WriterChild, job: Job, wrap: { command?: string, args?: string[], env?: NodeJS.ProcessEnv } = {}): Promise<any> {
  const params = JSON.stringify({ endpoint: writer.endpoint, ...job })
  const child: Child = wrap.command === undefined
    ? spawnNode([fixture('early-phase-ends'), params], wrap.env === undefined ? {} : { env: { ...process.env, ...wrap.env } })
    : spawnCommand(wrap.command, [...(wrap.args ?? []), process.execPath, fixture('early-phase-ends'), params])
  const done = await child.waitForLine((l) => l.event === 'done', 30_000)
  expect(await exitCode(child), child.describe()).toBe(0)
  expect(done.flush, child.describe()).toBe(null)
  // The sender removes the early segment on the receipt, before the flush resolves; one handed
  // to the writer (not read back) is the writer's to remove (stop({ spoolTaken }) waits for
  // that). With the writer up (and spoolAfterMs 0) the sender copies nothing: a phase ended
  // while its connection was still being made had every later batch copied (segment 1) and the
  // early segment handed over, in every run; a listing before the writer took them found them.
  if (wrap.env?.LOGFUNNEL_TEST_EARLY_READ_FAULT === undefined) {
    expect(done.stats.spoolCopies, 'nothing copied to the spool').toBe(0)
    expect(done.spoolFiles, 'the early segment is removed once receipted').toEqual([])
  }
  return done
}

async function expectInFile (writer: WriterChild, records: number): Promise<void> {
  expect((await writer.stop({ spoolTaken: true })).records).toBe(records)
  expect(await verifyFile(writer.file, { producerKey: 'w', seqKey: 'seq', expect: records })).toMatchObject({
    lines: records, torn: 0, gaps: 0, duplicates: 0, reordered: 0, missing: 0, extra: 0, ok: true
  })
}

/** The segment ended at `bound` bytes: the next line did not fit (with an entry's header, had it started one). */
function expectEndedAt (segment: { records: number, bytes: number }, bound: number): void {
  expect(segment.bytes).toBeLessThanOrEqual(bound)
  expect(segment.bytes + line(segment.records) + SPOOL_ENTRY_OVERHEAD).toBeGreaterThan(bound)
}

describe('the logging thread ends the early phase itself', () => {
  it('a chunk without its newline (a write() of part of a line): the 100 lines before it in the segment, it and 100 more through the ring, 201 in the file', async () => {
    const writer = await startWriterChild(tempDir())
    const done = await run(writer, { before: 100, after: 100, trigger: 'partial' })
    expect(done.segment).toMatchObject({ records: 100 })
    expect(done.logged).toBe(201)
    await expectInFile(writer, 201)
  })

  it('a record over maxFrameBytes: the 100 lines before it in the segment, it dropped and counted, 100 more through the ring', async () => {
    const writer = await startWriterChild(tempDir())
    const done = await run(writer, { before: 100, after: 100, trigger: 'oversize', options: { maxFrameBytes: 4096 } })
    expect(done.segment).toMatchObject({ records: 100 })
    expect(done.stats).toMatchObject({ tooLarge: 1 })
    await expectInFile(writer, 200)
  })

  it('the phase\'s bound (highWaterMark 16 KiB): the segment stops within it, the rest of 1,000 lines and 100 more through the ring', async () => {
    const writer = await startWriterChild(tempDir())
    const done = await run(writer, { before: 1000, after: 100, trigger: 'none', options: { highWaterMark: 16 * 1024, maxFrameBytes: 4096 } })
    expectEndedAt(done.segment, 16 * 1024)
    expect(done.segment.records).toBeLessThan(1000)
    await expectInFile(writer, 1100)
  })

  it.runIf(existsSync('/usr/bin/prlimit'))('a write that fails mid-phase (file size limit 20,000 bytes, EFBIG): the part written is cut off, the segment holds whole lines, the rest through the ring', async () => {
    const writer = await startWriterChild(tempDir())
    const done = await run(writer, { before: 1000, after: 100, trigger: 'none' }, { command: 'prlimit', args: ['--fsize=20000'] })
    expectEndedAt(done.segment, 20_000)
    expect(done.segment.records).toBeLessThan(1000)
    await expectInFile(writer, 1100)
  })

  it('the first write fails (a file where the spool directory should be): no segment, all 600 lines through the ring', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    writeFileSync(writer.spoolDir, 'in the way\n')
    const done = await run(writer, { before: 500, after: 100, trigger: 'none' })
    expect(done.segment).toBe(null)
    expect((await writer.stop()).records).toBe(600)
  })
})

describe('the sender thread cannot read the segment back (EMFILE; LOGFUNNEL_TEST_EARLY_READ_FAULT)', () => {
  it('it hands the segment to the writer, which takes it: 500 early lines and 100 later ones once, in order, the records counted', async () => {
    const writer = await startWriterChild(tempDir())
    const done = await run(writer, { before: 500, after: 100, trigger: 'none' }, { env: { LOGFUNNEL_TEST_EARLY_READ_FAULT: '1' } })
    expect(done.segment).toMatchObject({ records: 500 })
    expect(done.stats).toMatchObject({ records: 600 })
    await expectInFile(writer, 600)
  })
})
