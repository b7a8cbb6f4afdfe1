import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { MAX_FRAME_BYTES } from '../shared/options.js'
import { parseSpool, parseSpoolPreamble } from '../shared/spool.js'
import { verifyFile } from '../shared/verify.js'
import { exitCode, lineCount, tempDir, waitFor } from './helpers/children.js'
import { spawnProducer, startWriterChild } from './helpers/cluster.js'

const RECORDS = 10_000

/**
 * A writer killed after it wrote a spool file's records but before it removed the file: the
 * next writer finds the file again. It must know those batches are written (the state is saved
 * before the file is removed) and skip them. Before, the state was saved only every
 * `--state-persist-ms`, and the next writer wrote the whole file again: up to a 4 MiB segment
 * of duplicates per crash, past the documented bound (highWaterMark per producer).
 */
describe('a writer killed between writing a spool file and removing it', () => {
  it('the next writer skips the file\'s batches as written: no duplicate line', async () => {
    const dir = tempDir()
    const spoolDir = join(dir, 'w.sock.spool')
    const producer = spawnProducer({ endpoint: `ipc://${join(dir, 'w.sock')}`, records: RECORDS, exitAtOnce: true })
    expect(await exitCode(producer), producer.describe()).toBe(0)
    const files = readdirSync(spoolDir)
    expect(files.length).toBeGreaterThan(0)
    // The files as the killed writer would have left them.
    const kept = join(dir, 'kept')
    mkdirSync(kept)
    for (const name of files) copyFileSync(join(spoolDir, name), join(kept, name))

    // No periodic state save within the test: only the save that precedes each removal counts.
    const first = await startWriterChild(dir, ['--state-persist-ms', '600000'])
    await waitFor(() => readdirSync(spoolDir).length === 0 && lineCount(first.file) >= RECORDS, 30_000, () => `${lineCount(first.file)} lines, spool ${readdirSync(spoolDir).join(' ')}`)
    first.child.proc.kill('SIGKILL')
    await exitCode(first.child)
    for (const name of files) copyFileSync(join(kept, name), join(spoolDir, name))

    const second = await startWriterChild(dir, ['--state-persist-ms', '600000'])
    const summary = await second.stop({ spoolTaken: true })
    expect(readdirSync(spoolDir)).toEqual([])
    expect(summary.records).toBe(0)
    expect(summary.duplicates).toBeGreaterThan(0)
    expect(await verifyFile(first.file)).toMatchObject({ lines: RECORDS, producers: 1, gaps: 0, duplicates: 0, torn: 0 })
  })
}, 60_000)

/**
 * A spool whose entries skip ahead of what the writer has of their producer, which has ended
 * (here its first segment is gone; in the field, a writer killed before its state was saved
 * had written it): no one will send the batches before them, so they are written past the gap,
 * and the gap is reported. Before, they were refused as out_of_sequence and the file removed:
 * every record in it lost without a word.
 */
describe('spool entries that skip ahead, from a producer that has ended', () => {
  it('are written past the gap, which is reported (spool-gap)', async () => {
    const dir = tempDir()
    const spoolDir = join(dir, 'w.sock.spool')
    const producer = spawnProducer({ endpoint: `ipc://${join(dir, 'w.sock')}`, records: RECORDS, sizes: [1000], exitAtOnce: true })
    expect(await exitCode(producer), producer.describe()).toBe(0)
    const files = readdirSync(spoolDir).sort()
    expect(files.length).toBeGreaterThan(1)
    const recordsIn = (name: string): number => {
      const buf = readFileSync(join(spoolDir, name))
      const preamble = parseSpoolPreamble(buf)
      if (typeof preamble !== 'object') throw new Error(`${name}: no preamble`)
      return parseSpool(buf, MAX_FRAME_BYTES, preamble.bytes).entries.reduce((n, e) => n + e.header.records, 0)
    }
    const lost = recordsIn(files[0] as string)
    rmSync(join(spoolDir, files[0] as string))

    const writer = await startWriterChild(dir)
    const summary = await writer.stop({ spoolTaken: true })
    expect(readdirSync(spoolDir)).toEqual([])
    expect(summary.records).toBe(RECORDS - lost)
    expect(summary.rejected).toEqual({})
    const told = writer.child.stderr().split('\n').filter((l) => l.includes('"spool-gap"')).map((l) => JSON.parse(l))
    expect(told).toHaveLength(1)
    expect(told[0]).toMatchObject({ expected: 0, kept: false })
    expect(told[0].seq).toBeGreaterThan(0)
    expect(await verifyFile(writer.file)).toMatchObject({ lines: RECORDS - lost, producers: 1, gaps: lost, duplicates: 0, torn: 0, reordered: 0 })
  })
}, 60_000)
