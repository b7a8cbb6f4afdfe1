import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { BIN, ROOT, exitCode, spawnNode, tempDir } from './helpers/children.js'
import { haveProgram, RSYSLOGD } from './helpers/programs.js'

// Under CI a missing rsyslogd throws here and fails the file; elsewhere the tests skip.
const HAVE_RSYSLOG = haveProgram('rsyslog', RSYSLOGD, ['-v'])

// The harness runs from dist/, like `logfunnel bench`.
const { runOnce } = await import(pathToFileURL(join(ROOT, 'dist', 'bench', 'run-once.js')).href) as typeof import('../bench/run-once.js')

const PRODUCERS = 2
const RECORDS = 500
const TOTAL = PRODUCERS * RECORDS

/** Pids of the rsyslogd processes whose command line names a path under `dir`. */
function rsyslogdsUnder (dir: string): number[] {
  const pids: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    let argv: string[]
    try { argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0') } catch { continue }
    if (argv[0] === RSYSLOGD && argv.some((arg) => arg.startsWith(dir))) pids.push(Number(name))
  }
  return pids
}

describe.runIf(HAVE_RSYSLOG)('bench strategy rsyslog: a real rsyslogd started and stopped by the harness', () => {
  it.each([100, 16_384])(`${PRODUCERS} producers x ${RECORDS} records of %i B: every line in rsyslogd's file, byte for byte`, async (recordBytes) => {
    const dir = tempDir()
    const sample = await runOnce({ strategy: 'rsyslog', producers: PRODUCERS, records: RECORDS, recordBytes, dir })
    expect(sample.records).toBe(TOTAL)
    expect(sample.latencyUs.count).toBe(TOTAL)
    expect(sample.integrity).toEqual({
      lines: TOTAL, producers: PRODUCERS, unkeyed: 0, torn: 0, lost: 0, duplicated: 0, reordered: 0, ok: true, examples: []
    })
    // Not a byte more or less than pino's lines: no syslog header, no escaping, no split line.
    expect(sample.fileBytes).toBe(sample.loggedBytes)
    // rsyslogd is the writer process measured (CPU, peak RSS); it has no logfunnel summary.
    expect(sample.writerRssMb).toBeGreaterThan(0)
    expect(sample.writerSummary).toBeNull()
    expect(rsyslogdsUnder(dir)).toEqual([])
  })

  it('logfunnel bench --strategies rsyslog: exact counts, no defects, no rsyslogd left', async () => {
    const dir = tempDir()
    const json = join(dir, 'out.json')
    const child = spawnNode([BIN, 'bench', '--strategies', 'rsyslog', '--producers', String(PRODUCERS), '--records', String(RECORDS),
      '--size', '100', '--repeat', '2', '--dir', dir, '--json', json, '--svg', join(dir, 'out.svg')])
    expect(await exitCode(child, 60_000), child.describe()).toBe(0)
    expect(child.stdout()).toContain(`| rsyslog | never | ${PRODUCERS} | 100 | ${RECORDS} |`)
    expect(child.stderr()).not.toContain('skipping the rsyslog strategy')

    const report = JSON.parse(readFileSync(json, 'utf8'))
    expect(report.results).toHaveLength(1)
    expect(report.results[0]).toMatchObject({
      strategy: 'rsyslog',
      producers: PRODUCERS,
      recordsPerProducer: RECORDS,
      repeats: 2,
      warmup: 1,
      verified: true,
      defective: false,
      defects: { torn: 0, lost: 0, duplicated: 0, reordered: 0 },
      defectExamples: []
    })
    expect(report.results[0].samples.map((s: { records: number }) => s.records)).toEqual([TOTAL, TOTAL])
    expect(report.results[0].writerRssMb.median).toBeGreaterThan(0)
    expect(rsyslogdsUnder(dir)).toEqual([])
  }, 60_000)
}, 60_000)
