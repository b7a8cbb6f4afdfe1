import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

import { verifyFile } from '../shared/verify.js'
import { type Child, exitCode, fixture, lineCount, ROOT, spawnNode, tempDir, waitFor } from './helpers/children.js'
import { startWriterChild, type ProducerParams } from './helpers/cluster.js'

/** SENDER_START_TIMEOUT_MS and DESTROY_TIMEOUT_MS (10 s and 5 s) in these children, shortened by their test hooks. */
const START_TIMEOUT_MS = 1000
const DESTROY_TIMEOUT_MS = 500

/**
 * An exception inside the sender (the test hook LOGFUNNEL_TEST_SENDER_FAULT) is reported with
 * LOGFUNNEL_ERR_SENDER_FAILED; the process goes on; what the failed sender held goes to the
 * spool, and a new sender sends the rest: every record reaches the file once.
 */
const RECORDS = 10_000

function producerWithFault (params: ProducerParams, fault: string, env: Record<string, string> = {}): ReturnType<typeof spawnNode> {
  return spawnNode([fixture('producer-logs'), JSON.stringify(params)], { env: { ...process.env, ...env, LOGFUNNEL_TEST_SENDER_FAULT: fault } })
}

async function expectAllOnce (file: string, stop: () => Promise<any>): Promise<void> {
  await waitFor(() => lineCount(file) >= RECORDS, 30_000, () => `${lineCount(file)} of ${RECORDS} lines in the file`)
  const summary = await stop()
  expect(summary.records).toBe(RECORDS)
  expect(await verifyFile(file)).toMatchObject({ lines: RECORDS, gaps: 0, duplicates: 0, torn: 0 })
}

describe.each(['funnel', 'transport'] as const)('%s: an exception inside the sender', (mode) => {
  it(`after its third batch: reported with a code, the process goes on and exits 0, all ${RECORDS} records arrive once`, async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const producer = producerWithFault({ endpoint: writer.endpoint, records: RECORDS, mode, pauseEvery: 500, pauseMs: 5, producer: { maxBatchBytes: 16 * 1024 } }, '3')
    expect(await exitCode(producer), producer.describe()).toBe(0)
    const done = await producer.waitForLine((l) => l.event === 'done')
    expect(done.closeError, producer.describe()).toBe(null)
    expect(producer.stderr()).toMatch(mode === 'funnel' ? /SenderFailedError: the sender failed \(test fault/ : /LOGFUNNEL_ERR_SENDER_FAILED: the sender failed \(test fault/)
    expect(done.stats.records).toBe(RECORDS)
    await expectAllOnce(writer.file, writer.stop)
  })
})

describe('transport: end() fails and thread-stream terminates the worker, sockets open', () => {
  it(`a script that logs and just ends exits 0; the ${RECORDS} records reach the file from the spool`, async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    writer.child.proc.kill('SIGSTOP')
    try {
      const producer = producerWithFault({ endpoint: writer.endpoint, records: RECORDS, mode: 'transport', endOnItsOwn: true }, 'end')
      expect(await exitCode(producer), producer.describe()).toBe(0)
    } finally {
      writer.child.proc.kill('SIGCONT')
    }
    await expectAllOnce(writer.file, writer.stop)
  })
})

describe('funnel(): the sender thread does not answer at exit', () => {
  it('process.exit() waits DESTROY_TIMEOUT_MS for it, then ends (exit 0) and says on stderr that records may be lost', async () => {
    const dir = tempDir()
    const producer = producerWithFault({ endpoint: `ipc://${join(dir, 'w.sock')}`, records: 1000, exitAtOnce: true }, 'stall-exit', { LOGFUNNEL_TEST_DESTROY_TIMEOUT_MS: String(DESTROY_TIMEOUT_MS) })
    expect(await exitCode(producer), producer.describe()).toBe(0)
    const said = producer.stderr().split('\n').filter((l) => l.includes('LOGFUNNEL_ERR_CLOSE_TIMEOUT'))
    expect(said).toEqual([`logfunnel: LOGFUNNEL_ERR_CLOSE_TIMEOUT: the process ended while the sender thread had not spooled within ${DESTROY_TIMEOUT_MS} ms: records without a receipt may be lost`])
  })
})

