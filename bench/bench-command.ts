import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { UsageError } from '../shared/errors.js'
import { renderChart } from './chart.js'
import { runIngest, type IngestResult } from './ingest.js'
import { describeDefects } from './integrity.js'
import { LOSS_SCENARIOS, type LossScenario } from './loss-run.js'
import { lossStatus, runLossScenarios, type LossResult } from './loss-scenarios.js'
import { describeMachine } from './machine.js'
import { Progress } from './progress.js'
import { formatMarkdown, type BenchReport } from './report.js'
import { haveRsyslogd, RSYSLOGD } from './rsyslog.js'
import { runCells, type Cell, type CellResult } from './run-cell.js'
import { INGEST_SCENARIO, isStrategy, STRATEGIES, STRATEGY_DESCRIPTIONS, type Strategy } from './strategies.js'
import { evaluateTargets } from './targets.js'

/** Default output directory (gitignored): bench/out/ of the repository. */
const OUT_DIR = fileURLToPath(new URL('../../bench/out/', import.meta.url))

/**
 * How long every producer logs in a throughput run unless `--records` fixes a count: JIT
 * warm-up is over after the first ~0.1 s, so this leaves at least 1 s of steady logging
 * whatever the strategy, producer count and record size.
 */
const DEFAULT_DURATION_MS = 1200
/** A timed cell's warm-up run: enough to load the modules and warm the file system's caches. */
const WARMUP_DURATION_MS = 300

/** The throughput scenario: the cells and writer-ingest. The loss scenarios are in LOSS_SCENARIOS. */
const THROUGHPUT = 'throughput'
const SCENARIOS = [THROUGHPUT, ...LOSS_SCENARIOS] as const
type Scenario = typeof SCENARIOS[number]

const DEFAULTS = Object.freeze({
  scenarios: [THROUGHPUT] as Scenario[],
  strategies: [...STRATEGIES, INGEST_SCENARIO] as string[],
  producers: [1, 2, 4, 8, 16],
  size: [100, 1024, 16384],
  durationMs: DEFAULT_DURATION_MS,
  repeat: 3,
  warmup: 1,
  ingestPushers: 2,
  ingestMib: 1024,
  /** The loss scenarios run these unless --producers, --records, --size, --repeat say otherwise. */
  lossProducers: [4],
  lossRecords: 20_000,
  lossSize: [100],
  lossRuns: 1,
  restarts: 2
})

/** Some strategies at some producer counts and record sizes: a part of the quick profile. */
interface PlanRow { producers: number[], size: number[], strategies: Strategy[] }

/**
 * The quick profile's cells: each of issue 11's comparisons where it is made, not the whole
 * cross product (8 strategies x 3 producer counts x 2 sizes x 3 runs would take about 15
 * minutes on 2 cores). bench/README.md ("The quick profile") explains the choice.
 */
const QUICK_PLAN: readonly PlanRow[] = Object.freeze([
  // Everything at the reference cell (twice the cores), 100 B: every target is checked here.
  { producers: [4], size: [100], strategies: ['funnel', 'funnel-nofsync', 'funnel-transport', 'flock', 'append', 'pino-transport', 'null', 'noop'] },
  // 1 KiB: funnel against null, append and noop, the transports, and funnel without fsync.
  { producers: [4], size: [1024], strategies: ['funnel', 'funnel-nofsync', 'funnel-transport', 'append', 'pino-transport', 'null', 'noop'] },
  // More producers than cores: funnel against null and flock at 8 x 100 B, null and append at 16 x 1 KiB.
  { producers: [8], size: [100], strategies: ['funnel', 'flock', 'null'] },
  { producers: [16], size: [1024], strategies: ['funnel', 'append', 'null'] }
])

/** `--quick`: about 3 minutes on a 2-core machine; explicit flags still win. */
const QUICK = Object.freeze({ repeat: 2, ingestMib: 256, scenarios: [...SCENARIOS] as Scenario[], restarts: 1 })

