import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { beforeAll, describe, expect, it } from 'vitest'
import { checkIntegrity, describeDefects } from '../bench/integrity.js'
import { STRATEGIES, needsWriter, writesFile } from '../bench/strategies.js'
import { BIN, ROOT, exitCode, spawnNode, tempDir } from './helpers/children.js'

// The harness runs from dist/, like `logfunnel bench`: its producer script and startWriter's
// writer are compiled files next to it. The types come from the source.
const { runOnce } = await import(pathToFileURL(join(ROOT, 'dist', 'bench', 'run-once.js')).href) as typeof import('../bench/run-once.js')
const { runIngestOnce } = await import(pathToFileURL(join(ROOT, 'dist', 'bench', 'ingest.js')).href) as typeof import('../bench/ingest.js')

const PRODUCERS = 2
const RECORDS = 500
const TOTAL = PRODUCERS * RECORDS

// funnel-checkpoints is funnel's harness with one writer option; its checkpoint lines are the writer's own, not records.
// rsyslog needs Debian's rsyslogd: test/bench-rsyslog.test.ts.
describe.each(STRATEGIES.filter((s) => s !== 'funnel-checkpoints' && s !== 'rsyslog'))(`harness, %s: ${PRODUCERS} producers x ${RECORDS} records of 100 B`, (strategy) => {
  it('counts every record and finds the file clean', async () => {
    const sample = await runOnce({ strategy, producers: PRODUCERS, records: RECORDS, recordBytes: 100, dir: tempDir() })
    expect(sample.records).toBe(TOTAL)
    expect(sample.latencyUs.count).toBe(TOTAL)
    if (writesFile(strategy)) {
      expect(sample.integrity).toEqual({
        lines: TOTAL, producers: PRODUCERS, unkeyed: 0, torn: 0, lost: 0, duplicated: 0, reordered: 0, ok: true, examples: []
      })
      // The producers' own byte count must match the file to the byte (it stands in for null's).
      expect(sample.fileBytes).toBe(sample.loggedBytes)
    } else {
      expect(sample.integrity).toBeNull()
      expect(sample.fileBytes).toBeNull()
      expect(sample.bytes).toBe(sample.loggedBytes)
    }
    if (needsWriter(strategy)) {
      expect(sample.writerSummary).toMatchObject({ records: TOTAL, bytes: sample.fileBytes, duplicates: 0, producers: PRODUCERS, rejected: {} })
      expect(sample.writerRssMb).toBeGreaterThan(0)
    } else {
      expect(sample.writerSummary).toBeNull()
      expect(sample.writerRssMb).toBeNull()
    }
  })
}, 60_000)

describe('harness, a timed run: funnel, 2 producers logging for 300 ms', () => {
  it('counts what the producers logged and finds every record in the file once', async () => {
    const sample = await runOnce({ strategy: 'funnel', producers: PRODUCERS, durationMs: 300, recordBytes: 100, dir: tempDir() })
    expect(sample.records).toBeGreaterThan(0)
    expect(sample.latencyUs.count).toBe(sample.records)
    expect(sample.integrity).toMatchObject({ lines: sample.records, producers: PRODUCERS, torn: 0, lost: 0, duplicated: 0, reordered: 0, ok: true })
    expect(sample.fileBytes).toBe(sample.loggedBytes)
    expect(sample.writerSummary).toMatchObject({ records: sample.records, bytes: sample.fileBytes, duplicates: 0 })
    expect(sample.producerCpuUsPerRecord + sample.writerCpuUsPerRecord).toBeCloseTo(sample.cpuSecPerMillion, 6)
  })
}, 60_000)

describe('harness, writer-ingest: 2 pushers x 1 MiB of 64 KiB frames', () => {
  it('gets every byte into the file, whole and in order', async () => {
    const sample = await runIngestOnce({ pushers: 2, totalBytes: 2 ** 20, dir: tempDir() })
    expect(sample.bytes).toBe(2 ** 20)
    // 1 KiB lines: 1024 records, in 16 frames with no receipt (plain frames).
    expect(sample.summary).toMatchObject({ records: 1024, bytes: 2 ** 20, batches: 16, duplicates: 0, rejected: {} })
    expect(sample.defects).toEqual({ torn: 0, lost: 0, duplicated: 0, reordered: 0 })
  })
}, 60_000)

