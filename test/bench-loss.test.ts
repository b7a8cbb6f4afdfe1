import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { STRATEGIES, needsWriter, writesFile } from '../bench/strategies.js'
import { BIN, ROOT, exitCode, spawnNode, tempDir } from './helpers/children.js'

// Like bench.test.ts: the harness runs from dist/, where its producer script and the writer are.
const { runExitOnce } = await import(pathToFileURL(join(ROOT, 'dist', 'bench', 'exit-run.js')).href) as typeof import('../bench/exit-run.js')
const { runRestartOnce } = await import(pathToFileURL(join(ROOT, 'dist', 'bench', 'restart-run.js')).href) as typeof import('../bench/restart-run.js')

const PRODUCERS = 2
const RECORDS = 300
const TOTAL = PRODUCERS * RECORDS
const CLEAN = { lines: TOTAL, producers: PRODUCERS, unkeyed: 0, torn: 0, lost: 0, duplicated: 0, reordered: 0, ok: true, examples: [] }

// flock and append write synchronously; pino's exit handler waits (up to 10 s) for the
// pino/file worker; funnel and funnel-transport spool at exit and the writer ingests the spool.
// rsyslog is a throughput peer only: the loss scenarios do not start an rsyslogd.
describe.each(STRATEGIES.filter(writesFile).filter((s) => s !== 'funnel-nofsync' && s !== 'funnel-checkpoints' && s !== 'rsyslog'))(`exit scenario, %s: ${PRODUCERS} producers x ${RECORDS} records, process.exit() after the last log call`, (strategy) => {
  it('the file holds every record once: 0 lost, 0 duplicated', async () => {
    const sample = await runExitOnce({ strategy, producers: PRODUCERS, records: RECORDS, recordBytes: 100, dir: tempDir() })
    expect(sample.failedExits).toEqual([])
    expect(sample.integrity).toEqual(CLEAN)
    expect(sample.complete).toBe(true)
    expect(sample.fileBytes).toBe(sample.expectedBytes)
    if (needsWriter(strategy)) {
      expect(sample.writerSummary).toMatchObject({ records: TOTAL, bytes: sample.fileBytes, rejected: {}, spool: { torn: 0 } })
    } else {
      expect(sample.writerSummary).toBeNull()
    }
  })
}, 60_000)

describe.each(STRATEGIES.filter(needsWriter).filter((s) => s !== 'funnel-nofsync' && s !== 'funnel-checkpoints'))(`restart scenario, %s: ${PRODUCERS} producers x ${RECORDS} records, 1 graceful writer restart`, (strategy) => {
  it('0 lost, 0 duplicated, and the two writers wrote every record once between them', async () => {
    const sample = await runRestartOnce({ strategy, producers: PRODUCERS, records: RECORDS, recordBytes: 100, dir: tempDir(), restarts: 1 })
    expect(sample.finishErrors).toEqual([])
    expect(sample.integrity).toEqual(CLEAN)
    expect(sample.restarts).toHaveLength(1)
    const [restart] = sample.restarts
    expect((restart?.stopped.records ?? 0) + (sample.writerSummary?.records ?? 0)).toBe(TOTAL)
    expect(sample.writerSummary?.spool?.torn).toBe(0)
  })
}, 90_000)

describe('logfunnel bench --scenario (CLI)', () => {
  it('exit,restart for flock and null: rows for every strategy and scenario, n/a where there is no file or writer', async () => {
    const dir = tempDir()
    const json = join(dir, 'out.json')
    const child = spawnNode([BIN, 'bench', '--scenario', 'exit,restart', '--strategies', 'flock,null', '--producers', String(PRODUCERS),
      '--records', String(RECORDS), '--dir', dir, '--json', json])
    expect(await exitCode(child, 60_000), child.describe()).toBe(0)
    expect(child.stdout()).toMatch(/\| flock \| 0 \/ 0 \| [\d.]+k \| \d+ \/ \d+ \| n\/a \(no writer\) \| - \| - \|/)
    expect(child.stdout()).toContain('| null | n/a (no file) | - | - | n/a (no file) | - | - |')

    const report = JSON.parse(readFileSync(json, 'utf8'))
    // The throughput scenario did not run: its parts stay, empty.
    expect(report).toMatchObject({ results: [], ingest: null })
    const common = { producers: PRODUCERS, recordBytes: 100, recordsPerProducer: RECORDS }
    expect(report.lossScenarios).toEqual([
      expect.objectContaining({ ...common, scenario: 'exit', strategy: 'flock', status: 'measured', runs: 1, lost: 0, duplicated: 0, torn: 0, reordered: 0, complete: true }),
      expect.objectContaining({ ...common, scenario: 'exit', strategy: 'null', status: 'no-file', runs: 0, lost: null, duplicated: null }),
      expect.objectContaining({ ...common, scenario: 'restart', strategy: 'flock', status: 'no-writer', runs: 0, restarts: 2, lost: null, duplicated: null }),
      expect.objectContaining({ ...common, scenario: 'restart', strategy: 'null', status: 'no-file', runs: 0, lost: null, duplicated: null })
    ])
    expect(report.lossScenarios[0].recordsPerSec).toEqual({ median: expect.any(Number), min: expect.any(Number), max: expect.any(Number) })
  }, 60_000)

  it('rejects an unknown scenario with exit 2 and LOGFUNNEL_ERR_USAGE', async () => {
    const child = spawnNode([BIN, 'bench', '--scenario', 'exit,crash'])
    expect(await exitCode(child), child.describe()).toBe(2)
    expect(child.stderr()).toContain('LOGFUNNEL_ERR_USAGE')
  })
})