describe('funnel(): the wall clock steps back an hour', () => {
  it('while log calls wait for room with no writer: the wait still ends after blockTimeoutMs (a monotonic clock), the records go to the spool, all arrive once a writer starts', async () => {
    // The logging thread fills the sender (1 MiB) and its 64 KiB buffer at once, then waits;
    // the clock of every thread steps back 1 s after it started, in the middle of that wait.
    // Timed by the wall clock, the wait would last an hour and the process would not even end
    // on SIGTERM (its main thread waits in Atomics.wait).
    const dir = tempDir()
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    const params: ProducerParams = {
      endpoint,
      records: 5000,
      sizes: [1000],
      producer: { highWaterMark: 1024 * 1024, maxFrameBytes: 1024 * 1024, threadBufferBytes: 64 * 1024, blockTimeoutMs: 2000, closeTimeoutMs: 1000 }
    }
    // NODE_OPTIONS, not -r: the sender thread gets no execArgv of the application's.
    const clockBack = `--require ${join(ROOT, 'test', 'fixtures', 'clock-back.cjs')}`
    const child = spawnNode([fixture('producer-logs'), JSON.stringify(params)], { env: { ...process.env, NODE_OPTIONS: clockBack, CLOCK_BACK_AFTER_MS: '1000' } })
    const done = await child.waitForLine((l) => l.event === 'done', 20_000)
    expect(await exitCode(child), child.describe()).toBe(0)
    expect(done.stats).toMatchObject({ records: 5000, dropped: 0, spooledRecords: 5000 })
    const writer = await startWriterChild(dir)
    await waitFor(() => lineCount(writer.file) >= 5000, 20_000, () => `${lineCount(writer.file)} of 5000 lines in the file`)
    expect((await writer.stop()).records).toBe(5000)
    expect(await verifyFile(writer.file)).toMatchObject({ lines: 5000, gaps: 0, duplicates: 0, torn: 0, reordered: 0 })
  })
})

describe('funnel(): no sender thread could be made', () => {
  it('a script that logs 20,000 records synchronously into a 1 MiB ring does not hang: it stops waiting after SENDER_START_TIMEOUT_MS, ends by itself with exit 0, and reports the 20,000 lost with the thread\'s error', async () => {
    const code = `
      import pino from 'pino'
      import { funnel } from ${JSON.stringify(join(ROOT, 'dist', 'producer', 'index.js'))}
      const log = pino(funnel({ endpoint: 'ipc://${join(tempDir(), 'none.sock')}', threadBufferBytes: 1024 * 1024 }))
      for (let i = 0; i < 20000; i++) log.info({ i }, 'x'.repeat(200))
      console.log(JSON.stringify({ event: 'logged' }))`
    const started = performance.now()
    const child = spawnNode(['-r', join(ROOT, 'test', 'fixtures', 'no-sender-thread.cjs'), '--input-type=module', '-e', code], {
      cwd: ROOT, env: { ...process.env, LOGFUNNEL_TEST_SENDER_START_TIMEOUT_MS: String(START_TIMEOUT_MS) }
    })
    await child.waitForLine((l) => l.event === 'logged', START_TIMEOUT_MS + 20_000)
    // The log calls waited for the thread that never started, as long as they should.
    expect(performance.now() - started).toBeGreaterThanOrEqual(START_TIMEOUT_MS)
    expect(await exitCode(child, 20_000), child.describe()).toBe(0)
    expect(child.stderr(), child.describe()).toContain('no thread could be made')
    expect(child.stderr(), child.describe()).toMatch(/LOGFUNNEL_ERR_CLOSE_TIMEOUT.*20000 records without a receipt are lost \(the sender thread ended or never started\)/)
  })
})

