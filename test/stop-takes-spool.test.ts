import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { exitCode, fixture, lineCount, spawnNode, stderrEvents, tempDir } from './helpers/children.js'
import { startWriterChild, type WriterChild } from './helpers/cluster.js'
import { craftSpool, writeSpool } from './helpers/spool-files.js'
import { spoolFilesWaiting } from './helpers/writer-cli.js'

/** SIGTERMs the writer; its `stopped` summary and how long the stop took (it must exit 0). */
async function sigtermStop (writer: WriterChild): Promise<{ summary: any, stopMs: number }> {
  const stopped = writer.child.waitForLine((l) => l.event === 'stopped', 60_000)
  const started = performance.now()
  writer.child.proc.kill('SIGTERM')
  const summary = await stopped
  const stopMs = performance.now() - started
  expect(await exitCode(writer.child), writer.child.describe()).toBe(0)
  console.log(`stop took ${Math.round(stopMs)} ms`)
  return { summary, stopMs }
}

/**
 * A writer's stop takes the spool files ready at that moment (or landing in its drain) before it
 * stops receiving, within drainTimeoutMs. Before, its drain gave them drainIdleMs: a pool whose
 * workers' close() ended with the writer judged away, stopping its writer right after, found the
 * file short (the rest waited for the next writer). A live producer's `.spool.tmp` is not waited
 * for, nor a file that keeps failing past the drain's deadline.
 */