const USAGE = `usage: logfunnel bench [options]

Runs a real pino logger in N producer processes per strategy, all writing one log file,
releases them together, and compares throughput, log.info latency, CPU and peak RSS.
Every run is in fresh processes and its file is verified (torn, lost, duplicated,
reordered lines); a defective cell gets no speed. Prints a markdown table and the targets
on stdout, progress on stderr, and writes JSON and an SVG chart.

scenarios:
  throughput   the cells above and writer-ingest (the default)
  exit         producers call process.exit() right after their last log call: records lost
               and duplicated per strategy, from the file (funnel: after the spool is ingested)
  restart      the writer is restarted gracefully (SIGTERM) while the producers log:
               funnel and funnel-transport; the others have no writer

strategies:
${STRATEGIES.map((s) => `  ${s.padEnd(17)} ${STRATEGY_DESCRIPTIONS[s]}`).join('\n')}
  ${INGEST_SCENARIO.padEnd(17)} raw ZeroMQ PUSH of pre-built 64 KiB frames into a writer, against fs.writeSync

options:
  --scenario LIST      comma-separated scenarios from the list above (default ${DEFAULTS.scenarios.join(',')};
                       quick ${QUICK.scenarios.join(',')})
  --strategies LIST    comma-separated names from the list above (default: all)
  --producers LIST     producer process counts (default ${DEFAULTS.producers.join(',')}; quick: see bench/README)
  --duration-ms MS     every producer logs for this long per run (default ${DEFAULTS.durationMs}; warm-up runs ${WARMUP_DURATION_MS})
  --records N          log exactly N records per producer instead of logging for --duration-ms
  --size LIST          message payload bytes per record (default ${DEFAULTS.size.join(',')}; quick: see bench/README)
  --repeat K           measured runs per cell (default ${DEFAULTS.repeat}; quick ${QUICK.repeat})
  --warmup N           runs per cell before those, verified but not measured (default ${DEFAULTS.warmup};
                       quick: only before a strategy's first cell)
  --ingest-pushers K   writer-ingest pusher processes (default ${DEFAULTS.ingestPushers})
  --ingest-mib M       writer-ingest MiB pushed per run (default ${DEFAULTS.ingestMib}; quick ${QUICK.ingestMib})
  --restarts N         writer restarts per run of the restart scenario (default ${DEFAULTS.restarts}; quick ${QUICK.restarts})
                       exit and restart take --producers, --records, --size and --repeat (runs, no
                       warm-up) when given, else ${DEFAULTS.lossProducers.join(',')} producers x ${DEFAULTS.lossRecords} records of ${DEFAULTS.lossSize.join(',')} B, ${DEFAULTS.lossRuns} run
  --dir PATH           directory for the runs' files: the filesystem measured (default ${tmpdir()})
  --json PATH          results as JSON (default bench/out/latest.json)
  --svg PATH           chart as SVG (default bench/out/latest.svg)
  --cpu-prof DIR       run every producer under node --cpu-prof, profiles written to DIR
  --quick              the quick profile, meant to take about 3 minutes on an idle 2-core
                       machine (npm run bench): 4 producers x all strategies, 8 and 16
                       producers x funnel and its baselines, 100 B and 1 KiB; --strategies,
                       --producers and --size narrow it
  -h, --help           show this help

exit status: 0 when every run completed (targets and defects are reported, not judged), 1 when
a run failed (a child crashed or hung), 2 for a usage error
`

/** The options of one bench run, after the profile and the flags. */
export interface BenchOptions {
  scenarios: Scenario[]
  strategies: Strategy[]
  ingest: boolean
  producers: number[]
  /** Fixed records per producer, or undefined: each producer logs for `durationMs`. */
  records: number | undefined
  durationMs: number
  size: number[]
  repeat: number
  warmup: number
  ingestPushers: number
  ingestMib: number
  dir: string
  json: string
  svg: string
  cpuProf: string | undefined
  quick: boolean
  /** What the loss scenarios (exit, restart) run. */
  loss: { producers: number[], records: number, size: number[], runs: number, restarts: number }
}

/**
 * `logfunnel bench`: runs the benchmark and resolves with the exit code. Throws
 * `LOGFUNNEL_ERR_USAGE` for a bad flag; a failed run rejects with `LOGFUNNEL_ERR_BENCH` (or the
 * writer's start/stop codes), which bin.ts turns into exit 1.
 *
 * @example
 * ```sh
 * logfunnel bench --strategies funnel,flock --producers 4 --size 100 --repeat 3
 * ```
 */