describe('a corrupted output file is flagged with exact counts', () => {
  let lines: string[] = []

  beforeAll(async () => {
    const sample = await runOnce({ strategy: 'flock', producers: PRODUCERS, records: RECORDS, recordBytes: 100, dir: tempDir(), keepFile: true })
    expect(sample.integrity?.ok).toBe(true)
    lines = readFileSync(sample.file as string, 'utf8').split('\n').slice(0, -1)
    expect(lines).toHaveLength(TOTAL)
  }, 60_000)

  /** Index of the next line of the same producer after line `i`. */
  const nextOfSameProducer = (i: number): number => {
    const pid = (JSON.parse(lines[i] as string) as { pid: number }).pid
    return lines.findIndex((line, j) => j > i && (JSON.parse(line) as { pid: number }).pid === pid)
  }

  const cases: Array<[string, (l: string[]) => string[], object, string]> = [
    ['a line cut in half', (l) => l.map((line, i) => i === 100 ? line.slice(0, line.length >> 1) : line),
      { lines: TOTAL, torn: 1, lost: 1, duplicated: 0, reordered: 0 }, '1 torn, 1 lost'],
    ['a line written twice', (l) => [...l, l[200] as string],
      { lines: TOTAL + 1, torn: 0, lost: 0, duplicated: 1, reordered: 0 }, '1 duplicated'],
    ['the last line missing', (l) => l.slice(0, -1),
      { lines: TOTAL - 1, torn: 0, lost: 1, duplicated: 0, reordered: 0 }, '1 lost'],
    ['a line missing in the middle', (l) => l.filter((_line, i) => i !== 300),
      { lines: TOTAL - 1, torn: 0, lost: 1, duplicated: 0, reordered: 0 }, '1 lost'],
    ['two records of one producer swapped', (l) => {
      const a = 400
      const b = nextOfSameProducer(a)
      const out = [...l]
      out[a] = l[b] as string
      out[b] = l[a] as string
      return out
    }, { lines: TOTAL, torn: 0, lost: 0, duplicated: 0, reordered: 1 }, '1 reordered'],
    ['two lines interleaved into one', (l) => [
      ...l.slice(0, 500), `${(l[500] as string).slice(0, 40)}${l[501] as string}`, (l[500] as string).slice(40), ...l.slice(502)
    ], { lines: TOTAL, torn: 2, lost: 2, duplicated: 0, reordered: 0 }, '2 torn, 2 lost'],
    ['the file cut mid-line', (l) => [...l.slice(0, -1), (l[l.length - 1] as string).slice(0, 30)],
      { lines: TOTAL, torn: 1, lost: 1, duplicated: 0, reordered: 0 }, '1 torn, 1 lost']
  ]

  it.each(cases)('%s', async (name, corrupt, expected, described) => {
    const out = corrupt(lines)
    const file = join(tempDir(), 'app.log')
    // "cut mid-line" must end without its newline: the torn tail of a crashed writer.
    writeFileSync(file, name === 'the file cut mid-line' ? out.join('\n') : `${out.join('\n')}\n`)
    const integrity = await checkIntegrity(file, TOTAL)
    expect(integrity).toMatchObject({ ...expected, ok: false })
    expect(describeDefects(integrity)).toBe(described)
  })
})

describe('logfunnel bench (CLI)', () => {
  it('runs null and funnel and writes JSON of the documented shape and an SVG', async () => {
    const dir = tempDir()
    const json = join(dir, 'out.json')
    const svg = join(dir, 'out.svg')
    const child = spawnNode([BIN, 'bench', '--strategies', 'null,funnel', '--producers', '1', '--records', '200',
      '--size', '100', '--repeat', '1', '--dir', dir, '--json', json, '--svg', svg])
    expect(await exitCode(child, 60_000), child.describe()).toBe(0)
    expect(child.stdout()).toContain('| funnel | batch | 1 | 100 | 200 |')
    expect(child.stdout()).toContain('| zero defects for funnel (every cell, every run) | 0 defects in 1 cells | met |')

    const report = JSON.parse(readFileSync(json, 'utf8'))
    expect(report.machine).toMatchObject({ cpuModel: expect.any(String), cores: expect.any(Number), node: process.version })
    expect(report.machine.filesystem.type).toEqual(expect.any(String))
    expect(report.ingest).toBeNull()
    const spreadShape = { median: expect.any(Number), min: expect.any(Number), max: expect.any(Number) }
    const common = {
      producers: 1,
      recordBytes: 100,
      recordsPerProducer: 200,
      durationMs: null,
      repeats: 1,
      warmup: 1,
      recordsPerSec: spreadShape,
      p99Us: spreadShape,
      cpuSecPerMillion: spreadShape,
      producerCpuUsPerRecord: spreadShape,
      writerCpuUsPerRecord: spreadShape
    }
    expect(report.results).toHaveLength(2)
    expect(report.results[0]).toMatchObject({
      ...common, strategy: 'funnel', verified: true, defective: false, defects: { torn: 0, lost: 0, duplicated: 0, reordered: 0 }
    })
    expect(report.results[1]).toMatchObject({
      ...common, strategy: 'null', verified: false, defective: false, defects: { torn: null, lost: null, duplicated: null, reordered: null }
    })
    expect(readFileSync(svg, 'utf8')).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/)
  }, 60_000)

  it('rejects an unknown strategy with exit 2 and LOGFUNNEL_ERR_USAGE', async () => {
    const child = spawnNode([BIN, 'bench', '--strategies', 'funnel,fast'])
    expect(await exitCode(child), child.describe()).toBe(2)
    expect(child.stderr()).toContain('LOGFUNNEL_ERR_USAGE')
  })
})
