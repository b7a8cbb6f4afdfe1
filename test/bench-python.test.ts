import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT, exitCode, spawnNode, tempDir } from './helpers/children.js'
import { haveProgram, PYTHON } from './helpers/programs.js'

const HAVE_PYZMQ = haveProgram('python3-zmq', PYTHON, ['-c', 'import zmq'])
const STRATEGIES = ['lock', 'file', 'queue', 'funnel', 'funnel-nofsync']
const PRODUCERS = 2
const TOTAL = 4000

interface Row { producers: number, size: number, strategy: string, rps: number, ok: boolean, defects: number }
interface Run { strategy: string, records: number, lines: number, defects: number, ok: boolean }

describe.runIf(HAVE_PYZMQ)('npm run bench:python (bench/python/bench.py)', () => {
  it(`every strategy, ${PRODUCERS} processes x ${TOTAL / PRODUCERS} records: each file verified with every record, a table row and a chart`, async () => {
    const out = join(tempDir(), 'python')
    const bench = spawnNode([join(ROOT, 'dist', 'bench', 'python-bench.js'), '--producers', String(PRODUCERS), '--size', '100',
      '--total', String(TOTAL), '--repeat', '1', '--out', out])
    expect(await exitCode(bench, 120_000), bench.describe()).toBe(0)
    const { runs, rows } = JSON.parse(readFileSync(`${out}.json`, 'utf8')) as { runs: Run[], rows: Row[] }
    expect(runs.map((r) => r.strategy)).toEqual(STRATEGIES)
    // records: the timed ones; the file also holds each producer's first record, logged before go
    for (const run of runs) expect(run, run.strategy).toMatchObject({ records: TOTAL, lines: TOTAL + PRODUCERS, defects: 0, ok: true })
    expect(rows.map((r) => [r.strategy, r.ok])).toEqual(STRATEGIES.map((s) => [s, true]))
    const table = bench.stdout().split('\n').filter((line) => line.startsWith(`| ${PRODUCERS} | 100 B |`))
    expect(table).toHaveLength(STRATEGIES.length)
    for (const line of table) expect(line).toMatch(/\| ok \|/)
    expect(existsSync(`${out}.svg`)).toBe(true)
    expect(readFileSync(`${out}.svg`, 'utf8')).toContain('<svg')
  })
})
