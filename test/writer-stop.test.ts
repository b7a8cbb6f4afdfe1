import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { statSync } from 'node:fs'
import { exitCode, tempDir, waitFor } from './helpers/children.js'
import { spawnProducer, startWriterChild } from './helpers/cluster.js'
import { waitSpoolTaken } from './helpers/writer-cli.js'

describe('SIGTERM to the writer while 4 producers log', () => {
  it('exits 0 with a summary whose record count equals the file, and no torn line', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir, ['--drain-timeout-ms', '1000'])
    const producers = Array.from({ length: 4 }, () => spawnProducer({
      endpoint: writer.endpoint,
      records: 2_000_000,
      announceAfter: 20_000,
      producer: { closeTimeoutMs: 1000 }
    }))
    await Promise.all(producers.map(async (p) => await p.waitForLine((l) => l.event === 'logging')))
    const size = (): number => statSync(writer.file).size
    await waitFor(() => size() > 4_000_000, 60_000, () => `log file has ${size()} bytes`)

    const summary = await writer.stop()
    const report = await verifyFile(writer.file)
    expect(summary.records).toBeGreaterThan(0)
    expect(report.lines).toBe(summary.records)
    expect(report).toMatchObject({ torn: 0, duplicates: 0, reordered: 0 })
    for (const p of producers) p.proc.kill('SIGKILL')
    await Promise.all(producers.map(async (p) => await exitCode(p)))
  })
}, 120_000)

describe('SIGTERM to the writer with no producer connected', () => {
  it('stops without waiting drainIdleMs (nothing can be in flight); every record is in the file', async () => {
    const dir = tempDir()
    // A drain that, waited for, would take 20 s.
    const writer = await startWriterChild(dir, ['--drain-idle-ms', '20000', '--drain-timeout-ms', '30000'])
    const producer = spawnProducer({ endpoint: writer.endpoint, records: 1000 })
    await producer.waitForLine((l) => l.event === 'done')
    expect(await exitCode(producer), producer.describe()).toBe(0)
    // A spool file waiting (a close that ended with the writer judged away) holds a stop in its drain.
    await waitSpoolTaken(writer.spoolDir)
    const started = Date.now()
    const summary = await writer.stop()
    expect(Date.now() - started, 'the stop waited for the drain').toBeLessThan(10_000)
    expect(summary.records).toBe(1000)
    expect(await verifyFile(writer.file)).toMatchObject({ lines: 1000, torn: 0, duplicates: 0, gaps: 0 })
  })
}, 60_000)