describe('funnel(): no sender thread could be made, then process.exit()', () => {
  it('the records the ring holds are reported lost at the exit (before, nothing said of them)', async () => {
    const code = `
      import pino from 'pino'
      import { funnel } from ${JSON.stringify(join(ROOT, 'dist', 'producer', 'index.js'))}
      const log = pino(funnel({ endpoint: 'ipc://${join(tempDir(), 'none.sock')}' }))
      for (let i = 0; i < 1000; i++) log.info({ i }, 'x')
      await new Promise((resolve) => setTimeout(resolve, 200)) // the thread has failed; a new one is tried only after 1 s
      process.exit(0)`
    const child = spawnNode(['-r', join(ROOT, 'test', 'fixtures', 'no-sender-thread.cjs'), '--input-type=module', '-e', code], { cwd: ROOT })
    expect(await exitCode(child, 20_000), child.describe()).toBe(0)
    expect(child.stderr(), child.describe()).toContain('no thread could be made')
    const said = child.stderr().split('\n').filter((l) => l.includes('LOGFUNNEL_ERR_CLOSE_TIMEOUT'))
    expect(said, child.describe()).toEqual(['logfunnel: LOGFUNNEL_ERR_CLOSE_TIMEOUT: the process ended with 1000 records that no sender thread took (it could not start, or it ended): lost'])
  })
})

/** A script that logs 20,000 records through funnel() from a function, the logger dropped when it returns, then runs `after`. */
function dropsItsLogger (preload: string, after: string, env: Record<string, string> = {}): Child {
  const code = `
    import pino from 'pino'
    import { once } from 'node:events'
    import { funnel } from ${JSON.stringify(join(ROOT, 'dist', 'producer', 'index.js'))}
    function work () {
      const log = pino(funnel({ endpoint: 'ipc://${join(tempDir(), 'none.sock')}', threadBufferBytes: 1024 * 1024 }))
      for (let i = 0; i < 20000; i++) log.info({ i }, 'x'.repeat(200))
    }
    work()
    // A later turn: a WeakRef made in this one keeps its target until it ends.
    await new Promise((resolve) => setImmediate(resolve))
    ${after}`
  return spawnNode(['--expose-gc', '-r', join(ROOT, 'test', 'fixtures', preload), '--input-type=module', '-e', code], {
    cwd: ROOT, env: { ...process.env, ...env, LOGFUNNEL_TEST_SENDER_START_TIMEOUT_MS: String(START_TIMEOUT_MS) }
  })
}

/** The lines of `child`'s stderr that report the thread's failure or records lost. */
function reports (child: Child): string[] {
  return child.stderr().split('\n').filter((l) => l.includes('no thread could be made') || l.includes('LOGFUNNEL_ERR_CLOSE_TIMEOUT'))
}

describe('funnel(): the sender thread fails after its destination has become garbage (sender-thread-fails-late.cjs: a full collection right before the failure is heard)', () => {
  it('closed at the end of the work (close() past its deadline, waiting for the thread): the failure and the 20,000 records lost are reported, no thread started after the deadline', async () => {
    const child = dropsItsLogger('sender-thread-fails-late.cjs', '')
    expect(await exitCode(child, 20_000), child.describe()).toBe(0)
    // The failure rejects close()'s first flush too, after its deadline: no new thread for it.
    expect(child.stderr(), child.describe()).toContain('sender threads made: 1\n')
    const said = reports(child)
    expect(said, child.describe()).toHaveLength(2)
    expect(said[0], child.describe()).toContain('Error: no thread could be made')
    expect(said[1], child.describe()).toMatch(/LOGFUNNEL_ERR_CLOSE_TIMEOUT.*20000 records without a receipt are lost \(the sender thread ended or never started\)/)
  })

  it('collected before its end while the process goes on (a server): the failure and the 20,000 records lost are reported', async () => {
    // The interval stands for a server's handles; the script ends once the loss is reported.
    const child = dropsItsLogger('sender-thread-fails-late.cjs', `
      gc()
      const server = setInterval(() => {}, 60_000)
      for (;;) if ((await once(process, 'warning'))[0].code === 'LOGFUNNEL_ERR_CLOSE_TIMEOUT') break
      clearInterval(server)`)
    expect(await exitCode(child, 20_000), child.describe()).toBe(0)
    const said = reports(child)
    expect(said, child.describe()).toHaveLength(2)
    expect(said[0], child.describe()).toContain('Error: no thread could be made')
    expect(said[1], child.describe()).toMatch(/LOGFUNNEL_ERR_CLOSE_TIMEOUT.*20000 records without a receipt are lost \(the sender thread ended or never started\)/)
  })
})

