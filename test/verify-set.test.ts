import { readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { orderLogSet } from '../shared/log-set.js'
import { verifyFiles } from '../shared/verify.js'
import { formatReport } from '../shared/verify-format.js'
import { BIN, exitCode, once, spawnNode, tempDir } from './helpers/children.js'

const PIDS = [101, 102]
const PER_PRODUCER = 600
const T0 = 1_700_000_000_000

/** Records of PIDS, seq 0..PER_PRODUCER-1 interleaved, time rising per producer. */
function records (withSeq = true): string[] {
  const lines: string[] = []
  for (let seq = 0; seq < PER_PRODUCER; seq++) {
    for (const pid of PIDS) lines.push(JSON.stringify({ level: 30, time: T0 + seq, pid, ...(withSeq ? { seq } : {}), msg: 'r' }))
  }
  return lines
}

/** Writes `lines` split evenly over `names` (oldest first); names ending in .gz are gzipped. */
function writeSet (dir: string, names: string[], lines: string[]): string[] {
  const per = Math.ceil(lines.length / names.length)
  return names.map((name, i) => {
    const text = lines.slice(i * per, (i + 1) * per).map((line) => `${line}\n`).join('')
    const path = join(dir, name)
    writeFileSync(path, name.endsWith('.gz') ? gzipSync(text) : text)
    return path
  })
}

async function cli (args: string[]): Promise<{ code: number | string, report: any, describe: string }> {
  const child = spawnNode([BIN, 'verify', '--json', ...args])
  const closed = once(child.proc, 'close')
  const code = await exitCode(child)
  await closed
  let report: any
  try { report = JSON.parse(child.stdout()) } catch { report = undefined }
  return { code, report, describe: child.describe() }
}

const TOTAL = PIDS.length * PER_PRODUCER
const CLEAN = { lines: TOTAL, producers: 2, torn: 0, gaps: 0, duplicates: 0, reordered: 0, timeBackwards: 0, missing: 0, extra: 0, missingFiles: 0, ok: true }

const SETS: Array<[string, string[]]> = [
  ['logrotate plain', ['app.log.3', 'app.log.2', 'app.log.1', 'app.log']],
  ['logrotate gz', ['app.log.3.gz', 'app.log.2.gz', 'app.log.1.gz', 'app.log']],
  ['logrotate mixed (delaycompress)', ['app.log.3.gz', 'app.log.2.gz', 'app.log.1', 'app.log']],
  ['12 numbered files (10 sorts after 9)', [...Array.from({ length: 12 }, (_, i) => `app.log.${12 - i}`), 'app.log']],
  ['built-in names, gz and plain', ['app.log.20240501T120000.123Z.gz', 'app.log.20240501T120001.000Z.gz', 'app.log.20240501T130000.000Z', 'app.log']],
  ['logrotate dateext', ['app.log-20240501.gz', 'app.log-20240502', 'app.log']]
]

describe('verify a rotated set as one log', () => {
  for (const [name, names] of SETS) {
    it(`${name}: files given in glob order are read oldest first, clean`, async () => {
      const dir = tempDir()
      const paths = writeSet(dir, names, records())
      const globbed = [...paths].sort()
      expect(orderLogSet(globbed)).toEqual({ files: paths, missing: [], byName: true })
      const run = await cli(globbed)
      expect(run.code, run.describe).toBe(0)
      expect(run.report).toMatchObject(CLEAN)
    })
  }

  it('app.log* with the writer\'s side files in it (a crash\'s app.log.torn, a gzip in progress): they are left out, the set is clean', async () => {
    const dir = tempDir()
    const names = ['app.log.20240501T120000.123Z.gz', 'app.log.20240501T120001.000Z', 'app.log']
    writeSet(dir, names, records())
    writeFileSync(join(dir, 'app.log.torn'), '{"level":30,"pid":101,"se\n')
    writeFileSync(join(dir, 'app.log.torn.0a1b2c3d4e5f'), '{"level":30,"pid":102,"se\n')
    writeFileSync(join(dir, 'app.log.20240501T120001.000Z.gz.tmp'), gzipSync('{"level":30,"pid":101,"seq":0}\n').subarray(0, 12))
    const globbed = readdirSync(dir).filter((n) => n.startsWith('app.log')).sort().map((n) => join(dir, n))
    expect(globbed).toHaveLength(6)
    // Before, the three files had no base in common with the set, so it was read in the order
    // given, app.log first: torn lines, and records reordered.
    expect(orderLogSet(globbed).files).toEqual(names.map((n) => join(dir, n)))
    const run = await cli(['--expect', String(PER_PRODUCER), ...globbed])
    expect(run.code, run.describe).toBe(0)
    expect(run.report).toMatchObject(CLEAN)
  })

  it('--dir --base finds the set and skips other files in the directory', async () => {
    const dir = tempDir()
    writeSet(dir, ['app.log.2.gz', 'app.log.1', 'app.log'], records())
    for (const other of ['app.log.state.json', 'app.log.torn', 'app.log.1.gz.tmp', 'other.log']) writeFileSync(join(dir, other), 'x\n')
    const run = await cli(['--dir', dir, '--base', 'app.log', '--expect', String(PER_PRODUCER)])
    expect(run.code, run.describe).toBe(0)
    expect(run.report).toMatchObject(CLEAN)
  })

  it('the current file alone shows gaps: why a rotated set must be read whole', async () => {
    const dir = tempDir()
    const paths = writeSet(dir, ['app.log.1', 'app.log'], records())
    const run = await cli([paths[1]!])
    expect(run.code, run.describe).toBe(1)
    expect(run.report).toMatchObject({ lines: TOTAL / 2, gaps: TOTAL / 2, ok: false })
  })

  it('a numbered file missing from the middle: counted, and its records are gaps', async () => {
    const dir = tempDir()
    const paths = writeSet(dir, ['app.log.3.gz', 'app.log.2.gz', 'app.log.1', 'app.log'], records())
    rmSync(paths[1]!)
    const run = await cli(['--dir', dir, '--base', 'app.log'])
    expect(run.code, run.describe).toBe(1)
    expect(run.report).toMatchObject({ lines: TOTAL * 3 / 4, gaps: TOTAL / 4, missingFiles: 1, torn: 0, duplicates: 0, reordered: 0, ok: false })
    expect(run.report.examples[0]).toBe('missing rotated file: app.log.2')
  })

  it('a lost tail: invisible to sequence checks, counted with --expect', async () => {
    const dir = tempDir()
    const lost = 7
    const lines = records().filter((line) => { const r = JSON.parse(line); return !(r.pid === 102 && r.seq >= PER_PRODUCER - lost) })
    writeSet(dir, ['app.log.1.gz', 'app.log'], lines)
    const without = await cli(['--dir', dir, '--base', 'app.log'])
    expect(without.code, without.describe).toBe(0)
    const run = await cli(['--dir', dir, '--base', 'app.log', '--expect', String(PER_PRODUCER)])
    expect(run.code, run.describe).toBe(1)
    expect(run.report).toMatchObject({ lines: TOTAL - lost, gaps: 0, missing: lost, extra: 0, ok: false })
    expect(run.report.examples).toEqual([`producer 102: ${lost} of ${PER_PRODUCER} expected records missing`])
  })

  it('a torn line and a file ending without a newline, named by file and line', async () => {
    const dir = tempDir()
    const [older, current] = writeSet(dir, ['app.log.1', 'app.log'], records())
    writeFileSync(older!, '{"pid":101,"se\n', { flag: 'a' })
    writeFileSync(current!, '{"pid":102', { flag: 'a' })
    const report = await verifyFiles([older!, current!])
    expect(report).toMatchObject({ lines: TOTAL + 2, torn: 2, gaps: 0 })
    expect(report.examples).toEqual([`app.log.1 line ${TOTAL / 2 + 1}: torn (not one JSON object)`, `app.log line ${TOTAL / 2 + 1}: torn (no trailing newline)`])
  })
})

describe('verify logs without a sequence counter', () => {
  it('clean: every record counted per producer and in total', async () => {
    const dir = tempDir()
    writeSet(dir, ['app.log.1.gz', 'app.log'], records(false))
    const run = await cli(['--dir', dir, '--base', 'app.log', '--expect', String(PER_PRODUCER), '--expect-total', String(TOTAL)])
    expect(run.code, run.describe).toBe(0)
    expect(run.report).toMatchObject({ ...CLEAN, unkeyed: TOTAL })
  })

  it('time going back, invalid JSON and a torn line, missing records: exact counts', async () => {
    const dir = tempDir()
    const lines = records(false)
    // Swap two records of pid 101 (time T0+10 and T0+11): one step back in time.
    const a = lines.findIndex((l) => l.includes(`"time":${T0 + 10},"pid":101`))
    const b = lines.findIndex((l) => l.includes(`"time":${T0 + 11},"pid":101`))
    ;[lines[a], lines[b]] = [lines[b]!, lines[a]!]
    lines.splice(100, 3) // 3 records lost (2 of pid 101, 1 of 102)
    lines.push('not json at all', '{"pid":101,"time":', JSON.stringify({ pid: 102, time: T0 + PER_PRODUCER, msg: 'extra' }))
    const path = writeSet(dir, ['app.log'], lines)[0]!
    const run = await cli([path, '--expect', String(PER_PRODUCER), '--expect-total', String(TOTAL)])
    expect(run.code, run.describe).toBe(1)
    // Counts are net: the extra record of 102 makes up for its lost one, in both checks. Each
    // check finds pid 101's 2 lost records; they are 2 missing, not 4 (before, the checks' sum).
    expect(run.report).toMatchObject({
      lines: TOTAL - 3 + 3, torn: 2, timeBackwards: 1, missing: 2, extra: 0, ok: false,
      checks: { expect: { missing: 2, extra: 0 }, expectTotal: { missing: 2, extra: 0 } }
    })
    expect(run.report.examples.slice(-2)).toEqual([`producer 101: 2 of ${PER_PRODUCER} expected records missing`, `in total: 2 of ${TOTAL} expected records missing`])
    expect(formatReport(run.report).split('\n')[0]).toContain('1 time backwards, 2 missing (--expect 2, --expect-total 2), 0 extra, 0 missing files')
  })

  it('a producer absent from the log: only --expect-total sees its records, counted once with those the producers present lack', async () => {
    const dir = tempDir()
    const lost = 5
    // pid 103 wrote nothing that arrived; pid 102 lost its last 5 records.
    const lines = records(false).filter((line) => { const r = JSON.parse(line); return !(r.pid === 102 && r.time >= T0 + PER_PRODUCER - lost) })
    const path = writeSet(dir, ['app.log'], lines)[0]!
    const run = await cli([path, '--expect', String(PER_PRODUCER), '--expect-total', String(TOTAL + PER_PRODUCER)])
    expect(run.code, run.describe).toBe(1)
    expect(run.report).toMatchObject({
      lines: TOTAL - lost, missing: PER_PRODUCER + lost, extra: 0, ok: false,
      checks: { expect: { missing: lost, extra: 0 }, expectTotal: { missing: PER_PRODUCER + lost, extra: 0 } }
    })
  })

  it('--key picks the producer: worker threads share a pid but not a thread id', async () => {
    const dir = tempDir()
    const lines: string[] = []
    // Two threads of one process; thread 2 started later, so the pid's time goes back and forth.
    for (let i = 0; i < 100; i++) {
      lines.push(JSON.stringify({ pid: 7, thread: 1, time: T0 + 2 * i + 1 }), JSON.stringify({ pid: 7, thread: 2, time: T0 + i }))
    }
    const path = writeSet(dir, ['app.log'], lines)[0]!
    const byPid = await cli([path, '--expect', '200'])
    expect(byPid.report).toMatchObject({ producers: 1, timeBackwards: 100, missing: 0 })
    const byThread = await cli([path, '--key', 'thread', '--expect', '100'])
    expect(byThread.code, byThread.describe).toBe(0)
    expect(byThread.report).toMatchObject({ producers: 2, timeBackwards: 0, missing: 0, extra: 0, ok: true })
  })
})
