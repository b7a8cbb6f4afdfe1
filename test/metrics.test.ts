import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import * as zmq from 'zeromq'
import { resolveWriterOptions } from '../shared/options.js'
import { encodeHeader, REJECT_REASONS } from '../shared/protocol.js'
import { BIN, exitCode, fixture, spawnCommand, spawnNode, stderrEvents, tempDir, waitFor } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'

const sockets: zmq.Socket[] = []
const servers: Server[] = []
afterEach(async () => {
  for (const s of sockets.splice(0)) s.close()
  await Promise.all(servers.splice(0).map(async (s) => { s.close(); await once(s, 'close') }))
})

/** A TCP server on a free loopback port, kept open (to take the port) or closed (to free it). */
async function loopbackPort (keepOpen: boolean): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  if (keepOpen) servers.push(server)
  else { server.close(); await once(server, 'close') }
  return port
}

/** Scrapes the endpoint; returns `name{labels}` -> value. */
async function scrape (url: string): Promise<Map<string, number>> {
  const res = await fetch(url)
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
  const samples = new Map<string, number>()
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const at = line.lastIndexOf(' ')
    samples.set(line.slice(0, at), Number(line.slice(at + 1)))
  }
  return samples
}

const producerId = randomBytes(16)
const PLAIN = [Buffer.from('{"a":1}\n{"a":2}\n'), Buffer.from('{"a":3}\n{"a":4}\n'), Buffer.from('{"a":5}\n{"a":6}\n')]
const BATCH = [encodeHeader({ records: 3, seq: 0, base: 0, producerId }), Buffer.from('{"b":1}\n{"b":2}\n{"b":3}\n')]
const BAD = [[Buffer.alloc(0)], [Buffer.from('not a header'), Buffer.from('{"c":1}\n')]]
const BYTES = PLAIN.reduce((n, b) => n + b.length, 0) + (BATCH[1] as Buffer).length

