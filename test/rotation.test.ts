import { readFileSync, renameSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { listLogSet } from '../shared/log-set.js'
import { Verifier, verifyFiles, type VerifyReport } from '../shared/verify.js'
import { listRotated } from '../writer/sink/rotation.js'
import { tempDir, waitFor } from './helpers/children.js'
import { runProducers, startWriterChild } from './helpers/cluster.js'

/** Contents of a rotated or current file, gunzipped when needed. */
function contents (path: string): Buffer {
  const raw = readFileSync(path)
  return path.endsWith('.gz') ? gunzipSync(raw) : raw
}

/** Feeds the files, in the order given, through one Verifier: the union as one stream. */
function verifyUnion (paths: string[]): VerifyReport & { sizes: number[], unterminated: number } {
  const verifier = new Verifier()
  let lineNumber = 0
  let unterminated = 0
  const sizes: number[] = []
  for (const path of paths) {
    const data = contents(path)
    sizes.push(data.length)
    if (data.length > 0 && data[data.length - 1] !== 0x0a) unterminated++
    const text = data.toString('utf8')
    const lines = text.split('\n')
    const last = lines.pop() as string
    for (const line of lines) verifier.add(line, ++lineNumber)
    if (last !== '') verifier.add(last, ++lineNumber, false)
  }
  return { ...verifier.report(), sizes, unterminated }
}

const ROTATE_BYTES = 64 * 1024
const PRODUCER = { maxBatchBytes: 8192 }

describe.each([false, true])('8 producers while the file rotates by size (gzip %s)', (gzip) => {
  it('the rotated files and the current one hold every record exactly once, in order, no line split', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir, ['--rotate-size', '64K', ...(gzip ? ['--rotate-gzip'] : [])])
    await runProducers(8, { endpoint: writer.endpoint, records: 3000, producer: PRODUCER })
    const summary = await writer.stop({ spoolTaken: true })

    const rotated = await listRotated(writer.file)
    expect(summary.rotations).toBeGreaterThanOrEqual(20)
    expect(rotated).toHaveLength(summary.rotations)
    expect(rotated.every((path) => path.endsWith('.gz') === gzip)).toBe(true)
    const report = verifyUnion([...rotated, writer.file])
    expect(report).toMatchObject({ lines: 24_000, producers: 8, torn: 0, gaps: 0, duplicates: 0, reordered: 0, unterminated: 0 })
    expect(summary.records).toBe(24_000)
    expect(Math.max(...report.sizes)).toBeLessThanOrEqual(ROTATE_BYTES)
  })
})

describe('--rotate-keep 3', () => {
  it('keeps the 3 newest rotated files', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir, ['--rotate-size', '64K', '--rotate-keep', '3', '--rotate-gzip'])
    await runProducers(2, { endpoint: writer.endpoint, records: 3000, producer: PRODUCER })
    const summary = await writer.stop()

    expect(summary.rotations).toBeGreaterThan(3)
    const rotated = await listRotated(writer.file)
    expect(rotated).toHaveLength(3)
    const report = verifyUnion([...rotated, writer.file])
    expect(report).toMatchObject({ torn: 0, duplicates: 0, reordered: 0, unterminated: 0 })
    // Only the oldest records are gone: each producer's last record is there.
    expect(report.lines).toBeGreaterThan(0)
    // verify --from-first reads such a set from each producer's first record in it; from seq 0
    // it counts the records rotated away as lost.
    const set = await listLogSet(dir, 'app.log')
    const fromFirst = await verifyFiles(set.files, { fromFirst: true })
    expect(fromFirst).toMatchObject({ ok: true, lines: report.lines, gaps: 0 })
    // Each producer left in the set runs to its seq 2999: its lines are 3000 less its first seq.
    expect((await verifyFiles(set.files)).gaps).toBe(fromFirst.producers * 3000 - fromFirst.lines)
  })
})

describe('--rotate-interval', () => {
  it('rotates at the next interval boundary, between writes', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir, ['--rotate-interval', '1s'])
    await runProducers(2, { endpoint: writer.endpoint, records: 1000 })
    await waitFor(async () => (await listRotated(writer.file)).length === 1, 10_000, () => 'no rotated file')
    await runProducers(2, { endpoint: writer.endpoint, records: 1000 })
    const summary = await writer.stop({ spoolTaken: true })

    const rotated = await listRotated(writer.file)
    expect(rotated.length).toBe(summary.rotations)
    const report = verifyUnion([...rotated, writer.file])
    expect(report).toMatchObject({ lines: 4000, producers: 4, ok: true, unterminated: 0 })
  })

  it('rotates a file last written in an earlier interval at start', async () => {
    const dir = tempDir()
    const file = `${dir}/app.log`
    writeFileSync(file, '{"old":true}\n')
    const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000)
    utimesSync(file, twoDaysAgo, twoDaysAgo)
    const writer = await startWriterChild(dir, ['--rotate-interval', '1d'])
    await runProducers(1, { endpoint: writer.endpoint, records: 100 })
    const summary = await writer.stop({ spoolTaken: true })

    const rotated = await listRotated(file)
    expect(summary.rotations).toBe(1)
    expect(rotated.map((path) => readFileSync(path, 'utf8'))).toEqual(['{"old":true}\n'])
    expect(verifyUnion([file])).toMatchObject({ lines: 100, ok: true })
  })
})

describe('SIGHUP with rotation enabled (logrotate create mode)', () => {
  it('reopens the file by path; the renamed file and the new one hold every record once', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir, ['--rotate-size', '1M'])
    await runProducers(2, { endpoint: writer.endpoint, records: 2000 })
    renameSync(writer.file, `${writer.file}.manual`)
    writer.child.proc.kill('SIGHUP')
    await runProducers(2, { endpoint: writer.endpoint, records: 2000 })
    const summary = await writer.stop({ spoolTaken: true })

    expect(statSync(writer.file).size).toBeGreaterThan(0)
    const report = verifyUnion([`${writer.file}.manual`, ...(await listRotated(writer.file)), writer.file])
    expect(report).toMatchObject({ lines: 8000, producers: 4, ok: true, unterminated: 0 })
    expect(summary.records).toBe(8000)
  })
})
