import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseSpool, parseSpoolPreamble } from '../shared/spool.js'
import { verifyFile } from '../shared/verify.js'
import { BIN, exitCode, lineCount, spawnCommand, stderrEvents, tempDir, waitFor } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'
import { rawPush } from './helpers/raw-push.js'
import { craftSpool, writeSpool } from './helpers/spool-files.js'

const MiB = 1024 * 1024

/** Records in the spool files left in `dir`. */
function spooledRecords (dir: string): number {
  let records = 0
  for (const name of readdirSync(dir)) {
    const buf = readFileSync(join(dir, name))
    const preamble = parseSpoolPreamble(buf)
    if (typeof preamble !== 'object') throw new Error(`${name}: no preamble`)
    for (const entry of parseSpool(buf, 64 * MiB, preamble.bytes).entries) records += entry.header.records
  }
  return records
}

describe('a writer stopped while it ingests a large spool', () => {
  it('hands nothing over once its drain is over (drainTimeoutMs): the summary counts what the file holds and the files left, the rest stays in the spool, and the next writer completes it exactly', async () => {
    const dir = tempDir()
    const spoolDir = join(dir, 'w.sock.spool')
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    // 40 producers' files of 20,000 records (200 entries of 100), ~52 MB: a second of ingesting here.
    const FILES = 40
    const RECORDS = 20_000
    mkdirSync(spoolDir, { mode: 0o700 })
    for (let f = 0; f < FILES; f++) writeSpool(spoolDir, { endpoint, records: RECORDS, perBatch: 100, tag: `f${f}-${'x'.repeat(40)}` })

    // A stop takes the spool files ready in its drain: a drain of 100 ms ends in the middle of them.
    const first = await startWriterChild(dir, ['--spool-poll-ms', '50', '--drain-idle-ms', '1', '--drain-timeout-ms', '100'])
    await waitFor(() => lineCount(first.file) > 0, 20_000, () => `no line yet; stderr: ${first.child.stderr()}`)
    const s1 = await first.stop()
    const left = readdirSync(spoolDir)
    const leftRecords = spooledRecords(spoolDir)
    console.log(`the stop landed with ${s1.records} records written, ${left.length} of ${FILES} files left`)
    // The stop came while files were left (else this test proved nothing).
    expect(left.length, 'the stop came after the whole spool was ingested').toBeGreaterThan(0)
    expect(s1.records).toBe(lineCount(first.file))
    expect(s1.bytes).toBe(statSync(first.file).size)
    expect(s1.unwrittenBytes).toBe(0)
    expect(s1.spool).toEqual({ files: FILES - left.length, entries: s1.records / 100, torn: 0, rejected: 0, foreign: 0, leftAtStop: left.length })

    const second = await startWriterChild(dir, ['--spool-poll-ms', '50'])
    const s2 = await second.stop({ spoolTaken: true })
    expect(readdirSync(spoolDir)).toEqual([])
    // What the first had written of the file it stopped in is skipped as duplicates, entry by entry.
    expect(s1.records + s2.records).toBe(FILES * RECORDS)
    expect(s2.records + s2.duplicates * 100).toBe(leftRecords)
    expect(await verifyFile(second.file, { producerKey: 'tag', expect: RECORDS })).toMatchObject({
      lines: FILES * RECORDS, producers: FILES, torn: 0, gaps: 0, duplicates: 0, reordered: 0, missing: 0, extra: 0
    })
  })

  it.runIf(statSync('/usr/bin/prlimit', { throwIfNoEntry: false }) !== undefined)('with the file refusing writes (prlimit --fsize: EFBIG) and the queue full, the stop ends after its deadlines although the ingester waits for room; nothing of the spool is lost', async () => {
    const dir = tempDir()
    const spoolDir = join(dir, 'w.sock.spool')
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    const file = join(dir, 'app.log')
    const child = spawnCommand('prlimit', ['--fsize=1000000', process.execPath, BIN, 'writer', '--file', file, '--endpoint', endpoint,
      '--spool-poll-ms', '50', '--drain-timeout-ms', '500', '--drain-idle-ms', '100', '--stats-interval-ms', '100'])
    await child.waitForLine((l) => l.event === 'ready')
    const lastStats = (): any => stderrEvents(child, 'stats').at(-1)
    // 96 plain frames of 128 KiB (12 MiB): the receive loop pauses once 8 MiB wait for the file.
    const push = rawPush(endpoint)
    const line = `{"net":"${'n'.repeat(1000)}"}\n`
    const frame = Buffer.from(line.repeat(Math.floor(128 * 1024 / line.length)))
    for (let i = 0; i < 96; i++) await push.send(frame)
    await waitFor(() => (lastStats()?.queueBytes ?? 0) > 8 * MiB, 30_000, () => `last stats: ${JSON.stringify(lastStats())}; stderr: ${child.stderr().slice(-2000)}`)
    // A spool file of entries of 30,000 records (2.1 MB): the first one is handed over, and the
    // ingester waits for room. At most 1 MB ever reaches the file, so more than 8 MiB stay queued
    // when the file is given up.
    const spool = craftSpool({ endpoint, records: 60_000, perBatch: 30_000, tag: `spool-${'s'.repeat(40)}` })
    mkdirSync(spoolDir, { recursive: true, mode: 0o700 })
    writeFileSync(join(spoolDir, 'incoming'), spool.bytes, { mode: 0o600 })
    renameSync(join(spoolDir, 'incoming'), join(spoolDir, spool.name(0)))
    await waitFor(() => lastStats()?.producers === 1, 30_000, () => `last stats: ${JSON.stringify(lastStats())}`)
    const handedBytes = lastStats().bytes as number

    const stopped = child.waitForLine((l) => l.event === 'stopped', 20_000)
    const started = Date.now()
    child.proc.kill('SIGTERM')
    const summary = await stopped
    expect(await exitCode(child), child.describe()).toBe(0)
    // The drain (500 ms) and the file's give-up (500 ms more), not for ever.
    expect(Date.now() - started).toBeLessThan(10_000)
    expect(summary.records).toBe(lineCount(file))
    expect(summary.bytes).toBe(statSync(file).size)
    expect(summary.bytes + summary.unwrittenBytes).toBe(handedBytes)
    expect(summary.spool).toEqual({ files: 0, entries: 1, torn: 0, rejected: 0, foreign: 0, leftAtStop: 1 })
    // The entry handed over was given up with the rest: the file stays, whole, for the next writer.
    expect(readdirSync(spoolDir)).toEqual([spool.name(0)])
    expect(readFileSync(join(spoolDir, spool.name(0))).equals(spool.bytes)).toBe(true)

    const next = await startWriterChild(dir, ['--spool-poll-ms', '50'])
    const s2 = await next.stop({ spoolTaken: true })
    expect(readdirSync(spoolDir)).toEqual([])
    expect(s2).toMatchObject({ records: 60_000, duplicates: 0, spool: { files: 1, entries: 2 } })
    const spooled = readFileSync(file, 'utf8').split('\n').slice(0, -1).filter((l) => l.startsWith('{"tag"'))
    expect(spooled.map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual(Array.from({ length: 60_000 }, (_, i) => i))
  })
}, 120_000)
