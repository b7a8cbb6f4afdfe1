import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { parseSpoolName, parseSpoolPreamble } from '../shared/spool.js'
import { exitCode, fixture, lineCount, spawnNode, tempDir, waitFor } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'

/**
 * One process, several producers one after the other, their records spooled while the writer
 * is away: the writer takes them in the order the process made its producers (the preamble's
 * `made`), so the file has the process's lines in the order they were logged. Before, files went
 * by producer id, and ids are random: with 6 senders, 719 orders in 720 were wrong.
 */

const SENDERS = 6
const RECORDS = 200
/** Large: each close() ends once its records are in the spool, well before it. */
const CLOSE_DEADLINE_MS = 20_000
/** Options that differ from sender to sender ("funnel() with options X"). */
const VARIANTS = [{}, { maxBatchBytes: 4096 }, { onFull: 'spool', highWaterMark: 64 * 1024, maxFrameBytes: 64 * 1024 }, { spoolAfterMs: 50 }] as const

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
    const runs = lines.map((l) => l.sender).filter((s, i, all) => i === 0 || all[i - 1] !== s)
    expect(runs, writer.child.describe()).toEqual(Array.from({ length: SENDERS }, (_v, i) => i))
    expect(lines).toEqual(expected)
    // The process's count `n` read as one producer's sequence: none lost, twice or out of order.
    expect(await verifyFile(writer.file, { seqKey: 'n' })).toMatchObject({ lines: SENDERS * RECORDS, producers: 1, gaps: 0, duplicates: 0, reordered: 0, torn: 0, ok: true })
  })
})
