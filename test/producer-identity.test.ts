import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { encodeHeader } from '../shared/protocol.js'
import { encodeSpoolEntry } from '../shared/spool.js'
import { stderrEvents, tempDir, waitFor } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'
import { rawPush } from './helpers/raw-push.js'

const lines = (file: string): string[] => existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []

/** Sends batches `from`..`to - 1` of one record each, tagged `who`, with the given base (default 0). */
async function sendBatches (push: ReturnType<typeof rawPush>, producerId: Buffer, who: string, from: number, to: number, base = (_seq: number) => 0): Promise<void> {
  for (let seq = from; seq < to; seq++) {
    await push.send([encodeHeader({ records: 1, seq, base: base(seq), producerId }), Buffer.from(`{"who":"${who}","seq":${seq},"pid":${process.pid}}\n`)])
  }
}

describe('one producer id, two senders (issue 13, point 6)', () => {
  it('a batch whose base skips past batches never received is refused and reported; the victim\'s next batches are written', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const victimId = randomBytes(16)
    const victim = rawPush(writer.endpoint)
    await sendBatches(victim, victimId, 'victim', 0, 10)
    await waitFor(() => lines(writer.file).length >= 10, 10_000, () => `${lines(writer.file).length} lines`)

    // The id is visible to any subscriber of the receipt socket: one forged header claims 140 receipts.
    const forger = rawPush(writer.endpoint)
    await sendBatches(forger, victimId, 'forger', 150, 151, () => 150)
    await waitFor(() => stderrEvents(writer.child, 'producer-conflict').length > 0, 10_000, () => writer.child.stderr())

    await sendBatches(victim, victimId, 'victim', 10, 20, (seq) => seq - 2)
    await waitFor(() => lines(writer.file).length >= 20, 10_000, () => `${lines(writer.file).length} lines`)
    const summary = await writer.stop()
    expect(summary).toMatchObject({ records: 20, duplicates: 0, conflicts: 1, rejected: { base_skip: 1 } })
    expect(lines(writer.file).map((l) => JSON.parse(l).who)).toEqual(Array(20).fill('victim'))
    expect(stderrEvents(writer.child, 'producer-conflict')).toEqual([
      { event: 'producer-conflict', producerId: victimId.toString('hex'), kind: 'base_skip', seq: 150, base: 150, expected: 10 }
    ])
  })

  it('a second sender of an id whose batches are already written is detected by content: refused, counted, reported once', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const sharedId = randomBytes(16)
    const first = rawPush(writer.endpoint)
    await sendBatches(first, sharedId, 'first', 0, 10)
    await waitFor(() => lines(writer.file).length >= 10, 10_000, () => `${lines(writer.file).length} lines`)

    const second = rawPush(writer.endpoint)
    await sendBatches(second, sharedId, 'second', 0, 10)
    await waitFor(() => stderrEvents(writer.child, 'producer-conflict').length > 0, 10_000, () => writer.child.stderr())
    // The same batch again from the first sender is an ordinary resend.
    await sendBatches(first, sharedId, 'first', 9, 10)
    await sendBatches(first, sharedId, 'first', 10, 11)
    await waitFor(() => lines(writer.file).length >= 11, 10_000, () => `${lines(writer.file).length} lines`)
    const summary = await writer.stop()
    expect(summary).toMatchObject({ records: 11, duplicates: 1, conflicts: 10, rejected: { id_conflict: 10 } })
    expect(lines(writer.file).map((l) => JSON.parse(l).who)).toEqual(Array(11).fill('first'))
    expect(stderrEvents(writer.child, 'producer-conflict')).toEqual([
      { event: 'producer-conflict', producerId: sharedId.toString('hex'), kind: 'id_conflict', seq: 0, base: 0, expected: 10 }
    ])
  })
}, 60_000)

describe('a writer killed while a producer also copied batches to the spool', () => {
  it('batches of the spool written first, from a saved state older than the killed writer\'s receipts, do not make the producer\'s next batch a conflict', async () => {
    // What kill -9 can leave: the killed writer wrote and receipted batches 0..4, but its state
    // file was saved after batch 1 (it is saved every --state-persist-ms), and the producer had
    // copied batches 2 and 3 to the spool while the writer looked away. The next writer ingests
    // the copies first (written again: duplicates of a crash) and then gets the producer's batch
    // 5, whose base says it holds receipts through 4. Refusing it as another sender's would
    // leave the producer without a receipt for ever.
    const dir = tempDir()
    const producerId = randomBytes(16)
    const key = producerId.toString('hex')
    const now = Date.now()
    writeFileSync(join(dir, '.app.log.logfunnel-state.json'), `{"version":1,"savedAt":${now},"producers":{"${key}":{"next":2,"seen":${now}}}}\n`)
    mkdirSync(join(dir, 'w.sock.spool'))
    const copies = [2, 3].map((seq) => Buffer.concat(encodeSpoolEntry(encodeHeader({ records: 1, seq, base: 2, producerId }), Buffer.from(`{"who":"copy","seq":${seq}}\n`))))
    writeFileSync(join(dir, 'w.sock.spool', `${key}-1-0000000000.spool`), Buffer.concat(copies))

    const writer = await startWriterChild(dir)
    await waitFor(() => lines(writer.file).length >= 2, 10_000, () => `${lines(writer.file).length} lines`)
    const push = rawPush(writer.endpoint)
    await sendBatches(push, producerId, 'live', 5, 8, () => 5)
    await waitFor(() => lines(writer.file).length >= 5, 10_000, () => `${lines(writer.file).length} lines; ${writer.child.stderr()}`)
    const summary = await writer.stop()
    expect(summary).toMatchObject({ records: 5, conflicts: 0, rejected: {} })
    expect(lines(writer.file).map((l) => JSON.parse(l).seq)).toEqual([2, 3, 5, 6, 7])
    expect(stderrEvents(writer.child, 'producer-conflict')).toEqual([])
  })
})
