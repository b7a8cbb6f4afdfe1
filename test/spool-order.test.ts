import { mkdirSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { MAX_FRAME_BYTES } from '../shared/options.js'
import { parseSpool, parseSpoolName, parseSpoolPreamble } from '../shared/spool.js'
import { exitCode, fixture, lineCount, spawnNode, tempDir, waitFor } from './helpers/children.js'
import { runProducers, startWriterChild } from './helpers/cluster.js'
import { writeSpool } from './helpers/spool-files.js'
import { startWriterWith } from './helpers/writer-cli.js'

/**
 * One process, several producers one after the other, their records spooled while the writer
 * is away: the writer takes them in the order the process made its producers (the preamble's
 * `made`), so the file has the process's lines in the order they were logged. Before, files went
 * by producer id, and ids are random: with 6 senders, 719 orders in 720 were wrong.
 *
 * At start the writer takes the spool there before live messages: a process whose earlier
 * producer spooled and whose later one lives on and sends once the writer is back has their
 * lines in that order too.
 */

const SENDERS = 6
const RECORDS = 200
/** Large: each close() ends once its records are in the spool, well before it. */
const CLOSE_DEADLINE_MS = 20_000
/** Options that differ from sender to sender ("funnel() with options X"). */
const VARIANTS = [{}, { maxBatchBytes: 4096 }, { onFull: 'spool', highWaterMark: 64 * 1024, maxFrameBytes: 64 * 1024 }, { spoolAfterMs: 50 }] as const

/** Records of each of the two senders in the live test: a spool of about 18 MB each, taken in about 0.4 s here. */
const LIVE_RECORDS = 100_000
/** Spool files crafted for the bounded first pass: their pass takes well over FIRST_PASS_WAIT_MS. */
const SLOW_PASS_FILES = 1500

function senderRuns (file: string): number[] {
  const runs: number[] = []
  for (const { sender } of linesOf(file)) if (runs.at(-1) !== sender) runs.push(sender)
  return runs
}

/** Unix sockets bound or connected to `path` (/proc/net/unix): the listener, and one per connection, accepted or not. */
function connectionsTo (path: string): number {
  return readFileSync('/proc/net/unix', 'utf8').split('\n').filter((line) => line.endsWith(` ${path}`)).length
}

/** Records in each complete spool file read so far, by name: a complete file does not change. */
const recordsIn = new Map<string, number>()

/** Records in the complete spool files of `dir`, by producer id. */
function spooledRecords (dir: string): Map<string, number> {
  const records = new Map<string, number>()
  for (const name of readdirSync(dir)) {
    const parsed = parseSpoolName(name)
    if (parsed?.complete !== true) continue
    let count = recordsIn.get(join(dir, name))
    if (count === undefined) {
      const buf = readFileSync(join(dir, name))
      const preamble = parseSpoolPreamble(buf)
      count = parseSpool(buf, MAX_FRAME_BYTES, typeof preamble === 'object' ? preamble.bytes : 0).entries.reduce((n, entry) => n + entry.header.records, 0)
      recordsIn.set(join(dir, name), count)
    }
    records.set(parsed.producerIdHex, (records.get(parsed.producerIdHex) ?? 0) + count)
  }
  return records
}

function linesOf (file: string): Array<{ sender: number, seq: number }> {
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line)).map(({ sender, seq }) => ({ sender, seq }))
}

