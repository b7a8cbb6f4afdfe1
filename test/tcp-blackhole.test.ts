import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { exitCode, lineCount, ROOT, spawnCommand, tempDir, waitFor } from './helpers/children.js'
import { spawnProducer } from './helpers/cluster.js'
import { freePortPair } from './helpers/ports.js'
import { PYTHON } from './helpers/programs.js'
import { TcpProxy } from './helpers/tcp-proxy.js'
import { startWriterWith } from './helpers/writer-cli.js'

const proxies: TcpProxy[] = []
afterEach(async () => {
  await Promise.all(proxies.splice(0).map(async (proxy) => await proxy.close()))
})

/** A writer on tcp behind a TcpProxy; `blackholed`: the file whose creation lets a producer log on. */
async function writerBehindProxy (): Promise<{ writer: Awaited<ReturnType<typeof startWriterWith>>, proxy: TcpProxy, blackholed: string, file: string }> {
  const dir = tempDir()
  const file = join(dir, 'app.log')
  const writerPort = await freePortPair()
  const writer = await startWriterWith(['--file', file, '--endpoint', `tcp://127.0.0.1:${writerPort}`])
  const proxy = await TcpProxy.start(await freePortPair(), writerPort)
  proxies.push(proxy)
  return { writer, proxy, blackholed: join(dir, 'blackholed'), file }
}

describe('a tcp connection the network drops without a word (a NAT or firewall entry gone)', () => {
  const cases = [
    { mode: 'funnel', dropped: 'both connections', offsets: [0, 1] },
    { mode: 'transport', dropped: 'both connections', offsets: [0, 1] },
    // The writer goes on answering heartbeats on the receipt connection.
    { mode: 'funnel', dropped: 'the data connection', offsets: [0] }
  ] as const
  for (const { mode, dropped, offsets } of cases) {
    it(`${mode}, ${dropped}: the producer dials again (no heartbeat answered for receiptTimeoutMs, or no receipt for two in a row) and resends: every record written once`, async () => {
      const { writer, proxy, blackholed, file } = await writerBehindProxy()
      const producer = spawnProducer({
        endpoint: `tcp://127.0.0.1:${proxy.port}`, records: 20_000, mode, announceAfter: 5000, waitForFile: blackholed,
        // No spool (tcp without spoolDir): what has no receipt lives only in the producer.
        closeDeadlineMs: 20_000, producer: { receiptTimeoutMs: 1000 }
      })
      await producer.waitForLine((l) => l.event === 'logging', 30_000)
      // Its two connections carry batches and receipts: the first 5,000 records are in the file.
      await waitFor(() => proxy.open === 2 && lineCount(file) === 5000, 30_000,
        () => `connections forwarded: ${proxy.open}, lines: ${lineCount(file)}\n${producer.describe()}`)
      proxy.blackhole([...offsets])
      // The other 15,000 records are logged into the black hole.
      writeFileSync(blackholed, '')
      const done = await producer.waitForLine((l) => l.event === 'done', 60_000)
      expect(await exitCode(producer), producer.describe()).toBe(0)
      // Before, close() ended at its deadline: LOGFUNNEL_ERR_CLOSE_TIMEOUT, every record logged after the black hole lost.
      expect(done.closeError ?? null, producer.describe()).toBe(null)
      if (mode === 'funnel') expect(done.stats, producer.describe()).toMatchObject({ records: 20_000, heldBytes: 0, abandoned: 0, dropped: 0 })
      // A second connection on each port black-holed: the dial after the black hole.
      for (const offset of offsets) expect(proxy.accepted[offset]).toBeGreaterThanOrEqual(2)
      expect(await writer.stop()).toMatchObject({ records: 20_000, producers: 1, rejected: {} })
      expect(await verifyFile(file)).toMatchObject({ lines: 20_000, producers: 1, duplicates: 0, gaps: 0, ok: true })
    })
  }
})

/**
 * The Python producer through the same black hole: 5,000 records, then (once `argv[2]` exists)
 * 15,000 more, then close(); prints {"event":"done","stats":...,"errors":N}. No spool (tcp).
 */
const PYTHON_PRODUCER = `import json, logging, os, sys, time
import logfunnel
errors = []
class Handler(logfunnel.LogfunnelHandler):
    def handleError(self, record):
        errors.append(str(sys.exc_info()[1]))
h = Handler(endpoint=sys.argv[1], seq_key='seq', receipt_timeout=1, close_timeout=20)
log = logging.getLogger('bh'); log.addHandler(h); log.setLevel(logging.INFO); log.propagate = False
for i in range(5000):
    log.info('before %d', i)
print(json.dumps({'event': 'logging'}), flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.01)
for i in range(15000):
    log.info('after %d', i)
h.close()
print(json.dumps({'event': 'done', 'stats': h.client.stats, 'errors': errors}), flush=True)
`

describe('a tcp connection the network drops without a word, a Python producer', () => {
  it('the data connection: after two receipt timeouts in a row the producer dials it again and resends: 20,000 of 20,000 written once (before: 86,480 of 100,000 lost)', async () => {
    const { writer, proxy, blackholed, file } = await writerBehindProxy()
    const producer = spawnCommand(PYTHON, ['-c', PYTHON_PRODUCER, `tcp://127.0.0.1:${proxy.port}`, blackholed],
      { env: { ...process.env, PYTHONPATH: join(ROOT, 'clients', 'python') } })
    await producer.waitForLine((l) => l.event === 'logging', 30_000)
    await waitFor(() => proxy.open === 2 && lineCount(file) === 5000, 30_000,
      () => `connections forwarded: ${proxy.open}, lines: ${lineCount(file)}\n${producer.describe()}`)
    // The receipt connection goes on (libzmq's heartbeat on it would re-dial a dead one by itself).
    proxy.blackhole([0])
    writeFileSync(blackholed, '')
    const done = await producer.waitForLine((l) => l.event === 'done', 90_000)
    expect(await exitCode(producer), producer.describe()).toBe(0)
    expect(done.errors, producer.describe()).toEqual([])
    expect(done.stats, producer.describe()).toMatchObject({ records: 20_000, confirmed: 20_000, dropped: 0 })
    expect(done.stats.redials, producer.describe()).toBeGreaterThanOrEqual(1)
    expect(proxy.accepted[0]).toBeGreaterThanOrEqual(2)
    expect(await writer.stop()).toMatchObject({ records: 20_000, producers: 1, rejected: {} })
    expect(await verifyFile(file)).toMatchObject({ lines: 20_000, producers: 1, duplicates: 0, gaps: 0, ok: true })
  })
})