export async function main (argv: string[]): Promise<number> {
  const options = parseBenchArgs(argv)
  if (options === 'help') {
    process.stdout.write(USAGE)
    return 0
  }
  if (options.strategies.includes('rsyslog') && !haveRsyslogd()) {
    // A peer that is not installed is not a failure of the run.
    process.stderr.write(`note: skipping the rsyslog strategy: ${RSYSLOGD} is absent (Debian package rsyslog)\n`)
    options.strategies = options.strategies.filter((s) => s !== 'rsyslog')
  }
  const started = new Date()
  const loadAtStart = loadavg()[0] ?? 0
  const t0 = performance.now()
  mkdirSync(options.dir, { recursive: true })
  const runDir = mkdtempSync(join(options.dir, 'lf-bench-'))
  const cells = options.scenarios.includes(THROUGHPUT) ? planCells(options) : []
  const lossScenarios = options.scenarios.filter((s): s is LossScenario => s !== THROUGHPUT)
  const lossRuns = lossScenarios.reduce((n, scenario) =>
    n + options.strategies.filter((s) => lossStatus(scenario, s) === 'measured').length, 0) * options.loss.runs * options.loss.producers.length * options.loss.size.length
  const warmups = options.quick ? new Set(cells.map((c) => c.strategy)).size * options.warmup : cells.length * options.warmup
  const progress = new Progress(warmups + cells.length * options.repeat + (options.ingest ? options.warmup + options.repeat : 0) + lossRuns)
  const results: CellResult[] = []
  let ingest: IngestResult | null = null
  let loss: LossResult[] = []
  try {
    // Quick: a warm-up run loads a strategy's modules and warms the file caches; its later
    // cells start from fresh processes either way, with pino warmed up in each.
    const warmed = new Set<Strategy>()
    const counts = new Map<Cell, number>()
    results.push(...await runCells(cells, {
      repeats: options.repeat,
      warmupFor: (cell) => {
        const warmup = options.quick && warmed.has(cell.strategy) ? 0 : options.warmup
        warmed.add(cell.strategy)
        return warmup
      },
      warmupDurationMs: WARMUP_DURATION_MS,
      dir: runDir,
      producerNodeArgs: options.cpuProf === undefined ? undefined : ['--cpu-prof', '--cpu-prof-dir', options.cpuProf],
      onRun: (cell, sample, warmup) => {
        const run = (counts.get(cell) ?? 0) + 1
        counts.set(cell, run)
        const defects = sample.integrity === null ? '' : `, defects: ${describeDefects(sample.integrity)}`
        progress.step(`${cell.strategy} x${cell.producers} ${cell.recordBytes} B run ${run}${warmup ? ' (warm-up)' : ''}: ${Math.round(sample.recordsPerSec)} records/s${defects}`)
      }
    }))
    if (options.ingest) {
      let run = 0
      ingest = await runIngest({
        pushers: options.ingestPushers,
        totalBytes: options.ingestMib * 2 ** 20,
        dir: runDir,
        repeats: options.repeat,
        warmup: options.warmup,
        onRun: (sample, warmup) => {
          progress.step(`${INGEST_SCENARIO} run ${++run}${warmup ? ' (warm-up)' : ''}: writer ${sample.writerMbPerSec.toFixed(0)} MB/s, ceiling ${sample.ceilingMbPerSec.toFixed(0)} MB/s`)
        }
      })
    }
    if (lossScenarios.length > 0) {
      loss = await runLossScenarios({
        ...options.loss,
        scenarios: lossScenarios,
        // The loss scenarios judge the default configuration; funnel-nofsync and funnel-checkpoints
        // only differ in cost. rsyslog is a throughput peer: its harness is runOnce's alone.
        strategies: options.strategies.filter((s) => s !== 'funnel-nofsync' && s !== 'funnel-checkpoints' && s !== 'rsyslog'),
        dir: runDir,
        onRun: (sample, label) => {
          const { lost, duplicated } = sample.integrity
          progress.step(`${label}: ${lost} lost, ${duplicated} duplicated, every record in the file after ${sample.completeMs.toFixed(0)} ms`)
        }
      })
    }
  } finally {
    progress.done()
    rmSync(runDir, { recursive: true, force: true })
  }

  const report: BenchReport = {
    machine: describeMachine(options.dir, loadAtStart),
    profile: options.quick ? 'quick' : 'custom',
    startedAt: started.toISOString().replace(/\.\d+Z$/, 'Z'),
    wallSec: (performance.now() - t0) / 1000,
    options: { ...options, strategies: [...options.strategies, ...(options.ingest ? [INGEST_SCENARIO] : [])] },
    results,
    ingest,
    targets: evaluateTargets(results, ingest, loss),
    lossScenarios: loss
  }
  process.stdout.write(formatMarkdown(report))
  writeOutput(options.json, `${JSON.stringify(report, null, 2)}\n`)
  if (options.scenarios.includes(THROUGHPUT)) {
    writeOutput(options.svg, await renderChart(report))
    process.stderr.write(`wrote ${options.json} and ${options.svg}\n`)
  } else {
    process.stderr.write(`wrote ${options.json} (no chart: the throughput scenario did not run)\n`)
  }
  return 0
}

/**
 * The cells in run order: record size, then producers, then strategy. The quick profile takes
 * QUICK_PLAN's cells among those the flags select, the others the whole cross product.
 */
function planCells (options: BenchOptions): Cell[] {
  const cells: Cell[] = []
  const load = options.records === undefined ? { durationMs: options.durationMs } : { records: options.records }
  for (const recordBytes of options.size) {
    for (const producers of options.producers) {
      for (const strategy of options.strategies) {
        if (options.quick && !QUICK_PLAN.some((row) => row.producers.includes(producers) && row.size.includes(recordBytes) && row.strategies.includes(strategy))) continue
        cells.push({ strategy, producers, recordBytes, ...load })
      }
    }
  }
  return cells
}

