import { addDefects, defectCount, NO_DEFECTS, type Defects } from './integrity.js'
import { runOnce, type RunSample } from './run-once.js'
import { spread, type Spread } from './stats.js'
import { writesFile, type Strategy } from './strategies.js'

/** One cell of the benchmark: a strategy at a producer count and record size. */
export interface Cell {
  strategy: Strategy
  producers: number
  recordBytes: number
  /** Records per producer; without it each producer logs for `durationMs`. */
  records?: number
  durationMs?: number
}

export interface CellOptions {
  /** Measured repetitions. */
  repeats: number
  /** Repetitions run first and thrown away (they are still verified). */
  warmup: number
  /** A timed cell's warm-up runs log this long instead of the cell's `durationMs`. */
  warmupDurationMs?: number
  /** Parent directory of the runs' files. */
  dir: string
  /** Node options for the producer processes (`--cpu-prof` ...). */
  producerNodeArgs?: string[]
  /** Called after every run, warm-up included. */
  onRun?: (sample: RunSample, warmup: boolean) => void
}

/** `null` for each defect count of a strategy that writes no file. */
export type UnverifiedDefects = { [K in keyof Defects]: null }

/** One row of the results: the JSON shape documented in bench/README.md. */
export interface CellResult {
  strategy: Strategy
  producers: number
  recordBytes: number
  /** Median over the measured runs of the records each producer logged (fixed unless timed). */
  recordsPerProducer: number
  /** How long each producer logged, for a timed cell; null when it logged a fixed count. */
  durationMs: number | null
  repeats: number
  warmup: number
  /** `null` when the cell is defective: a strategy that loses or tears lines gets no speed. */
  recordsPerSec: Spread | null
  mbPerSec: Spread | null
  p50Us: Spread
  p99Us: Spread
  p999Us: Spread
  maxUs: Spread
  /** CPU seconds per million records (= us per record), all processes; then split. */
  cpuSecPerMillion: Spread
  /** Producer processes, every thread (logging, sender, transport worker). */
  producerCpuUsPerRecord: Spread
  writerCpuUsPerRecord: Spread
  /** Producers' context switches per 1000 records: voluntary (blocked, woke another thread) and involuntary (preempted). */
  voluntaryContextSwitchesPerK: Spread
  involuntaryContextSwitchesPerK: Spread
  /** The producers' main-thread GC: pause time per 1000 records (ms) and the longest pause (ms). */
  gcMsPerKRecords: Spread
  gcMaxMs: Spread
  /** CPU (in cores) that other processes on the machine used during the measured runs. */
  otherCores: Spread
  producerRssMb: Spread
  writerRssMb: Spread | null
  /** False for `null`: there is no file to check. */
  verified: boolean
  defective: boolean
  /** Summed over every run of the cell, warm-up included. */
  defects: Defects | UnverifiedDefects
  /** verify's descriptions of the first defects seen. */
  defectExamples: string[]
  /** The measured runs, for a closer look. */
  samples: Array<{ records: number, elapsedMs: number, finishMs: number, recordsPerSec: number, p99Us: number, p999Us: number, cpuSecPerMillion: number, producerCpuUsPerRecord: number, writerCpuUsPerRecord: number, otherCores: number, bytes: number }>
}

/** Options of `runCells`: the warm-up is decided per cell. */
export interface CellsOptions extends Omit<CellOptions, 'warmup' | 'onRun'> {
  /** Warm-up runs before the cell's first measured run. */
  warmupFor: (cell: Cell) => number
  onRun?: (cell: Cell, sample: RunSample, warmup: boolean) => void
}

/** What the runs of one cell have gathered so far. */
interface CellRuns { warmup: number, samples: RunSample[], defects: Defects, examples: string[] }

/**
 * Runs cells that share a producer count and record size interleaved: each cell's warm-up,
 * then the first measured run of every cell, then the second, and so on, so that a change in
 * the machine's other load in the meantime falls on every strategy of the comparison alike.
 * Each run is in fresh processes; the results come back in the order of `cells`. Rejects like
 * `runOnce` (`LOGFUNNEL_ERR_BENCH`, writer start/stop errors).
 *
 * @example
 * ```ts
 * const rows = await runCells(cells, { repeats: 3, warmupFor: () => 1, dir })
 * ```
 */
