import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { exitCode, tempDir } from './helpers/children.js'
import { spawnProducer } from './helpers/cluster.js'

/**
 * A spool that cannot be written, with no writer: the records are lost, and close()'s report
 * says why, in the words of the failure (here the spool directory's path is a regular file; a
 * producer of another user than the writer's meets EACCES on the writer's spool directory the
 * same way). Before, it said only 'no spool to keep them, or it could not be written', and the
 * failure itself was in NODE_DEBUG=logfunnel output alone, once per attempt (200 a second).
 */

const RECORDS = 100
const SPOOL_FAILURE = /lost \(the spool could not be written: [A-Z_]+: [^)]*notadir[^)]*\)/

describe.each(['funnel', 'transport'] as const)('%s: a spool that cannot be written', (mode) => {
  it(`no writer: the ${RECORDS} records lost are reported with the spool's failure`, async () => {
    const dir = tempDir()
    const notADir = join(dir, 'notadir')
    writeFileSync(notADir, 'a file where the spool directory would be\n')
    const producer = spawnProducer({
      endpoint: `ipc://${join(dir, 'w.sock')}`, records: RECORDS, mode,
      producer: { spoolDir: notADir, closeTimeoutMs: 500, flushTimeoutMs: 500, connectTimeoutMs: 0 }
    })
    const done = await producer.waitForLine((l) => l.event === 'done', 30_000)
    expect(await exitCode(producer), producer.describe()).toBe(0)
    expect(done.stats, producer.describe()).toMatchObject({ records: RECORDS, abandoned: RECORDS, spooledRecords: 0 })
    expect(done.stats.lastSpoolError, producer.describe()).toMatch(/notadir/)
    // funnel(): close() rejects with it; the transport, ended by pino, says it on stderr.
    const report = mode === 'funnel' ? done.closeMessage : producer.stderr()
    expect(report, producer.describe()).toMatch(SPOOL_FAILURE)
  })
})
