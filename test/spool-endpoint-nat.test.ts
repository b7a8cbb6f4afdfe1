import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { exitCode, lineCount, stderrEvents, tempDir, waitFor } from './helpers/children.js'
import { runProducers, spawnProducer } from './helpers/cluster.js'
import { freePortPair } from './helpers/ports.js'
import { TcpProxy } from './helpers/tcp-proxy.js'
import { spoolFilesWaiting, startWriterWith, waitSpoolTaken } from './helpers/writer-cli.js'

const RECORDS = 2000

describe('tcp producers that reach the writer through another port (NAT, docker -p, a port forward)', () => {
  it('their spool files are spool-foreign with a hint, and taken once the writer is given --spool-endpoint', async () => {
    const dir = tempDir()
    const spoolDir = join(dir, 'spool')
    const file = join(dir, 'app.log')
    const writerPort = await freePortPair()
    const proxyPort = await freePortPair()
    const proxy = await TcpProxy.start(proxyPort, writerPort)
    const dialed = `tcp://127.0.0.1:${proxyPort}`
    try {
      // The writer is not up yet: the producer's records go to the spool, recorded for the port it dials.
      const early = spawnProducer({ endpoint: dialed, records: RECORDS, exitAtOnce: true, producer: { spoolDir } })
      expect(await exitCode(early), early.describe()).toBe(0)
      const stranded = spoolFilesWaiting(spoolDir)
      expect(stranded.length).toBeGreaterThan(0)

      const bound = ['--file', file, '--endpoint', `tcp://127.0.0.1:${writerPort}`, '--spool-dir', spoolDir, '--spool-poll-ms', '50']
      const plain = await startWriterWith(bound)
      await waitFor(() => stderrEvents(plain.child, 'spool-foreign').length === stranded.length, 20_000, () => plain.child.stderr())
      expect(stderrEvents(plain.child, 'spool-foreign')[0]).toMatchObject({
        endpoint: `tcp:${proxyPort}`,
        hint: expect.stringContaining(`--spool-endpoint tcp://*:${proxyPort}`)
      })
      expect(await plain.stop()).toMatchObject({ records: 0, spool: { files: 0, foreign: stranded.length } })
      expect(spoolFilesWaiting(spoolDir)).toEqual(stranded)

      // Before, no option took them: they stayed for good. The flag is repeatable.
      const adopting = await startWriterWith([...bound, '--spool-endpoint', 'tcp://127.0.0.1:1', '--spool-endpoint', `tcp://*:${proxyPort}`])
      await waitSpoolTaken(spoolDir, 30_000, adopting.child)
      // A producer through the proxy while the writer runs: its records arrive over the network.
      await runProducers(1, { endpoint: dialed, records: RECORDS, producer: { spoolDir } })
      await waitSpoolTaken(spoolDir, 30_000, adopting.child)
      const summary = await adopting.stop()
      expect(summary).toMatchObject({ records: 2 * RECORDS, duplicates: 0, spool: { foreign: 0, torn: 0, rejected: 0 } })
      expect(stderrEvents(adopting.child, 'spool-foreign')).toEqual([])
    } finally {
      await proxy.close()
    }
    expect(lineCount(file)).toBe(2 * RECORDS)
    expect(await verifyFile(file, { expect: RECORDS })).toMatchObject({ lines: 2 * RECORDS, producers: 2, gaps: 0, duplicates: 0, missing: 0, ok: true })
  })
}, 90_000)
