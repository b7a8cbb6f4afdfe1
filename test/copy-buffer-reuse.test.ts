import { renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { exitCode, lineCount, stderrEvents, tempDir, waitFor } from './helpers/children.js'
import { spawnProducer, startWriterChild } from './helpers/cluster.js'
import { spoolFilesWaiting } from './helpers/writer-cli.js'

/**
 * A batch copied to the spool while the writer was away, whose one send still waits for the
 * data connection, gets its receipt from the spool copy. Its buffer must not go back to the
 * producer's pool then: the waiting send still holds it, and writes it once the connection is
 * up, under the old batch's header. Before, it did (a batch sent once was recycled at its
 * receipt, whatever the receipt came from), and the next batch sealed into that buffer reached
 * the writer as the old sequence number with other content: refused as `count_mismatch` (a
 * header whose record count is not its payload's), or as `id_conflict` with a
 * `producer-conflict` line saying two senders share the id (seen in a restart loop: the writer
 * SIGKILLed every 1-2 s under 4 producers, 1 to 3 such lines in 15 restarts).
 *
 * Made certain here: the writer's data socket is renamed away (its listener lives on, a connect
 * to the path fails) and the writer stopped (SIGSTOP: no heartbeat answered) while the producer
 * logs its first half, which is copied to the spool while the first batch's send waits; then the
 * writer runs again and takes the spool (receipts come over the receipt socket, which connects),
 * the producer logs its second half into the pool's buffers, and only then the data socket gets
 * its name back. The producer stays alive until its records are in the file (holdUntilSignal).
 */

const RECORDS = 4000
const HALF = RECORDS / 2

describe.each(['funnel', 'transport'] as const)('%s: a receipt from the spool copy of a batch whose send still waits', (mode) => {
  it(`the writer refuses no batch and prints no producer-conflict; ${RECORDS} records in the file once`, async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir, ['--spool-poll-ms', '50'])
    const socket = join(dir, 'w.sock')
    renameSync(socket, `${socket}.held`)
    writer.child.proc.kill('SIGSTOP')
    const go = join(dir, 'go')
    const producer = spawnProducer({ endpoint: writer.endpoint, records: RECORDS, mode, sizes: [200], announceAfter: HALF, waitForFile: go, holdUntilSignal: true })
    try {
      await producer.waitForLine((l) => l.event === 'logging', 30_000)
      await waitFor(() => spoolFilesWaiting(writer.spoolDir).length > 0, 15_000, () => `no spool file in ${writer.spoolDir}`)
    } finally {
      writer.child.proc.kill('SIGCONT')
    }
    // The writer takes the first half from the spool and receipts it; then the second half is logged.
    await waitFor(() => lineCount(writer.file) >= HALF, 15_000, () => `${lineCount(writer.file)} of ${HALF} lines in the file`)
    writeFileSync(go, '')
    await producer.waitForLine((l) => l.event === 'logged', 30_000)
    // The data connection is tried again at most a second later (RECONNECT_MAX_MS).
    renameSync(`${socket}.held`, socket)
    await waitFor(() => lineCount(writer.file) >= RECORDS, 15_000, () => `${lineCount(writer.file)} of ${RECORDS} lines in the file`)
    producer.proc.kill('SIGTERM')
    expect(await exitCode(producer), producer.describe()).toBe('SIGTERM')

    const summary = await writer.stop({ spoolTaken: true })
    expect(stderrEvents(writer.child, 'producer-conflict'), writer.child.describe()).toEqual([])
    expect(summary, writer.child.describe()).toMatchObject({ records: RECORDS, conflicts: 0 })
    expect(summary.rejected, writer.child.describe()).toEqual({})
    expect(await verifyFile(writer.file)).toMatchObject({ lines: RECORDS, producers: 1, gaps: 0, duplicates: 0, reordered: 0, torn: 0, ok: true })
  })
})
