import { lstatSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import * as zmq from 'zeromq'
import { verifyFile } from '../shared/verify.js'
import { BIN, exitCode, fixture, ROOT, spawnCommand, spawnNode, tempDir, waitFor } from './helpers/children.js'
import { runProducers, spawnProducer } from './helpers/cluster.js'
import { startWriterWith, waitSpoolTaken } from './helpers/writer-cli.js'

/**
 * The writer that startWriter() spawns lives and dies with its parent; no writer dies of its
 * stdout or stderr going away; a bad path is reported and signals are always answered.
 */

const PYTHON = '/usr/bin/python3'
/** Adopts orphans, so the exit code of a writer whose parent died can be seen. */
const SUBREAPER = join(ROOT, 'test', 'fixtures', 'subreaper.py')
/** "A new startWriter() on the same endpoint is ready within 2 s." */
const RESTART_READY_MS = 2000
const PRODUCERS = 2
const FLUSH_EVERY = 500

/** The socket files in `dir`, sorted. */
const socketsIn = (dir: string): string[] => readdirSync(dir).filter((name) => lstatSync(join(dir, name)).isSocket()).sort()

const seqsOf = (file: string, pid: number): number[] => readFileSync(file, 'utf8').split('\n').filter(Boolean)
  .map((l) => JSON.parse(l) as { pid: number, seq: number }).filter((r) => r.pid === pid).map((r) => r.seq)

/** Starts the parent fixture below the subreaper; resolves its `started` line. */
async function startParent (dir: string, end: 'hang' | 'return' | 'exit'): Promise<{ parent: ReturnType<typeof spawnCommand>, started: any }> {
  const parent = spawnCommand(PYTHON, [SUBREAPER, process.execPath, fixture('parent-starts-writer'), dir, end])
  return { parent, started: await parent.waitForLine((l) => l.event === 'started') }
}

/**
 * A new writer on the endpoint is ready within RESTART_READY_MS; with no producers before, it
 * receives nothing. (Producers that logged until they were killed may have left copies in the
 * spool, which it takes: `producersBefore`.)
 */
async function expectEndpointFree (dir: string, endpoint: string, producersBefore = false): Promise<void> {
  // The compiled package: startWriter() spawns the compiled bin beside it.
  const { startWriter } = await import(join(ROOT, 'dist', 'producer', 'index.js')) as typeof import('../producer/index.js')
  const before = Date.now()
  const next = await startWriter({ file: join(dir, 'next.log'), endpoint, startTimeoutMs: RESTART_READY_MS })
  expect(Date.now() - before).toBeLessThan(RESTART_READY_MS)
  const summary = await next.stop()
  if (!producersBefore) expect(summary.records).toBe(0)
  else expect(summary.records === 0 || summary.spool.entries > 0, JSON.stringify(summary)).toBe(true)
}

describe('the writer startWriter() spawned', () => {
  it('stops by itself, exit 0, when its parent is killed with SIGKILL while producers log; every receipted record is in the file; the endpoint is free again', async () => {
    const dir = tempDir()
    const { parent, started } = await startParent(dir, 'hang')
    const producers = Array.from({ length: PRODUCERS }, () => spawnProducer({
      endpoint: started.endpoint, records: 1_000_000, flushEvery: FLUSH_EVERY, pauseEvery: 100, pauseMs: 1
    }))
    const through = producers.map(() => -1)
    producers.forEach((p, i) => p.proc.stdout?.on('data', () => {
      const last = p.stdout().trim().split('\n').reverse().find((l) => l.includes('"receipted"'))
      if (last !== undefined) through[i] = (JSON.parse(last) as { through: number }).through
    }))
    await waitFor(() => through.every((t) => t >= 2 * FLUSH_EVERY), 20_000, () => `receipted through ${through.join(', ')}`)
    process.kill(started.pid, 'SIGKILL')

    const reaped = await parent.waitForLine((l) => l.event === 'reaped' && l.pid === started.writerPid, 20_000)
    expect(reaped, parent.describe()).toMatchObject({ code: 0, signal: null })
    // Receipts the producers got before the writer exited: all of them, as it has exited.
    const receipted = [...through]
    for (const p of producers) p.proc.kill('SIGKILL')
    for (const [i, p] of producers.entries()) {
      const seqs = seqsOf(join(dir, 'app.log'), p.proc.pid as number).filter((s) => s <= (receipted[i] as number))
      expect(seqs, `producer ${i}`).toEqual(Array.from({ length: (receipted[i] as number) + 1 }, (_, k) => k))
    }
    await expectEndpointFree(dir, started.endpoint, true)
  })

  for (const [end, how] of [['return', 'simply returns'], ['exit', 'calls process.exit()']] as const) {
    it(`stops by itself, exit 0, when its parent ${how} without stop(); the endpoint is free again`, async () => {
      const dir = tempDir()
      const { parent, started } = await startParent(dir, end)
      const exits = await Promise.all([
        parent.waitForLine((l) => l.event === 'reaped' && l.pid === started.pid, 10_000),
        parent.waitForLine((l) => l.event === 'reaped' && l.pid === started.writerPid, 10_000)
      ])
      expect(exits, parent.describe()).toMatchObject([{ code: 0 }, { code: 0 }])
      await expectEndpointFree(dir, started.endpoint)
    })
  }
}, 60_000)

describe('startWriter().stop()', () => {
  /** startWriter() from the compiled package, its writer SIGKILLed after the test if still running. */
  async function startedWriter (dir: string): Promise<Awaited<ReturnType<typeof import('../producer/index.js').startWriter>>> {
    const { startWriter } = await import(join(ROOT, 'dist', 'producer', 'index.js')) as typeof import('../producer/index.js')
    const writer = await startWriter({ file: join(dir, 'app.log'), endpoint: `ipc://${join(dir, 'w.sock')}` })
    onTestFinished(() => { try { process.kill(writer.pid, 'SIGKILL') } catch {} })
    return writer
  }
  const gone = (pid: number): boolean => { try { process.kill(pid, 0); return false } catch { return true } }

  it('called twice at once and once more after: every call resolves with the same summary, the last one at once', async () => {
    const dir = tempDir()
    const writer = await startedWriter(dir)
    await runProducers(1, { endpoint: `ipc://${join(dir, 'w.sock')}`, records: 100 })
    await waitSpoolTaken(join(dir, 'w.sock.spool'))
    const [first, second] = await Promise.all([writer.stop(), writer.stop()])
    expect(first).toMatchObject({ event: 'stopped', records: 100 })
    expect(second).toEqual(first)
    const before = Date.now()
    // Before the fix, a stop() after a clean stop waited its whole deadline and rejected.
    expect(await writer.stop(10_000)).toEqual(first)
    expect(Date.now() - before).toBeLessThan(1000)
  })

  it('of a writer that was killed (SIGKILL) rejects at once with LOGFUNNEL_ERR_WRITER_STOP', async () => {
    const dir = tempDir()
    const writer = await startedWriter(dir)
    process.kill(writer.pid, 'SIGKILL')
    await waitFor(() => gone(writer.pid), 5000, () => `writer ${writer.pid} still exists`)
    const before = Date.now()
    await expect(writer.stop(10_000)).rejects.toMatchObject({ code: 'LOGFUNNEL_ERR_WRITER_STOP' })
    expect(Date.now() - before).toBeLessThan(1000)
    await expect(writer.stop(10_000)).rejects.toMatchObject({ code: 'LOGFUNNEL_ERR_WRITER_STOP' })
    expect(Date.now() - before).toBeLessThan(1000)
  })
}, 60_000)

describe('a writer whose stdout and stderr are closed early', () => {
  it('keeps writing the file and stops cleanly, exit 0', async () => {
    const dir = tempDir()
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    const writer = spawnNode([BIN, 'writer', '--file', join(dir, 'app.log'), '--endpoint', endpoint, '--stats-interval-ms', '100'])
    await writer.waitForLine((l) => l.event === 'ready')
    writer.proc.stdout?.destroy()
    writer.proc.stderr?.destroy()
    await runProducers(PRODUCERS, { endpoint, records: 5000 })
    writer.proc.kill('SIGTERM')
    expect(await exitCode(writer, 20_000)).toBe(0)
    expect(await verifyFile(join(dir, 'app.log'))).toMatchObject({ lines: PRODUCERS * 5000, producers: PRODUCERS, gaps: 0, duplicates: 0, ok: true })
  })
}, 60_000)

describe('a writer started with stdout and stderr closed (1>&- 2>&-)', () => {
  it('writes the file and stops on SIGTERM with exit 0', async () => {
    const dir = tempDir()
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    const file = join(dir, 'app.log')
    const shell = spawnCommand('/bin/sh', ['-c', 'exec "$0" "$@" 1>&- 2>&-', process.execPath, BIN, 'writer', '--file', file, '--endpoint', endpoint, '--stats-interval-ms', '100'])
    // No ready line can come: the producers wait for the writer, which answers once bound.
    await runProducers(PRODUCERS, { endpoint, records: 5000, producer: { connectTimeoutMs: 0 } })
    shell.proc.kill('SIGTERM')
    expect(await exitCode(shell, 20_000), shell.describe()).toBe(0)
    expect(await verifyFile(file)).toMatchObject({ lines: PRODUCERS * 5000, producers: PRODUCERS, gaps: 0, duplicates: 0, ok: true })
  })
}, 60_000)

describe('the writer command', () => {
  it('leaves no socket file behind after a clean stop, with its own reader and with CURVE (zeromq.js)', async () => {
    const server = zmq.curveKeyPair()
    const client = zmq.curveKeyPair()
    for (const curve of [false, true]) {
      const dir = tempDir()
      const sockDir = join(dir, 'run')
      const endpoint = `ipc://${join(sockDir, 'w.sock')}`
      const allowFile = join(dir, 'allowed')
      writeFileSync(allowFile, `${client.publicKey}\n`)
      const writer = await startWriterWith(['--file', join(dir, 'app.log'), '--endpoint', endpoint, ...(curve ? ['--curve-allowed-keys-file', allowFile] : [])],
        curve ? { LOGFUNNEL_CURVE_SECRET_KEY: server.secretKey } : undefined)
      // The .lock files: the endpoint locks seen from other network namespaces (lock-across-netns.test.ts).
      expect(socketsIn(sockDir)).toEqual(['w.sock', 'w.sock.lock', 'w.sock.receipts', 'w.sock.receipts.lock'])
      await runProducers(1, { endpoint, records: 100, producer: curve ? { curveServerKey: server.publicKey, curveSecretKey: client.secretKey } : {} })
      expect((await writer.stop({ spoolTaken: true })).records).toBe(100)
      expect(socketsIn(sockDir), `curve: ${String(curve)}`).toEqual([])
    }
  })

  it('SIGTERM while its start still runs (it already receives): every record that came in is written, the socket files are gone, exit 1', async () => {
    const dir = tempDir()
    const file = join(dir, 'app.log')
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    // Its start ends 60 s after it begins to receive (a loaded machine's producers must not
    // outlast it, or the SIGTERM lands after ready); before the fix the process never ended.
    const child = spawnNode([fixture('slow-start-writer'), '60000', '--file', file, '--endpoint', endpoint])
    await child.waitForLine((l) => l.event === 'receiving')
    await runProducers(2, { endpoint, records: 1000 })
    child.proc.kill('SIGTERM')
    expect(await exitCode(child, 20_000), child.describe()).toBe(1)
    expect(child.stderr()).toContain('logfunnel: LOGFUNNEL_ERR_WRITER_START: SIGTERM before the writer was ready')
    expect(child.stdout()).not.toContain('"ready"')
    expect(await verifyFile(file)).toMatchObject({ lines: 2000, torn: 0, gaps: 0, duplicates: 0, reordered: 0 })
    expect(socketsIn(dir)).toEqual([])
  })

  it.each(['SIGTERM', 'SIGINT', 'SIGHUP'] as const)('%s while its modules still load: exit 1 with LOGFUNNEL_ERR_WRITER_START for SIGTERM and SIGINT, and for SIGHUP it starts (no kill by the default action)', async (signal) => {
    const dir = tempDir()
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    const child = spawnNode([BIN, 'writer', '--file', join(dir, 'app.log'), '--endpoint', endpoint], { env: { ...process.env, LOGFUNNEL_TEST_LOAD_DELAY_MS: '300' } })
    await child.waitForLine((l) => l.event === 'loading')
    child.proc.kill(signal)
    if (signal === 'SIGHUP') {
      await child.waitForLine((l) => l.event === 'ready')
      child.proc.kill('SIGTERM')
      expect(await exitCode(child, 20_000), child.describe()).toBe(0)
      return
    }
    expect(await exitCode(child, 20_000), child.describe()).toBe(1)
    expect(child.stderr()).toContain(`logfunnel: LOGFUNNEL_ERR_WRITER_START: ${signal} before the writer was ready`)
    expect(socketsIn(dir)).toEqual([])
  })

  it('a log path no directory can be made for: exits 1 with LOGFUNNEL_ERR_FILE at once', async () => {
    const dir = tempDir()
    const child = spawnNode([BIN, 'writer', '--file', '/proc/nope/x.log', '--endpoint', `ipc://${join(dir, 'w.sock')}`])
    expect(await exitCode(child, 5000), child.describe()).toBe(1)
    expect(child.stderr()).toMatch(/^logfunnel: LOGFUNNEL_ERR_FILE: .*\/proc\/nope/)
  })

  it('--version prints the package version; -h and --help of every command exit 0', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
    const version = spawnNode([BIN, '--version'])
    expect(await exitCode(version)).toBe(0)
    expect(version.stdout()).toBe(`${pkg.version}\n`)
    // Side by side: each is a process start of its own.
    const helps = ['writer', 'verify', 'keygen', 'demo', 'bench'].flatMap((command) => ['-h', '--help'].map((flag) => ({ command, flag, child: spawnNode([BIN, command, flag]) })))
    for (const { command, flag, child } of helps) {
      expect(await exitCode(child), `${command} ${flag}`).toBe(0)
      expect(child.stdout()).toMatch(new RegExp(`^usage: logfunnel ${command}`))
      if (command === 'writer') {
        expect(child.stdout()).toMatch(/--file PATH /)
        expect(child.stdout()).toMatch(/--rotate-size SIZE /)
      }
    }
  })
}, 60_000)
