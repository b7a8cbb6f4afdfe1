import { runExitOnce } from './exit-run.js'
import { addDefects, NO_DEFECTS, type Defects } from './integrity.js'
import type { LossSample, LossScenario, RestartEvent } from './loss-run.js'
import { runRestartOnce } from './restart-run.js'
import { spread, type Spread } from './stats.js'
import { needsWriter, writesFile, type Strategy } from './strategies.js'

/** What the loss scenarios run: every scenario x strategy at each producer count and size. */
export interface LossOptions {
  scenarios: LossScenario[]
  strategies: Strategy[]
  producers: number[]
  /** Records per producer. */
  records: number
  size: number[]
  /** Runs per scenario and strategy (no warm-up: loss, not speed, is the point). */
  runs: number
  /** Graceful writer restarts per run of the restart scenario. */
  restarts: number
  /** Parent directory of the runs' files. */
  dir: string
  /** Called after every run. */
  onRun?: (sample: LossSample, label: string) => void
}

/** `measured`, or why a strategy has no figure in a scenario. */
export type LossStatus = 'measured' | 'no-writer' | 'no-file'

/** One row of `lossScenarios` in the JSON: a scenario x strategy x producers x size, over its runs. */
export interface LossResult {
  scenario: LossScenario
  strategy: Strategy
  producers: number
  recordBytes: number
  recordsPerProducer: number
  runs: number
  /** Writer restarts per run (restart scenario), else null. */
  restarts: number | null
  status: LossStatus
  /** Summed over the runs, from verify of the file; null when not measured. */
  lost: number | null
  duplicated: number | null
  torn: number | null
  reordered: number | null
  /** Every run's file held every byte (and the spool was empty) before the deadline. */
  complete: boolean | null
  /** Records / (go -> every record in the file); null when not measured or defective. */
  recordsPerSec: Spread | null
  /** go -> the last producer exited (exit) or reported done (restart). */
  producersMs: Spread | null
  /** go -> every record in the file. */
  completeMs: Spread | null
  /** Restart: from SIGTERM until the new writer was ready. */
  writerDownMs: Spread | null
  /** Restart: from the slowest producer's last log call until every record was in the file. */
  tailMs: Spread | null
  /** Batches the writers ingested from the spool, over all runs. */
  spooledBatches: number | null
  /** Batches the writers refused as out of sequence (resent later), over all runs. */
  outOfSequence: number | null
  /** Producers that exited non-zero, and finish() failures: none expected. */
  failedExits: Array<number | string>
  finishErrors: string[]
  defectExamples: string[]
  samples: Array<{ producersMs: number, completeMs: number, complete: boolean, loopEndMs: number | null, restarts: RestartEvent[] }>
}

/**
 * Runs the loss scenarios: every applicable scenario x strategy `runs` times in fresh
 * processes, and sums what verify found. `exit` runs every strategy that writes a file;
 * `restart` the strategies with a writer; the others get a row with `status` saying why not.
 * Rejects like `runExitOnce` / `runRestartOnce` (`LOGFUNNEL_ERR_BENCH`, writer start/stop).
 *
 * @example
 * ```ts
 * const rows = await runLossScenarios({ scenarios: ['exit'], strategies: ['funnel', 'flock'], producers: [4],
 *   records: 20_000, size: [100], runs: 1, restarts: 1, dir })
 * rows[0].lost // 0
 * ```
 */
export async function runLossScenarios (options: LossOptions): Promise<LossResult[]> {
  const results: LossResult[] = []
  for (const recordBytes of options.size) {
    for (const producers of options.producers) {
      for (const scenario of options.scenarios) {
        for (const strategy of options.strategies) {
          const status = lossStatus(scenario, strategy)
          const samples: LossSample[] = []
          for (let run = 1; status === 'measured' && run <= options.runs; run++) {
            const params = { strategy, producers, records: options.records, recordBytes, dir: options.dir, restarts: options.restarts }
            const sample = scenario === 'exit' ? await runExitOnce(params) : await runRestartOnce(params)
            samples.push(sample)
            options.onRun?.(sample, `${scenario} ${strategy} x${producers} ${recordBytes} B run ${run}/${options.runs}`)
          }
          results.push(summarise(scenario, strategy, producers, recordBytes, options, status, samples))
        }
      }
    }
  }
  return results
}

/** Whether a strategy takes part in a scenario. */
export function lossStatus (scenario: LossScenario, strategy: Strategy): LossStatus {
  if (!writesFile(strategy)) return 'no-file'
  if (scenario === 'restart' && !needsWriter(strategy)) return 'no-writer'
  return 'measured'
}

function summarise (scenario: LossScenario, strategy: Strategy, producers: number, recordBytes: number,
  options: LossOptions, status: LossStatus, samples: LossSample[]): LossResult {
  const base = {
    scenario,
    strategy,
    producers,
    recordBytes,
    recordsPerProducer: options.records,
    runs: status === 'measured' ? options.runs : 0,
    restarts: scenario === 'restart' ? options.restarts : null,
    status
  }
  if (samples.length === 0) {
    return {
      ...base,
      lost: null,
      duplicated: null,
      torn: null,
      reordered: null,
      complete: null,
      recordsPerSec: null,
      producersMs: null,
      completeMs: null,
      writerDownMs: null,
      tailMs: null,
      spooledBatches: null,
      outOfSequence: null,
      failedExits: [],
      finishErrors: [],
      defectExamples: [],
      samples: []
    }
  }
  let defects: Defects = { ...NO_DEFECTS }
  for (const s of samples) defects = addDefects(defects, s.integrity)
  const defective = defects.lost + defects.duplicated + defects.torn + defects.reordered > 0
  const restarts = samples.flatMap((s) => s.restarts)
  const withWriter = samples.filter((s) => s.writerSummary !== null)
  return {
    ...base,
    lost: defects.lost,
    duplicated: defects.duplicated,
    torn: defects.torn,
    reordered: defects.reordered,
    complete: samples.every((s) => s.complete),
    recordsPerSec: defective ? null : spread(samples.map((s) => s.records / (s.completeMs / 1000))),
    producersMs: spread(samples.map((s) => s.producersMs)),
    completeMs: spread(samples.map((s) => s.completeMs)),
    writerDownMs: restarts.length === 0 ? null : spread(restarts.map((r) => r.downMs)),
    tailMs: scenario === 'restart' ? spread(samples.map((s) => s.completeMs - (s.loopEndMs ?? 0))) : null,
    spooledBatches: withWriter.length === 0 ? null : withWriter.reduce((n, s) => n + (s.writerSummary?.spool?.entries ?? 0), 0) + restarts.reduce((n, r) => n + r.stopped.spooled, 0),
    outOfSequence: withWriter.length === 0 ? null : withWriter.reduce((n, s) => n + (s.writerSummary?.rejected.out_of_sequence ?? 0), 0) + restarts.reduce((n, r) => n + r.stopped.outOfSequence, 0),
    failedExits: samples.flatMap((s) => s.failedExits),
    finishErrors: samples.flatMap((s) => s.finishErrors),
    defectExamples: samples.find((s) => s.integrity.examples.length > 0)?.integrity.examples ?? [],
    samples: samples.map((s) => ({ producersMs: s.producersMs, completeMs: s.completeMs, complete: s.complete, loopEndMs: s.loopEndMs, restarts: s.restarts }))
  }
}
