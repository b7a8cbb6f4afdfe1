import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { TopLevelSpec } from 'vega-lite'
import { renderSvg } from './chart.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const RUNNER = join(ROOT, 'bench', 'python', 'bench.py')
const PYTHON = process.env.LOGFUNNEL_PYTHON ?? '/usr/bin/python3'
const STRATEGIES = ['lock', 'file', 'queue', 'funnel']

/** One row of bench/python/bench.py's JSON: a cell's median over its runs. */
interface PythonRow {
  producers: number
  size: number
  strategy: string
  rps: number
  runs: number[]
  cpu_us: number
  ok: boolean
}

/**
 * `npm run bench:python`: the benchmark in the seed's language. Runs bench/python/bench.py
 * (stdlib logging in N processes: the seed's flock ProcessLock, a FileHandler per process,
 * QueueHandler + QueueListener, LogfunnelHandler to a real writer), passing every argument
 * through, then draws its results as SVG next to the JSON (default bench/out/python.*).
 */
async function main (argv: string[]): Promise<number> {
  const at = argv.indexOf('--out')
  const out = resolve(at === -1 ? join(ROOT, 'bench', 'out', 'python') : argv[at + 1] ?? '')
  const args = at === -1 ? argv : [...argv.slice(0, at), ...argv.slice(at + 2)]
  mkdirSync(dirname(out), { recursive: true })
  const child = spawn(PYTHON, [RUNNER, ...args, '--json', `${out}.json`], {
    stdio: 'inherit', env: { ...process.env, LOGFUNNEL_NODE: process.execPath }
  })
  const code = await new Promise<number>((resolve) => child.on('close', (status, signal) => resolve(status ?? (signal === null ? 1 : 128))))
  if (code !== 0) return code
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write('  --out PATH            results as PATH.json and the chart as PATH.svg (default bench/out/python)\n')
    return 0
  }
  const rows = (JSON.parse(readFileSync(`${out}.json`, 'utf8')) as { rows: PythonRow[] }).rows
  writeFileSync(`${out}.svg`, await renderPythonChart(rows))
  process.stderr.write(`wrote ${out}.json and ${out}.svg\n`)
  return rows.every((r) => r.ok) ? 0 : 1
}

/** Records/s per strategy, one panel per (producers, record size) cell; defective cells left out. */
export async function renderPythonChart (rows: PythonRow[]): Promise<string> {
  const values = rows.filter((r) => r.ok).map((r) => ({
    strategy: r.strategy,
    cell: `${r.producers} processes, ${r.size} B`,
    rps: Math.round(r.rps),
    min: Math.min(...r.runs),
    max: Math.max(...r.runs)
  }))
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Python: stdlib logging from a process pool into one file (records/s, median; rule = min-max)' },
    background: 'white',
    padding: 12,
    data: { values },
    facet: { column: { field: 'cell', type: 'ordinal', title: null } },
    spec: {
      width: 160,
      height: 200,
      layer: [
        { mark: 'bar', encoding: { x: { field: 'strategy', type: 'nominal', sort: STRATEGIES, title: null }, y: { field: 'rps', type: 'quantitative', title: 'records/s' }, color: { field: 'strategy', type: 'nominal', scale: { domain: STRATEGIES } } } },
        { mark: { type: 'rule' }, encoding: { x: { field: 'strategy', type: 'nominal', sort: STRATEGIES }, y: { field: 'min', type: 'quantitative' }, y2: { field: 'max' } } }
      ]
    }
  } as unknown as TopLevelSpec
  return await renderSvg(spec)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (err: unknown) => {
    process.stderr.write(`${String(err)}\n`)
    process.exitCode = 1
  })
}
