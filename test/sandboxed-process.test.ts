import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { exitCode, fixture, lineCount, spawnNode, tempDir, waitFor } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'

/**
 * jest runs each test file in a vm context whose `process` is a copy of the real one, and never
 * emits 'beforeExit' or 'exit' on it (test/fixtures/sandboxed-process.ts does the same): a
 * funnel() closed nothing when a jest worker's event loop emptied, nor spooled at its
 * `process.exit()` (`--forceExit`), and its records without a receipt were lost without a word:
 * 0 of 20,000 here; under jest 30, 3 files on 3 workers lost 0 to 15,396 of 120,000. Now its
 * hooks are on the real process (producer/host-process.ts), one listener for all the copies.
 */
describe.each(['itself', 'exit'] as const)('funnel() in a sandbox with a copy of process (jest), the process ending by %s', (end) => {
  it('every record reaches the file once, in order', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const records = 20_000
    const child = spawnNode(['--experimental-vm-modules', fixture('sandboxed-process'), JSON.stringify({ endpoint: writer.endpoint, records, copies: 1, end })])
    expect(await exitCode(child), child.describe()).toBe(0)
    // At the exit the rest goes to the spool, which the writer takes.
    await waitFor(() => lineCount(writer.file) >= records, 30_000, () => `${lineCount(writer.file)} of ${records} lines in the file`)
    const summary = await writer.stop()
    expect(summary).toMatchObject({ records, duplicates: 0 })
    expect(await verifyFile(writer.file, { producerKey: 'copy', expect: records })).toMatchObject({ lines: records, producers: 1, gaps: 0, duplicates: 0, reordered: 0, missing: 0, torn: 0 })
  })
}, 60_000)

describe('12 sandboxes one after another in one process (the test files of a jest worker)', () => {
  it('add one listener to the real process, not one each (no MaxListenersExceededWarning); every record reaches the file', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const copies = 12
    const records = 500
    const child = spawnNode(['--experimental-vm-modules', fixture('sandboxed-process'), JSON.stringify({ endpoint: writer.endpoint, records, copies, end: 'itself' })])
    expect(await exitCode(child), child.describe()).toBe(0)
    expect(child.stderr()).not.toMatch(/MaxListenersExceededWarning/)
    await waitFor(() => lineCount(writer.file) >= copies * records, 30_000, () => `${lineCount(writer.file)} of ${copies * records} lines in the file`)
    const summary = await writer.stop()
    expect(summary).toMatchObject({ records: copies * records, duplicates: 0 })
    expect(await verifyFile(writer.file, { producerKey: 'copy', expect: records })).toMatchObject({ lines: copies * records, producers: copies, gaps: 0, duplicates: 0, missing: 0, torn: 0 })
  })
}, 60_000)