describe('a stop takes the spool files ready at that moment', () => {
  it('complete segments landing right before SIGTERM: the stopped summary and the file hold every record, the spool is empty', async () => {
    const dir = tempDir()
    const spoolDir = join(dir, 'w.sock.spool')
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    mkdirSync(spoolDir, { mode: 0o700 })
    const writer = await startWriterChild(dir)
    // 20 producers' segments of 20,000 records (200 entries of 100), ~26 MB, written aside and
    // renamed in together: more than the drainIdleMs (200 ms) a stop gave them before.
    const FILES = 20
    const RECORDS = 20_000
    const staging = join(dir, 'staging')
    mkdirSync(staging, { mode: 0o700 })
    const names = Array.from({ length: FILES }, (_, f) => writeSpool(staging, { endpoint, records: RECORDS, perBatch: 100, tag: `f${f}-${'x'.repeat(40)}` }))
    for (const name of names) renameSync(join(staging, name), join(spoolDir, name))
    const { summary } = await sigtermStop(writer)
    expect(readdirSync(spoolDir)).toEqual([])
    expect(summary).toMatchObject({ records: FILES * RECORDS, duplicates: 0, unwrittenBytes: 0 })
    expect(summary.spool).toEqual({ files: FILES, entries: FILES * RECORDS / 100, torn: 0, rejected: 0, foreign: 0, leftAtStop: 0 })
    expect(lineCount(writer.file)).toBe(FILES * RECORDS)
    expect(summary.bytes).toBe(statSync(writer.file).size)
    expect(await verifyFile(writer.file, { producerKey: 'tag', expect: RECORDS })).toMatchObject({
      lines: FILES * RECORDS, producers: FILES, torn: 0, gaps: 0, duplicates: 0, reordered: 0, missing: 0, extra: 0, ok: true
    })
  })

  it('the README pool pattern: startWriter(), 4 cluster workers log 150,000 records each and close while the writer is away (SIGSTOP), then writer.stop() right after SIGCONT: the file holds every record, the spool is empty', async () => {
    const dir = tempDir()
    const WORKERS = 4
    const RECORDS = 150_000
    const primary = spawnNode([fixture('cluster-pool'), dir, String(WORKERS), String(RECORDS), 'away'])
    const { pid } = await primary.waitForLine((l) => l.event === 'writer')
    try {
      const done = await primary.waitForLine((l) => l.event === 'done', 90_000)
      expect(await exitCode(primary), primary.describe()).toBe(0)
      console.log(`writer.stop() took ${String(done.stopMs)} ms`)
      expect(done.codes).toEqual(Array(WORKERS).fill(0))
      expect(spoolFilesWaiting(join(dir, 'w.sock.spool'))).toEqual([])
      expect(done.summary).toMatchObject({ records: WORKERS * RECORDS, duplicates: 0, producers: WORKERS, rejected: {}, unwrittenBytes: 0 })
      // Every batch came from the spool: the writer answered no worker before they ended.
      expect(done.summary.spool).toMatchObject({ entries: done.summary.batches, torn: 0, rejected: 0, foreign: 0, leftAtStop: 0 })
      expect(await verifyFile(join(dir, 'app.log'))).toMatchObject({ lines: WORKERS * RECORDS, producers: WORKERS, torn: 0, gaps: 0, duplicates: 0, reordered: 0, ok: true })
    } finally {
      // A writer left stopped by a failure would never end: resumed, it sees its parent gone and stops.
      try { process.kill(pid, 'SIGCONT') } catch {}
    }
  })

  it('a live producer writing a .spool.tmp is not waited for: with drainTimeoutMs 30 s the stop takes a complete segment and ends within a few seconds, the .spool.tmp left as it was', async () => {
    const dir = tempDir()
    const spoolDir = join(dir, 'w.sock.spool')
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    mkdirSync(spoolDir, { mode: 0o700 })
    const writer = await startWriterChild(dir, ['--drain-timeout-ms', '30000'])
    const holder = spawnNode([fixture('holds-spool-tmp'), spoolDir, endpoint, '1000'])
    const { name: tmpName } = await holder.waitForLine((l) => l.event === 'holding')
    const tmpBytes = readFileSync(join(spoolDir, tmpName))
    writeSpool(spoolDir, { endpoint, records: 1000, tag: 'complete' })
    const { summary, stopMs } = await sigtermStop(writer)
    expect(stopMs, 'the stop waited for the live producer').toBeLessThan(5000)
    expect(readdirSync(spoolDir)).toEqual([tmpName])
    expect(readFileSync(join(spoolDir, tmpName)).equals(tmpBytes)).toBe(true)
    // The complete segment is in the file; the live producer's segment is not, nor counted as left (it is still being written).
    expect(summary).toMatchObject({ records: 1000, duplicates: 0, unwrittenBytes: 0 })
    expect(summary.spool).toEqual({ files: 1, entries: 100, torn: 0, rejected: 0, foreign: 0, leftAtStop: 0 })
    expect(await verifyFile(writer.file, { producerKey: 'tag', expect: 1000 })).toMatchObject({ lines: 1000, producers: 1, ok: true })
  })

  it('a spool file that keeps failing (its torn tail cannot be set aside: <name>.torn is a directory) holds the stop no longer than drainTimeoutMs; it stays, counted in leftAtStop', async () => {
    const dir = tempDir()
    const spoolDir = join(dir, 'w.sock.spool')
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    mkdirSync(spoolDir, { mode: 0o700 })
    const writer = await startWriterChild(dir, ['--drain-timeout-ms', '1000'])
    // 3 entries of 10 records, the last cut short: 2 whole entries, then a tail that cannot go to .torn.
    const spool = craftSpool({ endpoint, records: 30, perBatch: 10 })
    const name = spool.name(0)
    mkdirSync(join(spoolDir, `${name}.torn`))
    writeFileSync(join(spoolDir, 'incoming'), spool.bytes.subarray(0, spool.bytes.length - 5), { mode: 0o600 })
    renameSync(join(spoolDir, 'incoming'), join(spoolDir, name))
    const { summary, stopMs } = await sigtermStop(writer)
    expect(stopMs, 'the stop waited past its drain').toBeLessThan(10_000)
    expect(stderrEvents(writer.child, 'spool-error').length).toBeGreaterThan(0)
    expect(readdirSync(spoolDir).sort()).toEqual([name, `${name}.torn`])
    expect(summary).toMatchObject({ records: 20, unwrittenBytes: 0 })
    expect(summary.spool).toMatchObject({ files: 0, torn: 0, rejected: 0, foreign: 0, leftAtStop: 1 })
    expect(await verifyFile(writer.file, { producerKey: 'tag' })).toMatchObject({ lines: 20, producers: 1, duplicates: 0, gaps: 0, ok: true })
  })
}, 120_000)
