import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { BIN, exitCode, fixture, spawnCommand, spawnNode, tempDir } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'

/**
 * funnel() made in a process whose working directory was removed: Node's worker threads read it
 * as they start (Node 20), so no sender thread can start; the logging thread spools the records
 * at close(). The report of the failed start must say so in those terms. Before, it was Node's
 * own words as a warning, '[ENOENT] Error: ENOENT: no such file or directory, uv_cwd', which
 * names neither the sender thread nor what to do.
 */
describe('funnel() with the working directory removed', () => {
  it('reports once that its sender thread cannot start and why; close() puts the 100 records in the spool, which a writer takes; exit 0', async () => {
    const dir = tempDir()
    const child = spawnNode([fixture('cwd-removed'), `ipc://${join(dir, 'w.sock')}`, join(dir, 'gone')])
    const done = await child.waitForLine((l) => l.event === 'done', 30_000)
    expect(await exitCode(child), child.describe()).toBe(0)
    const startFailures = done.errors.filter((e: string) => e.startsWith('LOGFUNNEL_ERR_SENDER_FAILED'))
    expect(startFailures, child.describe()).toHaveLength(1)
    expect(startFailures[0]).toMatch(/^LOGFUNNEL_ERR_SENDER_FAILED: the sender thread cannot start: the working directory of the process was removed/)
    // The logging thread spools what no sender thread took (close()'s report, an 'error' event).
    expect(done.closeError).toBe(null)
    expect(done.errors.filter((e: string) => !e.startsWith('LOGFUNNEL_ERR_SENDER_FAILED'))).toEqual([expect.stringMatching(/^LOGFUNNEL_ERR_CLOSE_TIMEOUT: .*100 records without a receipt went to the spool/)])
    const writer = await startWriterChild(dir)
    expect(await writer.stop({ spoolTaken: true })).toMatchObject({ records: 100 })
    expect(await verifyFile(writer.file)).toMatchObject({ lines: 100, producers: 1, gaps: 0, duplicates: 0, torn: 0, ok: true })
  })
})

describe('a logger per request with the working directory removed', () => {
  it('20 funnel() destinations, each closed: the failed start and the spooling said once, one line at the exit counts the other 19 (before, two warnings per destination); the 200 records reach the file once', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const child = spawnNode([fixture('logger-per-request-refused'), writer.endpoint, writer.spoolDir, '20', '10', 'close', join(dir, 'gone')])
    expect(await exitCode(child), child.describe()).toBe(0)
    const said = child.stderr().split('\n').filter((l) => l.includes('LOGFUNNEL_ERR_')).map((l) => l.replace(/^\(node:\d+\) /, ''))
    // The failed start is said as the thread's 'error' comes, the first close's report as that close ends: either first.
    expect(said, child.describe()).toHaveLength(3)
    expect(said.filter((l) => /^\[LOGFUNNEL_ERR_SENDER_FAILED\] LogfunnelError: the sender thread cannot start: the working directory of the process was removed/.test(l))).toHaveLength(1)
    expect(said).toContain(`[LOGFUNNEL_ERR_CLOSE_TIMEOUT] CloseTimeoutError: close: the sender thread ended or never started: 10 records without a receipt went to the spool in ${writer.spoolDir}, where the writer ingests them`)
    expect(said[2]).toBe('[LOGFUNNEL_ERR_SENDER_FAILED] LogfunnelError: 19 more funnel() destinations could not start a sender thread either (said once per process); 190 records without a receipt went to the spool from the logging thread, where the writer ingests them')
    expect(await writer.stop({ spoolTaken: true })).toMatchObject({ records: 200 })
    expect(await verifyFile(writer.file, { producerKey: 'req', seqKey: 'seq', expect: 10, expectTotal: 200 })).toMatchObject({ ok: true, lines: 200, gaps: 0, duplicates: 0, torn: 0, reordered: 0 })
  })
})

describe('logfunnel writer with the working directory removed', () => {
  it('a relative --file: exit 1, LOGFUNNEL_ERR_FILE saying the working directory was removed (not LOGFUNNEL_ERR_INTERNAL, "a bug")', async () => {
    const dir = tempDir()
    const gone = join(dir, 'gone')
    const child = spawnCommand('/bin/sh', ['-c', 'mkdir "$1" && cd "$1" && rmdir "$1" && exec "$2" "$3" writer --file rel.log --endpoint "$4"',
      'sh', gone, process.execPath, BIN, `ipc://${join(dir, 'w.sock')}`])
    expect(await exitCode(child), child.describe()).toBe(1)
    expect(child.stderr(), child.describe()).toMatch(/^logfunnel: LOGFUNNEL_ERR_FILE: a relative path cannot be resolved: the working directory of the process was removed/)
    expect(child.stdout()).toBe('')
  })
})