describe('the order of one process\'s spooled producers', () => {
  it(`${SENDERS} senders made one after the other, each closed while no writer runs: the file has sender 0's ${RECORDS} lines, then sender 1's, ..., each once`, async () => {
    const dir = tempDir()
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    const producer = spawnNode([fixture('successive-senders'), JSON.stringify({ endpoint, senders: SENDERS, records: RECORDS, variants: VARIANTS, closeDeadlineMs: CLOSE_DEADLINE_MS })])
    await producer.waitForLine((l) => l.event === 'done', 2 * SENDERS * CLOSE_DEADLINE_MS)
    expect(await exitCode(producer), producer.describe()).toBe(0)
    const closed = producer.stdout().split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((l) => l.event === 'closed')
    expect(closed.map((c) => [c.closeError, c.stats.spooledRecords]), producer.describe()).toEqual(Array.from({ length: SENDERS }, () => [null, RECORDS]))

    // Six producers, every segment stamped with when its producer was made, in the order made.
    const spoolDir = join(dir, 'w.sock.spool')
    const made = new Map<string, string>()
    for (const name of readdirSync(spoolDir)) {
      const parsed = parseSpoolName(name)
      if (parsed === undefined) continue
      const preamble = parseSpoolPreamble(readFileSync(join(spoolDir, name)))
      expect(typeof preamble === 'object' ? preamble.preamble.made : preamble, name).toMatch(/^\d+$/)
      made.set(parsed.producerIdHex, (preamble as { preamble: { made: string } }).preamble.made)
    }
    expect(made.size).toBe(SENDERS)

    const writer = await startWriterChild(dir)
    await waitFor(() => lineCount(writer.file) >= SENDERS * RECORDS, 30_000, () => `${lineCount(writer.file)} of ${SENDERS * RECORDS} lines in the file`)
    expect(await writer.stop({ spoolTaken: true })).toMatchObject({ records: SENDERS * RECORDS, duplicates: 0, spool: { torn: 0, rejected: 0 } })
    const expected = Array.from({ length: SENDERS * RECORDS }, (_v, i) => ({ sender: Math.floor(i / RECORDS), seq: i % RECORDS }))
    const lines = linesOf(writer.file)
    // Say which senders came in which order, not 1,200 lines.
    expect(senderRuns(writer.file), writer.child.describe()).toEqual(Array.from({ length: SENDERS }, (_v, i) => i))
    expect(lines).toEqual(expected)
    // The process's count `n` read as one producer's sequence: none lost, twice or out of order.
    expect(await verifyFile(writer.file, { seqKey: 'n' })).toMatchObject({ lines: SENDERS * RECORDS, producers: 1, gaps: 0, duplicates: 0, reordered: 0, torn: 0, ok: true })
  })

  it(`sender A spooled (closed while no writer runs), sender B made, ${LIVE_RECORDS} records each, B held; the writer starts, B connects: A's lines, then B's, each once`, async () => {
    const dir = tempDir()
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    const producer = spawnNode([fixture('successive-senders'), JSON.stringify({ endpoint, senders: 2, records: LIVE_RECORDS, variants: [{}], closeDeadlineMs: CLOSE_DEADLINE_MS, lastStays: true })])
    await producer.waitForLine((l) => l.event === 'holding', 2 * CLOSE_DEADLINE_MS)
    // B, finding no writer, copies what it holds to the spool too (spoolAfterMs): all of it there first.
    const spoolDir = join(dir, 'w.sock.spool')
    await waitFor(() => [...spooledRecords(spoolDir).values()].join() === `${LIVE_RECORDS},${LIVE_RECORDS}`, 30_000,
      () => `records in complete spool files, by producer: ${JSON.stringify([...spooledRecords(spoolDir)])}`)
    // B redials up to a second apart: the writer is stopped (SIGSTOP) once ready until B's
    // connection waits at its socket, so that B's resends and A's spool meet at the writer's start.
    // The writer is held longer than FIRST_PASS_WAIT_MS (1 s): the bound is lifted here, and has a test of its own below.
    const file = join(dir, 'app.log')
    const writer = { file, ...await startWriterWith(['--file', file, '--endpoint', endpoint], { LOGFUNNEL_TEST_FIRST_PASS_WAIT_MS: '600000' }) }
    writer.child.proc.kill('SIGSTOP')
    await waitFor(() => connectionsTo(join(dir, 'w.sock')) >= 2, 30_000, () => `${connectionsTo(join(dir, 'w.sock'))} sockets at the data endpoint (the writer's among them)`)
    writer.child.proc.kill('SIGCONT')
    await producer.waitForLine((l) => l.event === 'done', 60_000)
    expect(await exitCode(producer), producer.describe()).toBe(0)
    const closed = producer.stdout().split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((l) => l.event === 'closed')
    expect(closed.map((c) => [c.sender, c.closeError]), producer.describe()).toEqual([[0, null], [1, null]])
    expect(closed[0].stats.spooledRecords).toBe(LIVE_RECORDS)
    // B's batches reach the writer live and as copies from the spool: the first of each is written.
    const summary = await writer.stop({ spoolTaken: true })
    expect(summary, writer.child.describe()).toMatchObject({ records: 2 * LIVE_RECORDS, spool: { torn: 0, rejected: 0 } })
    // Before, B's live lines came among A's spooled ones: [0, 1, 0, 1, ...].
    expect(senderRuns(writer.file), writer.child.describe()).toEqual([0, 1])
    expect(await verifyFile(writer.file, { seqKey: 'n' })).toMatchObject({ lines: 2 * LIVE_RECORDS, producers: 1, gaps: 0, duplicates: 0, reordered: 0, torn: 0, ok: true })
  })

  it('a spool that takes long to read at start holds live messages at most FIRST_PASS_WAIT_MS (1 s): a live producer gets its receipts while the first pass goes on', async () => {
    const dir = tempDir()
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    const spoolDir = join(dir, 'w.sock.spool')
    mkdirSync(spoolDir, { mode: 0o700 })
    // Thousands of small files: the first pass takes several seconds (about 2.7 ms a file here).
    for (let i = 0; i < SLOW_PASS_FILES; i++) writeSpool(spoolDir, { endpoint, records: 2, perBatch: 2, pid: 1, tag: `s${i}` })
    const file = join(dir, 'app.log')
    const writer = await startWriterWith(['--file', file, '--endpoint', endpoint])
    const [done] = await runProducers(1, { endpoint, records: 50, closeDeadlineMs: 60_000 })
    // Its close() had every receipt (nothing spooled) while the writer still had spool files to read.
    const left = readdirSync(spoolDir).filter((n) => parseSpoolName(n) !== undefined).length
    expect(done.stats, JSON.stringify(done)).toMatchObject({ spooledRecords: 0 })
    expect(left, writer.child.describe()).toBeGreaterThan(0)
    const summary = await writer.stop({ spoolTaken: true, spoolDeadlineMs: 120_000 })
    expect(summary, writer.child.describe()).toMatchObject({ records: 2 * SLOW_PASS_FILES + 50, spool: { torn: 0, rejected: 0 } })
    expect(lineCount(file)).toBe(2 * SLOW_PASS_FILES + 50)
  }, 180_000)
})