describe('funnel(): a logger dropped and collected, its sender thread not answering at the process\'s end', () => {
  it('the exit waits DESTROY_TIMEOUT_MS for it, then says that records may be lost', async () => {
    const child = dropsItsLogger('sender-thread-never-answers.cjs', 'gc()', { LOGFUNNEL_TEST_DESTROY_TIMEOUT_MS: String(DESTROY_TIMEOUT_MS) })
    expect(await exitCode(child, 20_000), child.describe()).toBe(0)
    expect(reports(child), child.describe()).toEqual([`logfunnel: LOGFUNNEL_ERR_CLOSE_TIMEOUT: the process ended while the sender thread had not spooled within ${DESTROY_TIMEOUT_MS} ms: records without a receipt may be lost`])
  })
})

/**
 * A script (`--input-type=module -e`) under the preload that makes the first Worker fail: it logs
 * `records` through funnel() into a writer (`body` between the logging and close()), then prints
 * its stats. Asserts a clean exit, no record dropped, and every record in the file once.
 */
async function failedStartThenClose (records: number, body: string): Promise<Child> {
  const writer = await startWriterChild(tempDir())
  const code = `
    import pino from 'pino'
    import { once } from 'node:events'
    import { funnel } from ${JSON.stringify(join(ROOT, 'dist', 'producer', 'index.js'))}
    // spoolAfterMs 0: the new sender's records go over the network however long its start and
    // connection take on a loaded machine (with the default, a slow connect counts as the writer away)
    const dest = funnel({ endpoint: ${JSON.stringify(writer.endpoint)}, spoolAfterMs: 0 })
    const log = pino(dest)
    for (let seq = 0; seq < ${records}; seq++) log.info({ seq }, 'x')
    ${body}
    await dest.close()
    console.log(JSON.stringify({ event: 'closed', stats: dest.stats }))`
  const child = spawnNode(['-r', join(ROOT, 'test', 'fixtures', 'sender-thread-fails-once.cjs'), '--input-type=module', '-e', code], { cwd: ROOT })
  const closed = await child.waitForLine((l) => l.event === 'closed', 30_000)
  expect(await exitCode(child), child.describe()).toBe(0)
  expect(closed.stats).toMatchObject({ dropped: 0, abandoned: 0, spooledRecords: 0 })
  await writer.stop()
  expect(await verifyFile(writer.file)).toMatchObject({ lines: closed.stats.records, torn: 0, gaps: 0, duplicates: 0, reordered: 0 })
  return child
}

describe('funnel(): the sender thread fails to start once', () => {
  it('is started again a second later and sends what the ring kept and what came after: all 2,000 records arrive once, one report', async () => {
    const child = await failedStartThenClose(1000, `
      await new Promise((resolve) => setTimeout(resolve, 1500))  // past SENDER_RESTART_MS: the new thread runs
      for (let seq = 1000; seq < 2000; seq++) log.info({ seq }, 'after')`)
    expect(child.stdout()).toContain('"records":2000')
    expect(child.stderr().split('\n').filter((l) => l.includes('no thread could be made')), child.describe()).toHaveLength(1)
  })

  it('close() right after the failed start tries once more at once: all 1,000 records arrive', async () => {
    const child = await failedStartThenClose(1000, "await once(process, 'warning')  // the failed start, reported")
    expect(child.stdout()).toContain('"records":1000')
  })
})
