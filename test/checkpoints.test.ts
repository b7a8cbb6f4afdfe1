import { renameSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { chainHash, newHasher, preferredAlg } from '../shared/checkpoint-format.js'
import { verifyCheckpoints } from '../shared/verify-checkpoints.js'
import { BIN, exitCode, ROOT, spawnNode, tempDir } from './helpers/children.js'
import { startWriterWith } from './helpers/writer-cli.js'
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

describe('the checkpoint hash', () => {
  it('is BLAKE3: the official test vectors (input 0, 1, 2, ... 250 repeated), whole and fed in uneven pieces', () => {
    const vectors: Array<[number, string]> = [
      [0, 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262'],
      [1025, 'd00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444'],
      [4097, '9b4052b38f1c5fc8b1f9ff7ac7b27cd242487b3d890d15c96a1c25b8aa0fb995'],
      [7169, 'a003fc7a51754a9b3c7fae0367ab3d782dccf28855a03d435f8cfe74605e7817']
    ]
    expect(preferredAlg()).toBe('blake3')
    for (const [len, hex] of vectors) {
      const input = Buffer.from(Array.from({ length: len }, (_v, i) => i % 251))
      const whole = newHasher('blake3')
      whole.update(input)
      const pieces = newHasher('blake3')
      for (let at = 0; at < len; at += 1000) pieces.update(input.subarray(at, at + 1000))
      expect([whole.digest(), pieces.digest()], `${len} bytes`).toEqual([hex, hex])
    }
  })

  it('where BLAKE3 cannot load: the writer hashes with sha256 (lines without alg), and verify of a BLAKE3 line fails with LOGFUNNEL_ERR_MISSING_DEPENDENCY, exit 2', async () => {
    const env = { NODE_OPTIONS: `--require ${join(ROOT, 'test', 'fixtures', 'no-blake3.cjs')}` }
    const dir = tempDir()
    const file = join(dir, 'app.log')
    const writer = await startWriterWith(['--file', file, '--endpoint', `ipc://${join(dir, 'w.sock')}`, '--checkpoints'], env)
    await runProducers(1, { endpoint: `ipc://${join(dir, 'w.sock')}`, records: 100 })
    await writer.stop()
    const cps = readLog(file).split('\n').filter((l) => l.includes('"logfunnel":"checkpoint"'))
    expect(cps).toHaveLength(2)
    expect(cps.some((l) => l.includes('"alg"'))).toBe(false)
    expect((await verifyCli([file])).code).toBe(0)

    const other = join(tempDir(), 'app.log')
    const blake = await startWriterChild(dirname(other), ['--checkpoints'])
    await runProducers(1, { endpoint: blake.endpoint, records: 100 })
    await blake.stop()
    const child = spawnNode([BIN, 'verify', '--checkpoints', other], { env: { ...process.env, ...env } })
    expect(await exitCode(child), child.describe()).toBe(2)
    expect(child.stderr()).toMatch(/^logfunnel: LOGFUNNEL_ERR_MISSING_DEPENDENCY: .*@napi-rs\/blake-hash/)
  })
})

describe('checkpoints over a rotated set written by a restarted writer', () => {
  it('verifies in any order; each tampering is found and located', async () => {
    const dir = tempDir()
    const files = await writeSet(dir)
    const gz = files.filter((f) => f.endsWith('.gz'))
    // About 100 on a quiet machine; under load batches grow and files fill in fewer writes (fewer
    // than 35 seen at a load average of 10): the files tampered with are taken by their place in
    // the set: the victim (and the one after it) a third of the way in, the other two thirds in.
    expect(gz.length).toBeGreaterThanOrEqual(8)
    const [at, otherAt] = [Math.floor(gz.length / 3), Math.floor(gz.length * 2 / 3)]

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

    const victim = gz[at] as string
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
    expect(only(holed.report)).toMatchObject({ kind: 'missing-file', file: gz[at + 1] })

    expect(only(await verifyCheckpoints([...files, victim]))).toMatchObject({ kind: 'doubled', file: victim })

    // A line added to the current file after the writer's stop checkpoint: no writer wrote it (a
    // writer that starts again writes its start checkpoint first), so it is not an unproven tail.
    const current = join(dir, 'app.log')
    const stopped = readLog(current)
    const forged = '{"level":30,"time":1,"pid":1,"seq":0,"msg":"added"}\n'
    writeLog(current, stopped + forged)
    const added = await verifyCli(files)
    expect(added.code).toBe(1)
    expect(only(added.report)).toMatchObject({ kind: 'trailing', file: current, from: Buffer.byteLength(stopped), to: Buffer.byteLength(stopped + forged) })
    expect(added.report).toMatchObject({ final: true, unprovenBytes: 0 })
    writeLog(current, stopped)

    // Two rotated files' names swapped: the chain puts them the other way round.
    const other = gz[otherAt] as string
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
      recs[j].prev = chainHash(Buffer.from(`${lines[at[j - 1] as number] as string}\n`), recs[j - 1].alg ?? 'sha256')
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

  it('logrotate\'s create without a SIGHUP, the writer idle until its stop: the new file is empty, and no defect', async () => {
    const dir = tempDir()
    const live = join(dir, 'app.log')
    const writer = await startWriterChild(dir, ['--checkpoints'])
    await runProducers(2, { endpoint: writer.endpoint, records: 200 })
    // Nothing written after the rename: the writer never looks at the path again, and its stop
    // checkpoint ends the renamed file.
    renameSync(live, `${live}.1`)
    writeFileSync(live, '')
    await writer.stop()
    const set = await verifyCli([live, `${live}.1`])
    expect(set.code, JSON.stringify(set.report.defects)).toBe(0)
    expect(set.report).toMatchObject({ ok: true, files: 2, checkpoints: 2, defects: [], final: true, unprovenBytes: 0 })
    expect(readLog(live)).toBe('')
  })

  it('a chain begun by a writer that hashed with sha256 (lines without alg) is continued with BLAKE3 and verifies; an edit in either part is found', async () => {
    const dir = tempDir()
    const file = join(dir, 'app.log')
    let writer = await startWriterChild(dir, ['--checkpoints', '--checkpoint-size', '4K'])
    await runProducers(2, { endpoint: writer.endpoint, records: 200, sizes: [200] })
    await writer.stop()
    expect(readLog(file)).toContain('"alg":"blake3"')
    writeLog(file, asSha256Writer(readLog(file)))  // what the first version of the writer wrote
    expect(readLog(file)).not.toContain('"alg"')
    expect((await verifyCli([file])).code).toBe(0)
    writer = await startWriterChild(dir, ['--checkpoints', '--checkpoint-size', '4K'])
    await runProducers(2, { endpoint: writer.endpoint, records: 200, sizes: [200] })
    await writer.stop()
    const cps = readLog(file).split('\n').filter((l) => l.includes('"logfunnel":"checkpoint"')).map((l) => JSON.parse(l))
    const firstNew = cps.findIndex((c) => c.alg === 'blake3')
    expect(firstNew).toBeGreaterThan(1)
    expect(cps.slice(firstNew).every((c) => c.alg === 'blake3' && c.writer === cps[0].writer)).toBe(true)
    expect(cps.map((c) => c.n)).toEqual(cps.map((_c, i) => i))
    const report = await verifyCli([file])
    expect(report.code, JSON.stringify(report.report.defects)).toBe(0)
    expect(report.report).toMatchObject({ ok: true, checkpoints: cps.length, defects: [], final: true })
    const text = readLog(file)
    for (const [part, at] of [['sha256', text.indexOf('x'.repeat(50))], ['blake3', text.lastIndexOf('x'.repeat(50))]] as const) {
      writeLog(file, text.slice(0, at) + 'y' + text.slice(at + 1))
      const edited = await verifyCli([file])
      expect(edited.code, part).toBe(1)
      expect(only(edited.report).kind, part).toBe('edited')
    }
  })
}, 60_000)

/** The same file as a writer that hashed with sha256 would have written it: each checkpoint without `alg`, its `hash` and `prev` by sha256 (no seal). */
function asSha256Writer (text: string): string {
  const out: string[] = []
  let seg: string[] = []
  let prevLine: string | undefined
  for (const line of text.split('\n').slice(0, -1)) {
    if (!line.includes('"logfunnel":"checkpoint"')) {
      seg.push(`${line}\n`)
      continue
    }
    const { alg: _alg, ...rec } = JSON.parse(line)
    const hash = newHasher('sha256')
    hash.update(Buffer.from(seg.join('')))
    rec.hash = hash.digest()
    rec.prev = prevLine === undefined ? null : chainHash(Buffer.from(`${prevLine}\n`), 'sha256')
    prevLine = JSON.stringify(rec)
    out.push(...seg, `${prevLine}\n`)
    seg = []
  }
  return out.join('') + seg.join('')
}
