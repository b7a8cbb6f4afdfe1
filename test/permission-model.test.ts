import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { BIN, exitCode, fixture, spawnNode, tempDir } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'

/**
 * funnel() under Node's permission model without --allow-worker: no worker thread may start, and
 * `new Worker()` throws ERR_ACCESS_DENIED at once. Before, funnel() threw it: the application
 * ended at its first logger (exit 1). Now the destination says once why no sender thread runs, and
 * the logging thread writes the ring to the spool each time it fills and at the end, where the
 * writer takes it.
 */
const RECORDS = 20_000
const PERMISSION = ['--experimental-permission', '--allow-fs-read=*']
const SENDER_FAILED = /^LOGFUNNEL_ERR_SENDER_FAILED: the sender thread cannot start: Node's permission model .* Run node with --allow-worker/

describe('funnel() under the permission model, no --allow-worker', () => {
  it('does not throw; says why once; a flush rejects with that error; the 20,000 records (5 MB through a 1 MiB ring) reach the file through the spool, each once and in order; exit 0', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const child = spawnNode([...PERMISSION, `--allow-fs-write=${dir}`, fixture('permission-model'), writer.endpoint, writer.spoolDir, String(RECORDS)])
    const logged = await child.waitForLine((l) => l.event === 'logged', 60_000)
    expect(logged.flush).toBe('LOGFUNNEL_ERR_SENDER_FAILED')
    const { errors } = await child.waitForLine((l) => l.event === 'exit', 60_000)
    expect(await exitCode(child), child.describe()).toBe(0)
    expect(errors, child.describe()).toHaveLength(2)
    expect(errors[0]).toMatch(SENDER_FAILED)
    // The end of the work closes the destination: every record is in the spool, none lost.
    expect(errors[1]).toBe(`LOGFUNNEL_ERR_CLOSE_TIMEOUT: close: the sender thread ended or never started: ${RECORDS} records without a receipt went to the spool in ${writer.spoolDir}, where the writer ingests them`)
    expect(await writer.stop({ spoolTaken: true })).toMatchObject({ records: RECORDS })
    const report = await verifyFile(writer.file, { expectTotal: RECORDS })
    expect(report).toMatchObject({ ok: true, lines: RECORDS, gaps: 0, duplicates: 0, torn: 0, reordered: 0 })
  })

  it('with no spool it may write either (no --allow-fs-write): exit 0, the 20,000 records said lost with the reason', async () => {
    const dir = tempDir()
    const child = spawnNode([...PERMISSION, fixture('permission-model'), `ipc://${join(dir, 'w.sock')}`, join(dir, 'spool'), String(RECORDS)])
    const { errors } = await child.waitForLine((l) => l.event === 'exit', 60_000)
    expect(await exitCode(child), child.describe()).toBe(0)
    expect(errors, child.describe()).toHaveLength(2)
    expect(errors[0]).toMatch(SENDER_FAILED)
    expect(errors[1]).toBe(`LOGFUNNEL_ERR_CLOSE_TIMEOUT: close: the sender thread ended or never started: ${RECORDS} records without a receipt are lost (the spool could not be written: Access to this API has been restricted)`)
  })
})

