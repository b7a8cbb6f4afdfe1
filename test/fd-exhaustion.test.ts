import { spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { get, type IncomingMessage } from 'node:http'
import { connect, type Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { exitCode, lineCount, stderrEvents, tempDir, waitFor } from './helpers/children.js'
import { runProducers, spawnProducer, startWriterChild } from './helpers/cluster.js'
import { waitSpoolTaken } from './helpers/writer-cli.js'
import { freePortPair } from './helpers/ports.js'

const FD_LIMIT = 1024
/** More idle connections than the writer has descriptors (the 1,124). */
const CONNECTIONS = 1124
const fdCount = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length
/** One GET /metrics on a connection of its own; resolves the status. */
async function scrape (port: number): Promise<number> {
  const res = await new Promise<IncomingMessage>((resolve, reject) => get({ host: '127.0.0.1', port, path: '/metrics', agent: false, timeout: 5000 }, resolve).on('error', reject))
  res.resume()
  return res.statusCode ?? 0
}

describe('descriptor exhaustion through the metrics port (issue 13, point 5)', () => {
  it(`${CONNECTIONS} idle connections to the metrics port of a writer limited to ${FD_LIMIT} descriptors: it keeps few open, producers write, SIGHUP reopens, scrapes resume, it stops cleanly`, async () => {
    const dir = tempDir()
    const port = await freePortPair()
    const writer = await startWriterChild(dir, ['--metrics-port', String(port)])
    const pid = writer.child.proc.pid as number
    // The limit of a small container; node itself raises the soft limit to the hard one at start.
    expect(spawnSync('prlimit', ['--pid', String(pid), `--nofile=${FD_LIMIT}:${FD_LIMIT}`]).status).toBe(0)
    const before = fdCount(pid)

    const sockets: Socket[] = []
    try {
      for (let i = 0; i < CONNECTIONS; i++) {
        const socket = connect({ host: '127.0.0.1', port })
        socket.on('error', () => {})
        sockets.push(socket)
      }
      await Promise.all(sockets.map(async (s) => await Promise.race([once(s, 'connect'), once(s, 'close')])))
      // The writer closes what passes its connection cap at once: it never holds more than the cap.
      await waitFor(() => fdCount(pid) <= before + 32, 20_000, () => `${fdCount(pid)} descriptors open in the writer (${before} before)`)

      await runProducers(1, { endpoint: writer.endpoint, records: 500 })
      // What a close left in the spool goes to the file it is about to be renamed to.
      await waitSpoolTaken(writer.spoolDir)
      renameSync(writer.file, `${writer.file}.1`)
      writer.child.proc.kill('SIGHUP')
      await waitFor(() => existsSync(writer.file), 10_000, () => 'no new file after SIGHUP')
      await runProducers(1, { endpoint: writer.endpoint, records: 100 })
      await waitSpoolTaken(writer.spoolDir)
      expect(lineCount(`${writer.file}.1`) + lineCount(writer.file)).toBe(600)

      // The writer closes the idle connections after its headers timeout (5 s); then a scrape gets through.
      await waitFor(() => fdCount(pid) <= before + 1, 20_000, () => `${fdCount(pid)} descriptors open in the writer (${before} before)`)
      expect(await scrape(port)).toBe(200)
    } finally {
      for (const s of sockets) s.destroy()
    }
    const summary = await writer.stop()
    expect(summary).toMatchObject({ records: 600, rejected: {} })
  })
}, 90_000)

describe('the reserve descriptor (issue 13, point 5)', () => {
  it('with no descriptor left, SIGHUP still reopens the log file', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const pid = writer.child.proc.pid as number
    await runProducers(1, { endpoint: writer.endpoint, records: 100 })
    // What a close left in the spool is taken now, while the writer can still open it.
    await waitSpoolTaken(writer.spoolDir)
    // The limit at the lowest free descriptor number: every descriptor the writer may have is in
    // use (its reserve among them), so the next open fails with EMFILE.
    const used = new Set(readdirSync(`/proc/${pid}/fd`).map(Number))
    let lowestFree = 0
    while (used.has(lowestFree)) lowestFree++
    expect(spawnSync('prlimit', ['--pid', String(pid), `--nofile=${lowestFree}:`]).status).toBe(0)
    renameSync(writer.file, `${writer.file}.1`)
    writer.child.proc.kill('SIGHUP')
    await waitFor(() => existsSync(writer.file), 10_000, () => `no new file after SIGHUP; stderr: ${writer.child.stderr()}`)
    // The soft limit back up (the hard one was left alone): producers connect again.
    expect(spawnSync('prlimit', ['--pid', String(pid), `--nofile=${FD_LIMIT * 4}:`]).status).toBe(0)
    await runProducers(1, { endpoint: writer.endpoint, records: 100 })
    const summary = await writer.stop({ spoolTaken: true })
    expect(summary).toMatchObject({ records: 200, fileErrors: 0 })
    expect([lineCount(`${writer.file}.1`), lineCount(writer.file)]).toEqual([100, 100])
  })

  it('with no descriptor left, the state file is still saved while the writer runs', async () => {
    const dir = tempDir()
    const stateFile = join(dir, '.app.log.logfunnel-state.json')
    const writer = await startWriterChild(dir, ['--state-persist-ms', '200'])
    const pid = writer.child.proc.pid as number
    const go = join(dir, 'go')
    const producer = spawnProducer({ endpoint: writer.endpoint, records: 200, announceAfter: 100, waitForFile: go, holdUntilSignal: true })
    await producer.waitForLine((l) => l.event === 'logging')
    await waitFor(() => lineCount(writer.file) === 100 && existsSync(stateFile), 20_000, () => `${lineCount(writer.file)} lines, state file ${existsSync(stateFile) ? 'saved' : 'not saved'}`)
    const first = readFileSync(stateFile, 'utf8')
    const used = new Set(readdirSync(`/proc/${pid}/fd`).map(Number))
    let lowestFree = 0
    while (used.has(lowestFree)) lowestFree++
    expect(spawnSync('prlimit', ['--pid', String(pid), `--nofile=${lowestFree}:`]).status).toBe(0)
    writeFileSync(go, '')
    await waitFor(() => lineCount(writer.file) === 200, 20_000, () => `${lineCount(writer.file)} lines`)
    // Before, each save failed: {"event":"state-not-saved","message":"EMFILE: too many open files, ..."}.
    await waitFor(() => readFileSync(stateFile, 'utf8') !== first || stderrEvents(writer.child, 'state-not-saved').length > 0, 20_000, () => writer.child.stderr())
    expect(stderrEvents(writer.child, 'state-not-saved'), writer.child.stderr()).toEqual([])
    expect(spawnSync('prlimit', ['--pid', String(pid), `--nofile=${FD_LIMIT * 4}:`]).status).toBe(0)
    producer.proc.kill('SIGTERM')
    expect(await exitCode(producer), producer.describe()).toBe('SIGTERM')
    const summary = await writer.stop({ spoolTaken: true })
    expect(summary).toMatchObject({ records: 200, duplicates: 0 })
  })
}, 60_000)
