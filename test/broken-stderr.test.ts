import { closeSync, openSync } from 'node:fs'
import { join } from 'node:path'
import type { StdioOptions } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { exitCode, fixture, lineCount, spawnNode, tempDir, waitFor, type Child } from './helpers/children.js'
import { startWriterChild, type ProducerParams } from './helpers/cluster.js'

/**
 * A producer whose stderr is broken: a pipe whose reader has exited (EPIPE), or /dev/full
 * (ENOSPC), as a daemon or a service started by a parent that went away has it. What logfunnel
 * says there (a writer never reached, a record over maxFrameBytes) must not end the process
 * with a code of its own: the same program without logfunnel ends with 0. Before, funnel() did:
 * its sender thread's stdio was piped into process.stderr, and Node re-emits a write error of
 * a pipe's destination that has no other 'error' listener, so the first warning printed there
 * ended the process with 1; and its own lines at the end (LOGFUNNEL_ERR_CONNECT) were written
 * with process.stderr.write(), whose EPIPE came back as an unhandled 'error' event.
 */

const RECORDS = 1000

type Broken = 'dead pipe' | '/dev/full'

/** A producer-logs fixture whose stderr is `broken`; stdout stays a pipe (its `done` line). */
function spawnBroken (params: ProducerParams, broken: Broken): Child {
  if (broken === 'dead pipe') {
    const child = spawnNode([fixture('producer-logs'), JSON.stringify(params)])
    // The only reader of the child's stderr goes away before the child has started.
    child.proc.stderr?.destroy()
    return child
  }
  const full = openSync('/dev/full', 'w')
  try {
    const stdio: StdioOptions = ['ignore', 'pipe', full]
    return spawnNode([fixture('producer-logs'), JSON.stringify(params)], { stdio })
  } finally {
    closeSync(full)
  }
}

describe.each<Broken>(['dead pipe', '/dev/full'])('funnel() with stderr a %s', (broken) => {
  it(`no writer, the program ends on its own: exit 0, its ${RECORDS} records in the spool, a writer started later writes each once`, async () => {
    const dir = tempDir()
    const producer = spawnBroken({ endpoint: `ipc://${join(dir, 'w.sock')}`, records: RECORDS, endOnItsOwn: true }, broken)
    await producer.waitForLine((l) => l.event === 'logged', 30_000)
    const logged = performance.now()
    expect(await exitCode(producer), producer.describe()).toBe(0)
    // It ends after `linger` (1 s), not held by its sender thread (whose stdio, read by the
    // process, would keep it open until the thread's connectTimeoutMs, 10 s): a bound with room.
    expect(performance.now() - logged, producer.describe()).toBeLessThan(6000)

    const writer = await startWriterChild(dir)
    await waitFor(() => lineCount(writer.file) >= RECORDS, 15_000, () => `${lineCount(writer.file)} of ${RECORDS} lines in the file`)
    expect(await writer.stop({ spoolTaken: true })).toMatchObject({ records: RECORDS, duplicates: 0 })
    expect(await verifyFile(writer.file)).toMatchObject({ lines: RECORDS, producers: 1, gaps: 0, duplicates: 0, torn: 0, ok: true })
  })

  it('no writer, close(): it resolves, exit 0', async () => {
    const dir = tempDir()
    const producer = spawnBroken({ endpoint: `ipc://${join(dir, 'w.sock')}`, records: RECORDS }, broken)
    const done = await producer.waitForLine((l) => l.event === 'done', 30_000)
    expect(await exitCode(producer), producer.describe()).toBe(0)
    expect(done.closeError).toBe(null)
    expect(done.stats).toMatchObject({ records: RECORDS, spooledRecords: RECORDS, abandoned: 0, spoolErrors: 0 })
  })

  it('a writer, every fourth record over maxFrameBytes (a process warning): exit 0, the others in the file once', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const producer = spawnBroken({ endpoint: writer.endpoint, records: RECORDS, sizes: [100, 100, 100, 8000], producer: { maxFrameBytes: 4096, maxBatchBytes: 4096 } }, broken)
    const done = await producer.waitForLine((l) => l.event === 'done', 30_000)
    expect(await exitCode(producer), producer.describe()).toBe(0)
    expect(done.closeError).toBe(null)
    expect(done.stats).toMatchObject({ records: RECORDS * 3 / 4, tooLarge: RECORDS / 4 })
    expect(await writer.stop({ spoolTaken: true })).toMatchObject({ records: RECORDS * 3 / 4, duplicates: 0 })
    // The records over the limit took no seq of the fixture's own (it counts every call): gaps
    // would be those, so the count and the absence of torn lines and duplicates are the check.
    expect(await verifyFile(writer.file)).toMatchObject({ lines: RECORDS * 3 / 4, producers: 1, duplicates: 0, torn: 0 })
  })
})
