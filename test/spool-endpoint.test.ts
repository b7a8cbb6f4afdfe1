import { mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { exitCode, lineCount, stderrEvents, tempDir, waitFor } from './helpers/children.js'
import { spawnProducer } from './helpers/cluster.js'
import { writeSpool } from './helpers/spool-files.js'
import { startWriterWith } from './helpers/writer-cli.js'

const RECORDS = 200

describe('a spool is ingested only by the writer of its endpoint (issue 13, point 1)', () => {
  it('two writers with sockets in one directory: each has its own spool; a file recorded for the other endpoint is left alone and reported', async () => {
    const dir = tempDir()
    const sockDir = join(dir, 'run')
    const a = { endpoint: `ipc://${join(sockDir, 'app1.sock')}`, file: join(dir, 'app1.log') }
    const b = { endpoint: `ipc://${join(sockDir, 'app2.sock')}`, file: join(dir, 'app2.log') }

    // A's producer exits while A is down: its records go to A's spool.
    const producer = spawnProducer({ endpoint: a.endpoint, records: RECORDS, exitAtOnce: true })
    expect(await exitCode(producer), producer.describe()).toBe(0)
    expect(readdirSync(join(sockDir, 'app1.sock.spool')).length).toBeGreaterThan(0)

    // And a file recorded for A lands in B's spool directory.
    mkdirSync(join(sockDir, 'app2.sock.spool'), { mode: 0o700 })
    const misplaced = writeSpool(join(sockDir, 'app2.sock.spool'), { endpoint: a.endpoint, records: 50, tag: 'misplaced' })

    const writerB = await startWriterWith(['--file', b.file, '--endpoint', b.endpoint, '--spool-poll-ms', '50'])
    await waitFor(() => stderrEvents(writerB.child, 'spool-foreign').length > 0, 20_000, () => writerB.child.stderr())
    const writerA = await startWriterWith(['--file', a.file, '--endpoint', a.endpoint, '--spool-poll-ms', '50'])
    await waitFor(() => lineCount(a.file) >= RECORDS, 30_000, () => `${lineCount(a.file)} lines in A's file`)

    const summaryA = await writerA.stop()
    const summaryB = await writerB.stop()
    expect(summaryA).toMatchObject({ records: RECORDS, duplicates: 0 })
    expect(summaryB).toMatchObject({ records: 0 })
    expect(summaryB.spool).toMatchObject({ files: 0, entries: 0, foreign: 1 })
    expect(lineCount(b.file)).toBe(0)
    expect(await verifyFile(a.file)).toMatchObject({ lines: RECORDS, producers: 1, gaps: 0, ok: true })
    expect(stderrEvents(writerB.child, 'spool-foreign')).toMatchObject([{ file: join(sockDir, 'app2.sock.spool', misplaced), endpoint: a.endpoint }])
    expect(readdirSync(join(sockDir, 'app2.sock.spool'))).toEqual([misplaced])
    expect(readdirSync(join(sockDir, 'app1.sock.spool'))).toEqual([])
  })
}, 90_000)
