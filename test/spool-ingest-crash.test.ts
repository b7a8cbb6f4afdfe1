import { copyFileSync, mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
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
    await waitFor(() => readdirSync(spoolDir).length === 0, 30_000, () => `spool ${readdirSync(spoolDir).join(' ')}`)
    const summary = await second.stop()
    expect(summary.records).toBe(0)
    expect(summary.duplicates).toBeGreaterThan(0)
    expect(await verifyFile(first.file)).toMatchObject({ lines: RECORDS, producers: 1, gaps: 0, duplicates: 0, torn: 0 })
  })
}, 60_000)
