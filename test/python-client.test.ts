import { readFileSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { exitCode, ROOT, spawnCommand, tempDir, type Child } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'
import { haveProgram, PYTHON } from './helpers/programs.js'

const HAVE_PYZMQ = haveProgram('python3-zmq', PYTHON, ['-c', 'import zmq'])
const PYTHONPATH = join(ROOT, 'clients', 'python')
const PROCESSES = 4
const RECORDS = 20_000
const TOTAL = PROCESSES * RECORDS

function python (args: string[]): Child {
  return spawnCommand(PYTHON, args, { env: { ...process.env, PYTHONPATH } })
}

async function runToDone (child: Child, deadlineMs = 60_000): Promise<any> {
  const done = await child.waitForLine((l) => l.event === 'done', deadlineMs)
  expect(await exitCode(child), child.describe()).toBe(0)
  return done
}

describe.runIf(HAVE_PYZMQ)('Python client (clients/python)', () => {
  it(`a multiprocessing.Pool of ${PROCESSES} x ${RECORDS} records through LogfunnelHandler: every record once, in order`, async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const pool = python([join(ROOT, 'examples', 'python-pool', 'pool.py'), '--endpoint', writer.endpoint, '--processes', String(PROCESSES), '--records', String(RECORDS)])
    const done = await runToDone(pool)
    expect(new Set(done.pids).size).toBe(PROCESSES)
    const summary = await writer.stop({ spoolTaken: true })
    expect(summary).toMatchObject({ records: TOTAL, producers: PROCESSES, rejected: {} })
    const report = await verifyFile(writer.file, { expect: RECORDS, expectTotal: TOTAL })
    expect(report, report.examples.join('\n')).toMatchObject({ lines: TOTAL, producers: PROCESSES, torn: 0, gaps: 0, duplicates: 0, reordered: 0, missing: 0, extra: 0, ok: true })
  })

  it('LogfunnelHandler writes pino fields: level number, time in ms, pid, hostname, name, extra, err, msg', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const script = `import logging, logfunnel, os, sys, json
h = logfunnel.LogfunnelHandler(endpoint=sys.argv[1])
log = logging.getLogger('fields'); log.addHandler(h); log.setLevel(logging.DEBUG)
log.debug('d'); log.warning('user %s', 'ann', extra={'user': 42})
try:
    raise ValueError('bad value')
except ValueError:
    log.exception('failed')
h.close()
print(json.dumps({'event': 'done', 'pid': os.getpid()}), flush=True)`
    const done = await runToDone(python(['-c', script, writer.endpoint]))
    await writer.stop({ spoolTaken: true })
    const lines = readFileSync(writer.file, 'utf8').trim().split('\n').map((line) => JSON.parse(line))
    const base = { pid: done.pid, hostname: hostname(), name: 'fields' }
    expect(lines).toMatchObject([
      { ...base, level: 20, msg: 'd' },
      { ...base, level: 40, user: 42, msg: 'user ann' },
      { ...base, level: 50, msg: 'failed', err: { type: 'ValueError', message: 'bad value' } }
    ])
    expect(lines[2].err.stack).toContain('ValueError: bad value')
    for (const line of lines) expect(Math.abs(line.time - Date.now())).toBeLessThan(60_000)
  })

  it('the same pool with plain one-frame messages: whole lines, none twice, but the tail may be lost (the documented limit)', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const done = await runToDone(python([join(ROOT, 'test', 'fixtures', 'python-plain-pool.py'), writer.endpoint, String(PROCESSES), String(RECORDS)]))
    expect(done.sent).toBe(TOTAL)
    const summary = await writer.stop()
    const report = await verifyFile(writer.file, { expect: RECORDS })
    // What libzmq dropped at each close is not knowable in advance (1,504 of 80,000 in the
    // issue's run, 0 in some): only what must hold whatever the loss is asserted.
    console.info(`plain one-frame pool: ${report.lines} of ${TOTAL} lines arrived, ${report.missing} lost`)
    expect(report).toMatchObject({ producers: PROCESSES, torn: 0, gaps: 0, duplicates: 0, reordered: 0, extra: 0 })
    expect(report.lines + report.missing).toBe(TOTAL)
    expect(summary).toMatchObject({ records: report.lines, batches: report.lines, producers: 0, rejected: {} })
  })

  it('a writer restarted while a Python producer logs: the client resends, nothing lost or doubled', async () => {
    const dir = tempDir()
    const go = join(dir, 'go')
    // A short drain: what the first writer leaves unread in libzmq's queue is lost with it, and resent.
    const first = await startWriterChild(dir, ['--drain-timeout-ms', '500'])
    // Logs 2000 records, then keeps logging while the writer restarts (until the test creates
    // \`go\`), then 2000 more that only the second writer can take.
    const script = `import logging, logfunnel, os, sys, time, json
h = logfunnel.LogfunnelHandler(endpoint=sys.argv[1], seq_key='seq', receipt_timeout=0.5, close_timeout=30)
log = logging.getLogger('r'); log.addHandler(h); log.setLevel(logging.INFO)
n = 0
def burst(count):
    global n
    for _ in range(count):
        log.info('r %d', n); n += 1
burst(2000)
print('{"event":"half"}', flush=True)
while not os.path.exists(sys.argv[2]):
    burst(10); time.sleep(0.005)
burst(2000)
h.close()
print(json.dumps({'event': 'done', 'records': n}), flush=True)`
    const producer = python(['-c', script, first.endpoint, go])
    await producer.waitForLine((l) => l.event === 'half')
    const firstSummary = await first.stop()
    const second = await startWriterChild(dir)
    writeFileSync(go, '')
    const done = await runToDone(producer)
    const secondSummary = await second.stop({ spoolTaken: true })
    expect(secondSummary.records).toBeGreaterThanOrEqual(2000)
    expect(firstSummary.records + secondSummary.records).toBe(done.records)
    const report = await verifyFile(second.file, { expect: done.records })
    expect(report, report.examples.join('\n')).toMatchObject({ lines: done.records, producers: 1, torn: 0, gaps: 0, duplicates: 0, reordered: 0, missing: 0, ok: true })
  })
}, 120_000)