describe('Prometheus metrics (--metrics-port)', () => {
  it('serves exact counters, gauges and the latency histogram on 127.0.0.1; closes at stop', async () => {
    const port = await loopbackPort(false)
    const dir = tempDir()
    const writer = await startWriterChild(dir, ['--metrics-port', String(port), '--fsync', 'off'])
    const ready = JSON.parse(writer.child.stdout().split('\n')[0] as string)
    const url = `http://127.0.0.1:${port}/metrics`
    expect(ready.metrics).toBe(url)

    const push = new zmq.Push({ linger: 1000 })
    sockets.push(push)
    push.connect(writer.endpoint)
    for (const frames of [...PLAIN, BATCH, BATCH, ...BAD]) await push.send(frames)

    let samples = new Map<string, number>()
    await waitFor(async () => {
      samples = await scrape(url)
      return samples.get('logfunnel_frames_total') === 7 && samples.get('logfunnel_write_latency_seconds_count') === 4
    }, 20_000, () => `last scrape: ${JSON.stringify(Object.fromEntries([...samples].filter(([k]) => k.startsWith('logfunnel'))))}`)

    const rejected = Object.fromEntries(REJECT_REASONS.map((r) => [`logfunnel_rejected_total{reason="${r}"}`, r === 'empty' || r === 'bad_header' ? 1 : 0]))
    expect(Object.fromEntries([...samples].filter(([k]) => k.startsWith('logfunnel_') && !k.includes('_bucket')))).toEqual({
      logfunnel_records_total: 9,
      logfunnel_bytes_total: BYTES,
      logfunnel_frames_total: 7,
      logfunnel_duplicates_total: 1,
      logfunnel_fsyncs_total: 0,
      ...rejected,
      logfunnel_queue_bytes: 0,
      logfunnel_connected_producers: 1,
      logfunnel_write_latency_seconds_sum: samples.get('logfunnel_write_latency_seconds_sum'),
      logfunnel_write_latency_seconds_count: 4
    })
    expect(samples.get('logfunnel_write_latency_seconds_bucket{le="+Inf"}')).toBe(4)
    expect(samples.get('process_resident_memory_bytes')).toBeGreaterThan(0)
    expect(samples.has('nodejs_eventloop_lag_seconds')).toBe(true)
    expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404)

    const summary = await writer.stop()
    expect(summary).toMatchObject({ records: 9, bytes: BYTES, batches: 4, duplicates: 1, rejected: { empty: 1, bad_header: 1 } })
    await expect(fetch(url)).rejects.toThrow()
  })

  // Its help said '(page cache, not fsync)'; the sink ends a batch's clock at its 'written'
  // event, which under fsync 'batch' follows the fsync (docs/operations.md says so too).
  it('the latency histogram\'s HELP says what its clock covers: the fsync under fsync batch, the page cache otherwise', async () => {
    const port = await loopbackPort(false)
    const writer = await startWriterChild(tempDir(), ['--metrics-port', String(port)])
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
    await writer.stop()
    expect(text.split('\n').filter((l) => l.startsWith('# HELP logfunnel_write_latency_seconds '))).toEqual([
      '# HELP logfunnel_write_latency_seconds Time from handing a batch to the file sink until its bytes count as written: fsynced under fsync batch (the default), in the page cache under fsync off or an interval'
    ])
  })

  it.runIf(existsSync('/usr/bin/prlimit'))('the counters never decrease: at a stop that gives the file up (prlimit --fsize: EFBIG), records and bytes keep what was given up; the queue gauge drops it', async () => {
    const port = await loopbackPort(false)
    const dir = tempDir()
    const file = join(dir, 'app.log')
    const url = `http://127.0.0.1:${port}/metrics`
    const child = spawnCommand('prlimit', ['--fsize=1000000', process.execPath, fixture('writer-paused-at-stop'), '--file', file, '--endpoint', `ipc://${join(dir, 'w.sock')}`,
      '--metrics-port', String(port), '--drain-timeout-ms', '500', '--drain-idle-ms', '100'], { stdio: ['pipe', 'pipe', 'pipe'] })
    await child.waitForLine((l) => l.event === 'ready')
    // 32 frames of 128 KiB: 4 MiB handed to a file that takes 1 MB.
    const push = new zmq.Push({ linger: 0 })
    sockets.push(push)
    push.connect(`ipc://${join(dir, 'w.sock')}`)
    const line = `{"a":"${'x'.repeat(1000)}"}\n`
    const frame = Buffer.from(line.repeat(Math.floor(128 * 1024 / line.length)))
    for (let i = 0; i < 32; i++) await push.send(frame)
    let before = new Map<string, number>()
    await waitFor(async () => {
      before = await scrape(url)
      return before.get('logfunnel_bytes_total') === 32 * frame.length
    }, 20_000, () => `last scrape: bytes_total ${before.get('logfunnel_bytes_total')}`)

    child.proc.kill('SIGTERM')
    await child.waitForLine((l) => l.event === 'sink-ended')
    const after = await scrape(url)
    const stopped = child.waitForLine((l) => l.event === 'stopped')
    child.proc.stdin?.write('go\n')
    const summary = await stopped
    expect(await exitCode(child), child.describe()).toBe(0)
    // The file was given up: the summary counts only what it holds.
    expect(summary.unwrittenBytes).toBeGreaterThan(0)
    expect(summary.bytes + summary.unwrittenBytes).toBe(32 * frame.length)
    expect(summary.records).toBeLessThan(before.get('logfunnel_records_total') as number)
    for (const name of ['logfunnel_records_total', 'logfunnel_bytes_total']) expect([name, after.get(name)]).toEqual([name, before.get(name)])
    // Given up, those bytes no longer wait for the file (before, they showed as queued until the stop ended).
    expect(after.get('logfunnel_queue_bytes')).toBe(0)
    expect(stderrEvents(child, 'stats').filter((line) => line.final === true).map((line) => line.queueBytes)).toEqual([0])
  })

  it('a metrics port in use: exit 1 with LOGFUNNEL_ERR_BIND, no ready line, and the endpoint stays free', async () => {
    const port = await loopbackPort(true)
    const dir = tempDir()
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    const child = spawnNode([BIN, 'writer', '--file', join(dir, 'a.log'), '--endpoint', endpoint, '--metrics-port', String(port)])
    expect(await exitCode(child), child.describe()).toBe(1)
    expect(child.stderr()).toMatch(new RegExp(`^logfunnel: LOGFUNNEL_ERR_BIND: cannot bind http://127\\.0\\.0\\.1:${port}/metrics: `))
    expect(child.stdout()).toBe('')

    // The failed writer released the endpoint's lock: a writer with a free port starts on it.
    const second = await startWriterChild(dir, ['--metrics-port', '0'])
    expect((await second.stop()).records).toBe(0)
  })

  it('a metrics host that is not a local address: exit 1 with LOGFUNNEL_ERR_BIND', async () => {
    const dir = tempDir()
    // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never assigned to a local interface.
    const child = spawnNode([BIN, 'writer', '--file', join(dir, 'a.log'), '--endpoint', `ipc://${join(dir, 'w.sock')}`,
      '--metrics-port', '9', '--metrics-host', '192.0.2.1'])
    expect(await exitCode(child), child.describe()).toBe(1)
    expect(child.stderr()).toMatch(/^logfunnel: LOGFUNNEL_ERR_BIND: /)
  })

  const bad: Array<[string, object, RegExp]> = [
    ['metricsPort above 65535', { metricsPort: 70_000 }, /metricsPort must be an integer between 0 and 65535/],
    ['a negative statsIntervalMs', { statsIntervalMs: -1 }, /statsIntervalMs must be 0 \(off\) or an integer between 100 ms and 1 day, got -1/],
    ['a statsIntervalMs below 100 ms (a flood of stderr)', { statsIntervalMs: 1 }, /statsIntervalMs must be 0 \(off\) or an integer between 100 ms and 1 day, got 1/],
    ['a statsIntervalMs above a day', { statsIntervalMs: 86_400_001 }, /statsIntervalMs must be 0 \(off\) or an integer between 100 ms and 1 day/],
    ['an empty metricsHost', { metricsHost: '' }, /metricsHost must be a non-empty/]
  ]
  for (const [what, opts, message] of bad) {
    it(`rejects ${what} with LOGFUNNEL_ERR_INVALID_OPTION`, () => {
      expect(() => resolveWriterOptions({ endpoint: 'ipc:///tmp/x/w.sock', ...opts }))
        .toThrow(expect.objectContaining({ code: 'LOGFUNNEL_ERR_INVALID_OPTION', message: expect.stringMatching(message) }))
    })
  }
}, 60_000)
