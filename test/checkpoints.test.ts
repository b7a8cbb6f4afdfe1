import { renameSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { chainHash } from '../shared/checkpoint-format.js'
import { verifyCheckpoints } from '../shared/verify-checkpoints.js'
import { tempDir } from './helpers/children.js'
import { runProducers, startWriterChild } from './helpers/cluster.js'
import { editLines, readLog, setFiles, verifyCli, writeLog } from './helpers/checkpoints.js'

const WRITER = ['--checkpoints', '--checkpoint-size', '1K', '--rotate-size', '4K', '--rotate-gzip']
const RECORDS = 720

/** Two producers log through a writer that rotates (gzip) 50 times or more (fewer files when a loaded machine grows the batches: hence 720 records each); it restarts halfway. */
async function writeSet (dir: string): Promise<string[]> {
  for (let run = 0; run < 2; run++) {
    const writer = await startWriterChild(dir, WRITER)
    await runProducers(2, { endpoint: writer.endpoint, records: RECORDS, sizes: [150, 200, 250], pauseEvery: 5, pauseMs: 2 })
    await writer.stop()
  }
  return setFiles(dir)
}

function only (report: any): any {
  expect(report.defects, JSON.stringify(report.defects)).toHaveLength(1)
  return report.defects[0]
}

describe('checkpoints over a rotated set written by a restarted writer', () => {
  it('verifies in any order; each tampering is found and located', async () => {
    const dir = tempDir()
    const files = await writeSet(dir)
    const gz = files.filter((f) => f.endsWith('.gz'))
    expect(gz.length).toBeGreaterThanOrEqual(50)

    const clean = await verifyCli([...files].reverse())
    expect(clean.code, JSON.stringify(clean.report.defects)).toBe(0)
    expect(clean.report).toMatchObject({ ok: true, files: files.length, defects: [], final: true, unprovenBytes: 0 })
    const lines = files.flatMap((f) => readLog(f).split('\n').filter((l) => l !== ''))
    const checkpoints = lines.filter((l) => l.includes('"logfunnel":"checkpoint"')).map((l) => JSON.parse(l))
    expect(clean.report.checkpoints).toBe(checkpoints.length)
    expect(lines.length - checkpoints.length).toBe(4 * RECORDS)
    // One chain over the restart (numbers run on), and every batch of both runs' producers is counted.
    expect(new Set(checkpoints.map((c) => c.writer)).size).toBe(1)
    expect(checkpoints.map((c) => c.n).sort((a, b) => a - b)).toEqual(checkpoints.map((_, i) => i))
    expect(checkpoints.filter((c) => c.at === 'start')).toHaveLength(2)
    const perProducer = checkpoints.flatMap((c) => Object.values(c.producers) as any[]).reduce((a, r) => a + r.records, 0)
    expect(perProducer).toBe(4 * RECORDS)

    const victim = gz[20] as string
    const saved = readLog(victim)
    const located = (d: any, kind: string, off: number): void => {
      expect(d).toMatchObject({ kind, file: victim })
      expect(d.from).toBeLessThanOrEqual(off)
      expect(d.to).toBeGreaterThan(off)
    }
    let off = editLines(victim, (ls, k) => ls.map((l, i) => i === k ? l.replace('xxxx', 'xxxy') : l))
    located(only(await verifyCheckpoints(files)), 'edited', off)
    writeLog(victim, saved)
    off = editLines(victim, (ls, k) => ls.filter((_, i) => i !== k))
    located(only(await verifyCheckpoints(files)), 'deleted', off)
    writeLog(victim, saved)
    off = editLines(victim, (ls, k) => [...ls.slice(0, k), ls[k] as string, ...ls.slice(k)])
    located(only(await verifyCheckpoints(files)), 'inserted', off)
    writeLog(victim, saved)

    writeLog(victim, saved.slice(0, Math.floor(saved.length / 2)))
    expect(only(await verifyCheckpoints(files))).toMatchObject({ kind: 'truncated', file: victim })
    writeLog(victim, saved)

    const holed = await verifyCli(files.filter((f) => f !== victim))
    expect(holed.code).toBe(1)
    expect(only(holed.report)).toMatchObject({ kind: 'missing-file', file: gz[21] })

    expect(only(await verifyCheckpoints([...files, victim]))).toMatchObject({ kind: 'doubled', file: victim })

    // Two rotated files' names swapped: the chain puts them the other way round.
    const other = gz[30] as string
    renameSync(victim, `${victim}.swap`)
    renameSync(other, victim)
    renameSync(`${victim}.swap`, other)
    const swapped = await verifyCli(files)
    expect(swapped.code).toBe(1)
    expect(swapped.report.defects.map((d: any) => [d.kind, d.file]).sort()).toEqual([['reordered', other], ['reordered', victim]].sort())
  })

  it('a forged checkpoint whose producer range skips a batch (hashes and chain recomputed, no seal): producer-range', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir, ['--checkpoints', '--checkpoint-size', '1K'])
    await runProducers(1, { endpoint: writer.endpoint, records: 300, sizes: [200], pauseEvery: 10, pauseMs: 2 })
    await writer.stop()
    const file = join(dir, 'app.log')
    expect((await verifyCli([file])).code).toBe(0)
    const lines = readLog(file).split('\n')
    const at = lines.map((l, i) => l.includes('"logfunnel":"checkpoint"') ? i : -1).filter((i) => i !== -1)
    const recs = at.map((i) => JSON.parse(lines[i] as string))
    // A checkpoint with a producer whose previous range is in the checkpoint before it.
    const k = recs.findIndex((r, j) => j > 0 && Object.keys(r.producers).some((p) => recs[j - 1].producers[p] !== undefined))
    expect(k).toBeGreaterThan(0)
    const producer = Object.keys(recs[k].producers).find((p) => recs[k - 1].producers[p] !== undefined) as string
    recs[k].producers[producer].from += 1
    lines[at[k] as number] = JSON.stringify(recs[k])
    for (let j = k + 1; j < recs.length; j++) {
      recs[j].prev = chainHash(Buffer.from(`${lines[at[j - 1] as number] as string}\n`))
      lines[at[j] as number] = JSON.stringify(recs[j])
    }
    writeLog(file, lines.join('\n'))
    const forged = await verifyCli([file])
    expect(forged.code).toBe(1)
    expect(only(forged.report)).toMatchObject({ kind: 'producer-range', file, checkpoint: recs[k].n })
  })

  it('a file moved away while the writer is down (logrotate): the restarted writer continues the chain from its side file', async () => {
    const dir = tempDir()
    const live = join(dir, 'app.log')
    for (let run = 0; run < 2; run++) {
      const writer = await startWriterChild(dir, ['--checkpoints'])
      await runProducers(2, { endpoint: writer.endpoint, records: 200 })
      await writer.stop()
      if (run === 0) renameSync(live, `${live}.1`)
    }
    const moved = `${live}.1`
    const first = readLog(moved).split('\n').filter((l) => l.includes('"logfunnel":"checkpoint"')).map((l) => JSON.parse(l))
    const second = readLog(live).split('\n').filter((l) => l.includes('"logfunnel":"checkpoint"')).map((l) => JSON.parse(l))
    expect([...first, ...second].map((c) => [c.writer, c.n])).toEqual([0, 1, 2, 3].map((n) => [first[0].writer, n]))
    const both = await verifyCli([live, moved])
    expect(both.code, JSON.stringify(both.report.defects)).toBe(0)
    expect(both.report).toMatchObject({ ok: true, files: 2, checkpoints: 4, defects: [], final: true })
  })
}, 60_000)