/** Parses `logfunnel bench` flags; throws UsageError. */
export function parseBenchArgs (argv: string[]): BenchOptions | 'help' {
  let values
  try {
    values = parseArgs({
      args: argv,
      options: {
        scenario: { type: 'string' },
        strategies: { type: 'string' },
        producers: { type: 'string' },
        records: { type: 'string' },
        'duration-ms': { type: 'string' },
        size: { type: 'string' },
        repeat: { type: 'string' },
        warmup: { type: 'string' },
        'ingest-pushers': { type: 'string' },
        'ingest-mib': { type: 'string' },
        restarts: { type: 'string' },
        dir: { type: 'string' },
        json: { type: 'string' },
        svg: { type: 'string' },
        'cpu-prof': { type: 'string' },
        quick: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' }
      },
      strict: true,
      allowPositionals: false
    }).values
  } catch (err) {
    throw new UsageError(`${(err as Error).message} (logfunnel bench --help lists the flags)`)
  }
  if (values.help === true) return 'help'
  const quick = values.quick === true
  const names = values.strategies === undefined ? DEFAULTS.strategies : values.strategies.split(',').map((s) => s.trim())
  for (const name of names) {
    if (!isStrategy(name) && name !== INGEST_SCENARIO) {
      throw new UsageError(`--strategies: unknown strategy '${name}'; choose from ${[...STRATEGIES, INGEST_SCENARIO].join(', ')}`)
    }
  }
  const scenarioNames = values.scenario === undefined ? (quick ? QUICK.scenarios : DEFAULTS.scenarios) : values.scenario.split(',').map((s) => s.trim())
  for (const name of scenarioNames) {
    if (!(SCENARIOS as readonly string[]).includes(name)) {
      throw new UsageError(`--scenario: unknown scenario '${name}'; choose from ${SCENARIOS.join(', ')}`)
    }
  }
  const scenarios = SCENARIOS.filter((s) => scenarioNames.includes(s))
  return {
    scenarios,
    strategies: STRATEGIES.filter((s) => names.includes(s)),
    ingest: names.includes(INGEST_SCENARIO) && scenarios.includes(THROUGHPUT),
    producers: list(values.producers, 'producers', quick ? planned((row) => row.producers) : DEFAULTS.producers),
    records: values.records === undefined ? undefined : whole(values.records, 'records', 1),
    durationMs: values['duration-ms'] === undefined ? DEFAULTS.durationMs : whole(values['duration-ms'], 'duration-ms', 1),
    size: list(values.size, 'size', quick ? planned((row) => row.size) : DEFAULTS.size),
    repeat: values.repeat === undefined ? (quick ? QUICK.repeat : DEFAULTS.repeat) : whole(values.repeat, 'repeat', 1),
    warmup: values.warmup === undefined ? DEFAULTS.warmup : whole(values.warmup, 'warmup', 0),
    ingestPushers: values['ingest-pushers'] === undefined ? DEFAULTS.ingestPushers : whole(values['ingest-pushers'], 'ingest-pushers', 1),
    ingestMib: values['ingest-mib'] === undefined ? (quick ? QUICK.ingestMib : DEFAULTS.ingestMib) : whole(values['ingest-mib'], 'ingest-mib', 1),
    dir: resolve(values.dir ?? tmpdir()),
    json: resolve(values.json ?? join(OUT_DIR, 'latest.json')),
    svg: resolve(values.svg ?? join(OUT_DIR, 'latest.svg')),
    cpuProf: values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']),
    quick,
    loss: {
      producers: list(values.producers, 'producers', DEFAULTS.lossProducers),
      records: values.records === undefined ? DEFAULTS.lossRecords : whole(values.records, 'records', 1),
      size: list(values.size, 'size', DEFAULTS.lossSize),
      runs: values.repeat === undefined ? DEFAULTS.lossRuns : whole(values.repeat, 'repeat', 1),
      restarts: values.restarts === undefined ? (quick ? QUICK.restarts : DEFAULTS.restarts) : whole(values.restarts, 'restarts', 1)
    }
  }
}

/** Every producer count or size QUICK_PLAN names. */
function planned (pick: (row: PlanRow) => number[]): number[] {
  return [...new Set(QUICK_PLAN.flatMap(pick))].sort((a, b) => a - b)
}

function list (raw: string | undefined, name: string, fallback: readonly number[]): number[] {
  if (raw === undefined) return [...fallback]
  const numbers = raw.split(',').map((part) => whole(part.trim(), name, 1))
  return [...new Set(numbers)].sort((a, b) => a - b)
}

function whole (raw: string, name: string, min: number): number {
  if (!/^\d+$/.test(raw) || Number(raw) < min) throw new UsageError(`--${name} takes whole numbers of at least ${min}, got '${raw}'`)
  return Number(raw)
}

function writeOutput (path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, text)
}
