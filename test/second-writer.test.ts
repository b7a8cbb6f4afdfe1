import { join } from 'node:path'
import { existsSync, symlinkSync, writeFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { listLogSet } from '../shared/log-set.js'
import { verifyFile, verifyFiles } from '../shared/verify.js'
import { BIN, exitCode, spawnNode, tempDir } from './helpers/children.js'
import { runProducers, startWriterChild } from './helpers/cluster.js'
import { freePortPair } from './helpers/ports.js'
import { startWriterWith } from './helpers/writer-cli.js'

describe('writer CLI refusals', () => {
  it('a second writer on the same endpoint exits non-zero with LOGFUNNEL_ERR_ENDPOINT_IN_USE; the first keeps working', async () => {
    const dir = tempDir()
    const first = await startWriterChild(dir)
    const second = spawnNode([BIN, 'writer', '--file', join(dir, 'other.log'), '--endpoint', first.endpoint])
    expect(await exitCode(second)).toBe(1)
    expect(second.stderr()).toMatch(/^logfunnel: LOGFUNNEL_ERR_ENDPOINT_IN_USE: /)

    await runProducers(2, { endpoint: first.endpoint, records: 1000 })
    const summary = await first.stop({ spoolTaken: true })
    expect(summary.records).toBe(2000)
    expect(await verifyFile(first.file)).toMatchObject({ lines: 2000, ok: true })
  })

  it('a second writer on another endpoint but the same file exits 1 with LOGFUNNEL_ERR_FILE_IN_USE; the first keeps working; once it stops, a writer on that file starts', async () => {
    const dir = tempDir()
    const first = await startWriterChild(dir, ['--rotate-size', '64K'])
    const second = spawnNode([BIN, 'writer', '--file', first.file, '--endpoint', `ipc://${join(dir, 'other.sock')}`, '--rotate-size', '64K'])
    expect(await exitCode(second)).toBe(1)
    expect(second.stderr()).toMatch(/^logfunnel: LOGFUNNEL_ERR_FILE_IN_USE: .*app\.log is already written by another writer/)
    expect(second.stdout()).toBe('')

    await runProducers(2, { endpoint: first.endpoint, records: 2000 })
    expect((await first.stop({ spoolTaken: true })).records).toBe(4000)
    const third = await startWriterChild(dir)
    expect(third.file).toBe(first.file)
    expect((await third.stop()).records).toBe(0)
    const set = await listLogSet(dir, 'app.log')
    expect(set.files.length).toBeGreaterThan(2)
    expect(await verifyFiles(set.files, {}, set.missing)).toMatchObject({ lines: 4000, producers: 2, gaps: 0, duplicates: 0, torn: 0, reordered: 0 })
  })

  it('a second writer given a symlink to the first one\'s file is refused too (LOGFUNNEL_ERR_FILE_IN_USE)', async () => {
    const dir = tempDir()
    const first = await startWriterChild(dir)
    symlinkSync(first.file, join(dir, 'alias.log'))
    const second = spawnNode([BIN, 'writer', '--file', join(dir, 'alias.log'), '--endpoint', `ipc://${join(dir, 'other.sock')}`])
    expect(await exitCode(second)).toBe(1)
    expect(second.stderr()).toMatch(/^logfunnel: LOGFUNNEL_ERR_FILE_IN_USE: .*alias\.log is already written by another writer/)
    await first.stop()
  })

  // A writer that bound another's receipt endpoint took its receipts, and unlinked the socket
  // file when it stopped: the first writer's producers waited 10 s in close() and spooled everything.
  const receiptClashes: Array<[string, (dataPath: string, receiptPath: string, dir: string) => string[]]> = [
    ['its own endpoint but the first one\'s receipt endpoint', (_data, receipts, dir) => ['--endpoint', `ipc://${join(dir, 'b.sock')}`, '--receipt-endpoint', `ipc://${receipts}`]],
    ['the first one\'s receipt endpoint as its data endpoint', (_data, receipts) => ['--endpoint', `ipc://${receipts}`]],
    ['its own endpoint but the first one\'s data endpoint as its receipt endpoint', (data, _receipts, dir) => ['--endpoint', `ipc://${join(dir, 'b.sock')}`, '--receipt-endpoint', `ipc://${data}`]]
  ]
  for (const [what, args] of receiptClashes) {
    it(`a second writer with ${what} exits 1 with LOGFUNNEL_ERR_ENDPOINT_IN_USE; the first one's producers still get receipts`, async () => {
      const dir = tempDir()
      const first = await startWriterChild(dir)
      const data = join(dir, 'w.sock')
      const receipts = `${data}.receipts`
      const second = spawnNode([BIN, 'writer', '--file', join(dir, 'b.log'), ...args(data, receipts, dir)])
      expect(await exitCode(second, 10_000), second.describe()).toBe(1)
      expect(second.stderr()).toMatch(/^logfunnel: LOGFUNNEL_ERR_ENDPOINT_IN_USE: /)
      expect([existsSync(data), existsSync(receipts)]).toEqual([true, true])

      const [done] = await runProducers(1, { endpoint: first.endpoint, records: 1000, producer: { spoolDir: join(dir, 'spool') } })
      expect(done.stats).toMatchObject({ records: 1000, spooledRecords: 0, abandoned: 0 })
      expect(await first.stop()).toMatchObject({ records: 1000, spool: { entries: 0 } })
    })
  }

  it('over tcp too: a second writer whose data endpoint is the first one\'s receipt port exits 1 with LOGFUNNEL_ERR_ENDPOINT_IN_USE', async () => {
    const dir = tempDir()
    const port = await freePortPair()
    const first = await startWriterWith(['--file', join(dir, 'a.log'), '--endpoint', `tcp://127.0.0.1:${port}`])
    expect(first.ready.receiptEndpoint).toBe(`tcp://127.0.0.1:${port + 1}`)
    const second = spawnNode([BIN, 'writer', '--file', join(dir, 'b.log'), '--endpoint', first.ready.receiptEndpoint, '--receipt-endpoint', `tcp://127.0.0.1:${port + 2}`])
    expect(await exitCode(second, 10_000), second.describe()).toBe(1)
    expect(second.stderr()).toMatch(/^logfunnel: LOGFUNNEL_ERR_ENDPOINT_IN_USE: /)
    await first.stop()
  })

  // Before, the two spellings took two locks: the second writer got past its lock and failed to
  // bind (LOGFUNNEL_ERR_BIND, EADDRINUSE), not told that the endpoint is served.
  for (const [first, second] of [['127.0.0.1', 'localhost'], ['localhost', '127.0.0.1']]) {
    it(`over tcp, ${first} then ${second} on the same port: the second exits 1 with LOGFUNNEL_ERR_ENDPOINT_IN_USE; the first keeps working`, async () => {
      const dir = tempDir()
      const port = await freePortPair()
      const writer = await startWriterWith(['--file', join(dir, 'a.log'), '--endpoint', `tcp://${first}:${port}`])
      const other = spawnNode([BIN, 'writer', '--file', join(dir, 'b.log'), '--endpoint', `tcp://${second}:${port}`])
      expect(await exitCode(other, 10_000), other.describe()).toBe(1)
      expect(other.stderr()).toMatch(new RegExp(`^logfunnel: LOGFUNNEL_ERR_ENDPOINT_IN_USE: endpoint tcp://${second}:${port} is already served by another writer`))
      const [done] = await runProducers(1, { endpoint: `tcp://127.0.0.1:${port}`, records: 1000 })
      expect(done.stats).toMatchObject({ records: 1000, spooledRecords: 0, abandoned: 0 })
      expect(await writer.stop()).toMatchObject({ records: 1000 })
    })
  }

  const cases: Array<[string, (dir: string) => string[], number, string]> = [
    ['an unknown flag', (dir) => ['--file', join(dir, 'a.log'), '--no-such-flag'], 2, 'LOGFUNNEL_ERR_USAGE'],
    ['a flag without its value', () => ['--file'], 2, 'LOGFUNNEL_ERR_USAGE'],
    ['a non-numeric size', (dir) => ['--file', join(dir, 'a.log'), '--max-frame-bytes', 'big'], 2, 'LOGFUNNEL_ERR_USAGE'],
    ['a frame limit out of range', (dir) => ['--file', join(dir, 'a.log'), '--max-frame-bytes', '10'], 1, 'LOGFUNNEL_ERR_INVALID_OPTION'],
    ['a bad endpoint', (dir) => ['--file', join(dir, 'a.log'), '--endpoint', 'udp://x'], 1, 'LOGFUNNEL_ERR_INVALID_OPTION'],
    ['an unwritable file', (dir) => {
      writeFileSync(join(dir, 'plain'), '')
      return ['--file', join(dir, 'plain', 'a.log'), '--endpoint', `ipc://${join(dir, 'w.sock')}`]
    }, 1, 'LOGFUNNEL_ERR_FILE']
  ]
  for (const [what, args, code, errorCode] of cases) {
    it(`${what}: exits ${code} with ${errorCode}`, async () => {
      const dir = tempDir()
      const child = spawnNode([BIN, 'writer', ...args(dir)])
      expect(await exitCode(child)).toBe(code)
      expect(child.stderr()).toMatch(new RegExp(`^logfunnel: ${errorCode}: `))
      expect(child.stdout()).toBe('')
    })
  }
}, 60_000)
