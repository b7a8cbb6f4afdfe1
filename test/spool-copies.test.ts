import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { ProducerOptions } from '../shared/options.js'
import { verifyFile } from '../shared/verify.js'
import { exitCode, fixture, lineCount, spawnNode, tempDir, waitFor, type Child } from './helpers/children.js'
import { spawnProducer, startWriterChild, type WriterChild } from './helpers/cluster.js'
import { readSpooled } from './helpers/spool-files.js'

/**
 * Copies to the spool: once the writer is judged away (`spoolAfterMs`), every batch without a
 * receipt is copied there and kept in memory, and so is each new batch while the writer stays
 * away; once it answers again, new batches are only sent (as the Python client does). Nothing
 * sent is left out of the spool for that: the writer away again, or the process ending, puts
 * every batch still without a receipt there.
 */

const KiB = 1024
const PAYLOAD_BYTES = 200
/** Small batches: many messages, so a writer that pauses after each one receipts well behind. */
const PRODUCER: ProducerOptions = { onFull: 'spool', maxBatchBytes: 16 * KiB }
/** The writer pauses this long after each message (test/fixtures/slow-writer.ts). */
const SLOW_MS = 20
const BEFORE = 1000
const DURING = 2000
const AFTER = 2000
const TOTAL = BEFORE + DURING + AFTER
const DEADLINE_MS = 60_000

function range (from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_v, i) => from + i)
}

function seqsIn (file: string): number[] {
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line).seq)
}

function spawnAcrossStop (endpoint: string, producer: ProducerOptions, end: 'exit' | 'close'): Child {
  const params = { endpoint, producer, payloadBytes: PAYLOAD_BYTES, before: BEFORE, during: DURING, after: AFTER, round: 100, pauseMs: 5, end, deadlineMs: DEADLINE_MS }
  return spawnNode([fixture('producer-logs-across-writer-stop'), JSON.stringify(params)], { stdio: ['pipe', 'pipe', 'pipe'] })
}

/**
 * Logs while the writer is stopped until `spoolDir` holds, in complete files, a copy of every
 * batch logged meanwhile; lets the writer go on and waits until it has written two messages
 * since (it sent the receipt of the first in the pause after it: the producer has heard from
 * it); then has the producer log the rest, and returns what the spool held while the writer was
 * stopped.
 */
async function logAcrossStop (writer: WriterChild, producer: Child, spoolDir: string): Promise<ReturnType<typeof readSpooled>> {
  await producer.waitForLine((l) => l.event === 'receipted', DEADLINE_MS)
  writer.child.proc.kill('SIGSTOP')
  let atStop
  try {
    producer.proc.stdin?.write('writer stopped\n')
    await producer.waitForLine((l) => l.event === 'logged-during', DEADLINE_MS)
    await waitFor(() => {
      const spooled = readSpooled(spoolDir)
      return spooled.tmpFiles === 0 && spooled.seqs.length >= DURING
    }, DEADLINE_MS, () => JSON.stringify({ ...readSpooled(spoolDir), seqs: undefined }))
    atStop = readSpooled(spoolDir)
  } finally {
    writer.child.proc.kill('SIGCONT')
  }
  await waitFor(() => lineCount(writer.file) > BEFORE, DEADLINE_MS, () => `${lineCount(writer.file)} lines`)
  const first = lineCount(writer.file)
  await waitFor(() => lineCount(writer.file) > first, DEADLINE_MS, () => `${lineCount(writer.file)} lines, ${first} before`)
  producer.proc.stdin?.write('writer goes on\n')
  await producer.waitForLine((l) => l.event === 'logged-after', DEADLINE_MS)
  return atStop
}

