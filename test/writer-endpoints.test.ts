import { existsSync, readFileSync, renameSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { BIN, spawnNode, tempDir, waitFor, exitCode } from './helpers/children.js'
import { runProducers, startWriterChild } from './helpers/cluster.js'
import { waitSpoolTaken } from './helpers/writer-cli.js'

/** A loopback port p such that p and p + 1 (the receipt port) were both free a moment ago. */
async function freePortPair (): Promise<number> {
  const listen = async (port: number): Promise<ReturnType<typeof createServer> | undefined> => await new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(undefined))
    server.listen(port, '127.0.0.1', () => resolve(server))
  })
  for (let attempt = 0; attempt < 50; attempt++) {
    const first = await listen(0)
    if (first === undefined) continue
    const port = (first.address() as { port: number }).port
    const second = port < 65534 ? await listen(port + 1) : undefined
    await new Promise((resolve) => first.close(resolve))
    if (second !== undefined) {
      await new Promise((resolve) => second.close(resolve))
      return port
    }
  }
  throw new Error('no free pair of loopback ports found in 50 attempts')
}

describe('writer endpoints and signals', () => {
  it('serves tcp://127.0.0.1:PORT with receipts on PORT + 1', async () => {
    const dir = tempDir()
    const port = await freePortPair()
    const endpoint = `tcp://127.0.0.1:${port}`
    const file = join(dir, 'tcp.log')
    const writer = spawnNode([BIN, 'writer', '--file', file, '--endpoint', endpoint])
    const ready = await writer.waitForLine((l) => l.event === 'ready')
    expect(ready).toMatchObject({ endpoint, receiptEndpoint: `tcp://127.0.0.1:${port + 1}`, file })
    await runProducers(2, { endpoint, records: 5000 })
    const stopped = writer.waitForLine((l) => l.event === 'stopped')
    writer.proc.kill('SIGTERM')
    expect(await stopped).toMatchObject({ records: 10_000, producers: 2 })
    expect(await exitCode(writer)).toBe(0)
    expect(await verifyFile(file)).toMatchObject({ lines: 10_000, ok: true })
  })

  it('SIGHUP reopens the file by path (logrotate create mode)', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    await runProducers(1, { endpoint: writer.endpoint, records: 1000 })
    // What a close left in the spool goes to the file about to be renamed.
    await waitSpoolTaken(writer.spoolDir)
    const rotated = join(dir, 'app.log.1')
    renameSync(writer.file, rotated)
    writer.child.proc.kill('SIGHUP')
    await waitFor(() => existsSync(writer.file), 10_000, () => `${writer.file} was not recreated`)
    await runProducers(1, { endpoint: writer.endpoint, records: 2000 })
    const summary = await writer.stop({ spoolTaken: true })
    expect(summary.records).toBe(3000)
    const lines = (f: string): number => readFileSync(f, 'utf8').split('\n').length - 1
    expect([lines(rotated), lines(writer.file)]).toEqual([1000, 2000])
    expect(await verifyFile(rotated)).toMatchObject({ lines: 1000, producers: 1, ok: true })
    expect(await verifyFile(writer.file)).toMatchObject({ lines: 2000, producers: 1, ok: true })
  })
}, 60_000)