export async function runCells (cells: Cell[], options: CellsOptions): Promise<CellResult[]> {
  const runs = new Map<Cell, CellRuns>(cells.map((cell) => [cell, { warmup: options.warmupFor(cell), samples: [], defects: { ...NO_DEFECTS }, examples: [] }]))
  const groups = new Map<string, Cell[]>()
  for (const cell of cells) {
    const key = `${cell.producers}x${cell.recordBytes}`
    groups.set(key, [...(groups.get(key) ?? []), cell])
  }
  const once = async (cell: Cell, warmup: boolean): Promise<void> => {
    const state = runs.get(cell) as CellRuns
    const durationMs = warmup && cell.durationMs !== undefined ? Math.min(cell.durationMs, options.warmupDurationMs ?? cell.durationMs) : cell.durationMs
    const sample = await runOnce({ ...cell, durationMs, dir: options.dir, producerNodeArgs: options.producerNodeArgs })
    if (sample.integrity !== null) {
      state.defects = addDefects(state.defects, sample.integrity)
      if (state.examples.length === 0) state.examples = sample.integrity.examples
    }
    if (!warmup) state.samples.push(sample)
    options.onRun?.(cell, sample, warmup)
  }
  for (const group of groups.values()) {
    for (const cell of group) {
      for (let i = 0; i < (runs.get(cell) as CellRuns).warmup; i++) await once(cell, true)
    }
    for (let i = 0; i < options.repeats; i++) {
      for (const cell of group) await once(cell, false)
    }
  }
  return cells.map((cell) => {
    const state = runs.get(cell) as CellRuns
    return summarise(cell, options.repeats, state.warmup, state.samples, state.defects, state.examples)
  })
}

/**
 * Runs a cell `warmup + repeats` times, each in fresh processes, and summarises the measured
 * runs: median and range of throughput, latency percentiles, CPU per million records and
 * peak RSS. Every run's file is verified; any defect in any run makes the cell defective.
 * Rejects like `runOnce` (`LOGFUNNEL_ERR_BENCH`, writer start/stop errors).
 *
 * @example
 * ```ts
 * const row = await runCell({ strategy: 'funnel', producers: 4, recordBytes: 100, records: 20_000 }, { repeats: 3, warmup: 1, dir })
 * row.recordsPerSec?.median
 * ```
 */
export async function runCell (cell: Cell, options: CellOptions): Promise<CellResult> {
  const [row] = await runCells([cell], {
    ...options,
    warmupFor: () => options.warmup,
    onRun: options.onRun === undefined ? undefined : (_cell, sample, warmup) => options.onRun?.(sample, warmup)
  })
  return row as CellResult
}

function summarise (cell: Cell, repeats: number, warmup: number, samples: RunSample[], defects: Defects, examples: string[]): CellResult {
  const verified = writesFile(cell.strategy)
  const defective = verified && defectCount(defects) > 0
  const writerRss = samples.map((s) => s.writerRssMb).filter((mb): mb is number => mb !== null)
  return {
    strategy: cell.strategy,
    producers: cell.producers,
    recordBytes: cell.recordBytes,
    recordsPerProducer: cell.records ?? Math.round(spread(samples.map((s) => s.records / s.producers)).median),
    durationMs: cell.durationMs ?? null,
    repeats,
    warmup,
    recordsPerSec: defective ? null : spread(samples.map((s) => s.recordsPerSec)),
    mbPerSec: defective ? null : spread(samples.map((s) => s.mbPerSec)),
    p50Us: spread(samples.map((s) => s.latencyUs.p50)),
    p99Us: spread(samples.map((s) => s.latencyUs.p99)),
    p999Us: spread(samples.map((s) => s.latencyUs.p999)),
    maxUs: spread(samples.map((s) => s.latencyUs.max)),
    cpuSecPerMillion: spread(samples.map((s) => s.cpuSecPerMillion)),
    producerCpuUsPerRecord: spread(samples.map((s) => s.producerCpuUsPerRecord)),
    writerCpuUsPerRecord: spread(samples.map((s) => s.writerCpuUsPerRecord)),
    otherCores: spread(samples.map((s) => s.otherCores)),
    voluntaryContextSwitchesPerK: spread(samples.map((s) => s.contextSwitchesPerKRecords.voluntary)),
    involuntaryContextSwitchesPerK: spread(samples.map((s) => s.contextSwitchesPerKRecords.involuntary)),
    gcMsPerKRecords: spread(samples.map((s) => s.gc.totalMs / s.records * 1000)),
    gcMaxMs: spread(samples.map((s) => s.gc.maxMs)),
    producerRssMb: spread(samples.map((s) => s.producerRssMb)),
    writerRssMb: writerRss.length === 0 ? null : spread(writerRss),
    verified,
    defective,
    defects: verified ? defects : { torn: null, lost: null, duplicated: null, reordered: null },
    defectExamples: examples,
    samples: samples.map((s) => ({
      records: s.records,
      elapsedMs: s.elapsedMs,
      finishMs: s.finishMs,
      recordsPerSec: s.recordsPerSec,
      p99Us: s.latencyUs.p99,
      p999Us: s.latencyUs.p999,
      cpuSecPerMillion: s.cpuSecPerMillion,
      producerCpuUsPerRecord: s.producerCpuUsPerRecord,
      writerCpuUsPerRecord: s.writerCpuUsPerRecord,
      otherCores: s.otherCores,
      bytes: s.bytes
    }))
  }
}