describe('copies to the spool only while the writer is away', () => {
  it(`onFull 'spool', a writer connected and answering throughout that receipts behind (it pauses ${SLOW_MS / 4} ms a message): nothing copied or moved, 0 spool files, 0 duplicates, every record once`, async () => {
    const RECORDS = 20_000
    const dir = tempDir()
    const writer = await startWriterChild(dir, [], join(dir, 'app.log'), SLOW_MS / 4)
    const producer = spawnProducer({ endpoint: writer.endpoint, records: RECORDS, sizes: [PAYLOAD_BYTES], producer: PRODUCER, pauseEvery: 100, pauseMs: 5 })
    const done = await producer.waitForLine((l) => l.event === 'done', DEADLINE_MS)
    expect(await exitCode(producer), producer.describe()).toBe(0)
    expect(done.closeError).toBe(null)
    expect(done.stats).toMatchObject({ records: RECORDS, spooled: 0, spoolCopies: 0, spoolErrors: 0, dropped: 0, abandoned: 0 })
    const summary = await writer.stop()
    expect(summary).toMatchObject({ records: RECORDS, duplicates: 0, rejected: {}, spool: { files: 0, entries: 0 } })
    expect(readSpooled(join(dir, 'w.sock.spool'))).toMatchObject({ files: 0, tmpFiles: 0 })
    expect(await verifyFile(writer.file)).toMatchObject({ lines: RECORDS, producers: 1, gaps: 0, duplicates: 0, reordered: 0, torn: 0, ok: true })
  })

  // 'close': the producer closes once the writer is back; 'exit': it exits while the writer is
  // stopped again; 'away': it lives on while the writer is stopped again.
  for (const end of ['close', 'exit', 'away'] as const) {
    const title = {
      close: `none of the ${AFTER} logged after is copied; every record once in the file`,
      exit: `the producer exits with the writer stopped again: the ${AFTER} logged after, sent without a receipt, are in the file or the spool; every record once in the file`,
      away: `the writer stopped again: the ${AFTER} logged after, sent without a receipt, reach the spool; every record once in the file`
    }[end]
    it(`a writer stopped (SIGSTOP) while ${DURING} records are logged, then going on: ${title}`, async () => {
      const dir = tempDir()
      // The writer does not read this directory: what the producer copied stays there to be
      // counted, and receipts come only through the socket, behind the writer's pauses.
      const copies = join(dir, 'copies')
      const writer = await startWriterChild(dir, [], join(dir, 'app.log'), SLOW_MS)
      const producer = spawnAcrossStop(writer.endpoint, { ...PRODUCER, spoolDir: copies }, end === 'exit' ? 'exit' : 'close')
      const atStop = await logAcrossStop(writer, producer, copies)
      expect(atStop.seqs).toEqual(range(BEFORE, BEFORE + DURING))
      if (end !== 'close') {
        // The batches logged since the writer went on were sent, not copied, and wait for
        // receipts behind its pauses: stopped now, it has not written them all.
        writer.child.proc.kill('SIGSTOP')
        let missing: number[] = []
        let written = 0
        const covered = (): boolean => {
          // The spool read first: a record not in it then was written before.
          const found = new Set(readSpooled(copies).seqs)
          const inFile = seqsIn(writer.file)
          written = inFile.length
          for (const seq of inFile) found.add(seq)
          missing = range(0, TOTAL).filter((seq) => !found.has(seq))
          return missing.length === 0
        }
        const describeMissing = (): string => `not in the file nor the spool: ${missing.length} records (${missing.slice(0, 5).join(', ')}...)`
        try {
          if (end === 'exit') {
            expect(await exitCode(producer), producer.describe()).toBe(0)
            expect(covered(), describeMissing()).toBe(true)
          } else {
            await waitFor(covered, DEADLINE_MS, describeMissing)
          }
          expect(written).toBeLessThan(TOTAL)
        } finally {
          writer.child.proc.kill('SIGCONT')
        }
      }
      if (end !== 'exit') {
        producer.proc.stdin?.write('close\n')
        const done = await producer.waitForLine((l) => l.event === 'done', DEADLINE_MS)
        expect(await exitCode(producer), producer.describe()).toBe(0)
        expect(done.closeError).toBe(null)
        expect(done.stats).toMatchObject({ records: TOTAL, spooled: 0, spoolErrors: 0, abandoned: 0 })
        if (end === 'close') {
          // Before, every batch logged after the writer went on was copied too, until the last
          // copy had its receipt: behind a writer that receipts late, that was all of them.
          expect(done.stats.spoolCopies).toBe(atStop.entries)
          expect(readSpooled(copies)).toEqual(atStop)
        }
      }
      let records = 0
      if (end === 'exit') {
        // What was never sent is only in the spool: a writer that reads it writes the rest.
        records += (await writer.stop()).records
        const reader = await startWriterChild(dir, ['--spool-dir', copies])
        await waitFor(() => lineCount(writer.file) >= TOTAL, DEADLINE_MS, () => `${lineCount(writer.file)} of ${TOTAL} lines`)
        const summary = await reader.stop({ spoolTaken: true })
        expect(summary).toMatchObject({ rejected: {}, spool: { torn: 0, rejected: 0 } })
        records += summary.records
      } else {
        await waitFor(() => lineCount(writer.file) >= TOTAL, DEADLINE_MS, () => `${lineCount(writer.file)} of ${TOTAL} lines`)
        const summary = await writer.stop()
        expect(summary).toMatchObject({ duplicates: 0, rejected: {} })
        records += summary.records
      }
      expect(records).toBe(TOTAL)
      expect(await verifyFile(writer.file)).toMatchObject({ lines: TOTAL, producers: 1, gaps: 0, duplicates: 0, reordered: 0, torn: 0, ok: true })
      expect(seqsIn(writer.file)).toEqual(range(0, TOTAL))
    })
  }
}, 180_000)