describe('logfunnel writer under the permission model', () => {
  it('exit 2 at once with LOGFUNNEL_ERR_USAGE saying why (ZeroMQ\'s native addon, fsync); before, LOGFUNNEL_ERR_INTERNAL and then a crash with a stack trace', async () => {
    const dir = tempDir()
    const child = spawnNode([...PERMISSION, `--allow-fs-write=${dir}`, BIN, 'writer', '--file', join(dir, 'app.log'), '--endpoint', `ipc://${join(dir, 'w.sock')}`])
    expect(await exitCode(child), child.describe()).toBe(2)
    expect(child.stdout()).toBe('')
    const said = child.stderr().split('\n').filter((l) => l.startsWith('logfunnel:'))
    expect(said, child.describe()).toEqual([expect.stringMatching(/^logfunnel: LOGFUNNEL_ERR_USAGE: logfunnel writer cannot run under Node's permission model .* native addon/)])
    expect(child.stderr()).not.toMatch(/\n\s+at /)
  })
})

describe('a logger per request under the permission model, no --allow-worker', () => {
  const REQUESTS = 50
  const EACH = 20
  const TOTAL = REQUESTS * EACH
  // Every LOGFUNNEL_ line on stderr, Node's warning prefix cut off.
  const said = (stderr: string): string[] => stderr.split('\n').filter((l) => l.includes('LOGFUNNEL_ERR_')).map((l) => l.replace(/^\(node:\d+\) /, ''))
  const closeLine = (records: number, spoolDir: string): string => `[LOGFUNNEL_ERR_CLOSE_TIMEOUT] CloseTimeoutError: close: the sender thread ended or never started: ${records} records without a receipt went to the spool in ${spoolDir}, where the writer ingests them`

  it(`${REQUESTS} funnel() destinations, each closed: the refusal and the spooling said once, one line at the exit counts the other ${REQUESTS - 1}; before, two warnings per destination; the ${TOTAL} records reach the file once`, async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const child = spawnNode([...PERMISSION, `--allow-fs-write=${dir}`, fixture('logger-per-request-refused'), writer.endpoint, writer.spoolDir, String(REQUESTS), String(EACH), 'close'])
    expect(await exitCode(child), child.describe()).toBe(0)
    const lines = said(child.stderr())
    // The first close's report and the refusal (a warning of the next tick) come in either order.
    expect(lines.slice(0, 2).sort(), child.describe()).toEqual([
      closeLine(EACH, writer.spoolDir),
      expect.stringMatching(/^\[LOGFUNNEL_ERR_SENDER_FAILED\] LogfunnelError: the sender thread cannot start: Node's permission model /)
    ])
    expect(lines.slice(2), child.describe()).toEqual([
      `[LOGFUNNEL_ERR_SENDER_FAILED] LogfunnelError: ${REQUESTS - 1} more funnel() destinations could not start a sender thread either (said once per process); ${TOTAL - EACH} records without a receipt went to the spool from the logging thread, where the writer ingests them`
    ])
    expect(await writer.stop({ spoolTaken: true })).toMatchObject({ records: TOTAL })
    expect(await verifyFile(writer.file, { producerKey: 'req', seqKey: 'seq', expect: EACH, expectTotal: TOTAL })).toMatchObject({ ok: true, lines: TOTAL, gaps: 0, duplicates: 0, torn: 0, reordered: 0 })
  })

  // Dropped, not closed: the destinations share one sender (funnel.ts), so one refusal and one
  // spooling for all. The channel may be collected before the work's end closes it: then its
  // orphan's end says the same.
  it(`${REQUESTS} funnel() destinations, none closed, the process just ends: one refusal and one spooling of all ${TOTAL} records said; the ${TOTAL} records reach the file once`, async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const child = spawnNode([...PERMISSION, `--allow-fs-write=${dir}`, fixture('logger-per-request-refused'), writer.endpoint, writer.spoolDir, String(REQUESTS), String(EACH), 'end'])
    expect(await exitCode(child), child.describe()).toBe(0)
    expect(said(child.stderr()), child.describe()).toEqual([
      expect.stringMatching(/^\[LOGFUNNEL_ERR_SENDER_FAILED\] LogfunnelError: the sender thread cannot start: Node's permission model /),
      closeLine(TOTAL, writer.spoolDir)
    ])
    expect(await writer.stop({ spoolTaken: true })).toMatchObject({ records: TOTAL })
    expect(await verifyFile(writer.file, { producerKey: 'req', seqKey: 'seq', expect: EACH, expectTotal: TOTAL })).toMatchObject({ ok: true, lines: TOTAL, gaps: 0, duplicates: 0, torn: 0, reordered: 0 })
  })

  it(`${REQUESTS} funnel() destinations, then a SIGTERM with no handler of the application's: the refusal said once, the records spooled at the signal; the ${TOTAL} records reach the file once`, async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const child = spawnNode([...PERMISSION, `--allow-fs-write=${dir}`, fixture('logger-per-request-refused'), writer.endpoint, writer.spoolDir, String(REQUESTS), String(EACH), 'signal'])
    expect(await exitCode(child), child.describe()).toBe('SIGTERM')
    expect(said(child.stderr()), child.describe()).toEqual([
      expect.stringMatching(/^\[LOGFUNNEL_ERR_SENDER_FAILED\] LogfunnelError: the sender thread cannot start: Node's permission model /)
    ])
    expect(await writer.stop({ spoolTaken: true })).toMatchObject({ records: TOTAL })
    expect(await verifyFile(writer.file, { producerKey: 'req', seqKey: 'seq', expect: EACH, expectTotal: TOTAL })).toMatchObject({ ok: true, lines: TOTAL, gaps: 0, duplicates: 0, torn: 0, reordered: 0 })
  })

  it(`with no spool it may write: the refusal said once, the ${REQUESTS} closes reject (records lost), and one line counts the other ${REQUESTS - 1} destinations`, async () => {
    const dir = tempDir()
    const child = spawnNode([...PERMISSION, fixture('logger-per-request-refused'), `ipc://${join(dir, 'w.sock')}`, join(dir, 'spool'), String(REQUESTS), String(EACH), 'close'])
    expect(await exitCode(child), child.describe()).toBe(0)
    const rejected = child.stdout().split('\n').filter((l) => l.includes('close-rejected'))
    expect(rejected).toHaveLength(REQUESTS)
    expect(said(child.stderr()), child.describe()).toEqual([
      expect.stringMatching(/^\[LOGFUNNEL_ERR_SENDER_FAILED\] LogfunnelError: the sender thread cannot start: Node's permission model /),
      `[LOGFUNNEL_ERR_SENDER_FAILED] LogfunnelError: ${REQUESTS - 1} more funnel() destinations could not start a sender thread either (said once per process)`
    ])
  })
})
