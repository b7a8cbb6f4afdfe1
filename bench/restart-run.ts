import { mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { debuglog } from 'node:util'
import { startWriter, type RunningWriter, type StartWriterOptions } from '../producer/start-writer.js'
import { defaultSpoolDir } from '../shared/spool.js'
import { benchError, stopAll, type BenchChild } from './child.js'
import { checkIntegrity } from './integrity.js'
import { fileSize, startProducers, waitForFile, type LossRunParams, type LossSample, type RestartEvent, type WriterStopped } from './loss-run.js'
import type { ProducerDone } from './producer.js'
import { needsWriter } from './strategies.js'

const debug = debuglog('logfunnel')

/**
 * The stopping writer drains for at most this long (default 5 s) and stops after this much
 * quiet (default 200 ms). Producers logging at full speed never leave it quiet, so with the
 * defaults every record would be written before it stops; a short drain leaves batches in
 * flight, which is the case the restart scenario is about.
 */
const DRAIN_TIMEOUT_MS = 250
const DRAIN_IDLE_MS = 20
/**
 * The producers log at a steady pace, so that each restart comes while they log: their
 * logging is spread over (restarts + 1) x this, in PACE_PAUSES pauses. Unpaced, 20000 records
 * take a producer a few hundred ms, less than one restart.
 */
const PACE_SPACING_MS = 1000
const PACE_PAUSES = 100
/** The whole run: a floor plus a generous allowance per record. */
const RUN_DEADLINE_BASE_MS = 90_000
const RUN_DEADLINE_MS_PER_RECORD = 0.1
/** After the producers are done, the records a close deadline sent to the spool must be in the file within this. */
const SETTLE_DEADLINE_MS = 30_000
const EXIT_DEADLINE_MS = 10_000
const CLEANUP_STOP_MS = 5000

/**
 * The restart scenario, one run, for the strategies with a writer: N producers log R records
 * each at a steady pace (spread over about restarts + 1 seconds) and close as usual (every
 * record receipted), while the writer is stopped gracefully
 * (SIGTERM, short drain) and started again on the same file, endpoint and state file,
 * `restarts` times: restart k when the file holds k / (restarts + 1) of the bytes. Producer
 * options are the defaults. Once every producer is done (and the file holds every byte, should
 * a close deadline have spooled records), the writer is stopped and the file verified.
 *
 * Rejects with `LOGFUNNEL_ERR_BENCH` for a strategy without a writer, a producer that crashes,
 * exits non-zero or misses a deadline, and with the writer's start/stop codes.
 *
 * @example
 * ```ts
 * const sample = await runRestartOnce({ strategy: 'funnel', producers: 4, records: 20_000, recordBytes: 100, dir, restarts: 1 })
 * sample.integrity.duplicated // 0
 * ```
 */
export async function runRestartOnce (params: LossRunParams): Promise<LossSample> {
  const { strategy, producers, records, recordBytes } = params
  const restarts = params.restarts ?? 1
  if (!needsWriter(strategy)) throw benchError(`the restart scenario needs a writer; ${strategy} has none`)
  const runDir = mkdtempSync(join(params.dir, `restart-${strategy}-`))
  const file = join(runDir, 'app.log')
  const endpoint = `ipc://${join(runDir, 'w.sock')}`
  const writerOptions: StartWriterOptions = { file, endpoint, drainTimeoutMs: DRAIN_TIMEOUT_MS, drainIdleMs: DRAIN_IDLE_MS }
  let children: BenchChild[] = []
  let writer: RunningWriter | undefined
  try {
    writer = await startWriter(writerOptions)
    const pace = { every: Math.max(1, Math.floor(records / PACE_PAUSES)), pauseMs: Math.round(PACE_SPACING_MS * (restarts + 1) / PACE_PAUSES) }
    const started = await startProducers(producers, { strategy, endpoint, records, recordBytes, pace }, `restart ${strategy}`)
    children = started.children
    const expectedBytes = started.readies.reduce((sum, r) => sum + (r.loggedBytes ?? 0), 0)
    const total = producers * records
    const runDeadlineMs = RUN_DEADLINE_BASE_MS + total * RUN_DEADLINE_MS_PER_RECORD

    const t0 = performance.now()
    for (const child of children) child.send('go', true)
    let t1 = t0
    const dones = Promise.all(children.map(async (child) => {
      const done = await child.next('done', runDeadlineMs) as unknown as ProducerDone
      t1 = Math.max(t1, performance.now())
      return done
    }))
    // Awaited below; until then a crash must not surface as an unhandled rejection.
    dones.catch(() => {})

    const events: RestartEvent[] = []
    for (let k = 1; k <= restarts; k++) {
      const target = Math.floor(expectedBytes * k / (restarts + 1))
      if (!await waitForFile(file, target, undefined, runDeadlineMs)) {
        throw benchError(`restart ${k}: the file did not reach ${target} bytes within ${runDeadlineMs} ms (${fileSize(file)} bytes)`)
      }
      const tStop = performance.now()
      const fileBytes = fileSize(file)
      const stopped = await writer.stop() as WriterStopped
      writer = undefined
      writer = await startWriter(writerOptions)
      events.push({ atMs: tStop - t0, fileBytes, downMs: performance.now() - tStop, stopped: stoppedCounts(stopped) })
    }

    const done = await dones
    const complete = await waitForFile(file, expectedBytes, defaultSpoolDir(endpoint), SETTLE_DEADLINE_MS)
    const t2 = performance.now()
    await Promise.all(children.map(async (child) => await child.expectExit(EXIT_DEADLINE_MS)))
    const running = writer
    writer = undefined
    const writerSummary = await running.stop() as WriterStopped
    const integrity = await checkIntegrity(file, total)
    debug('bench restart %s x%d: %d restarts, producers done %d ms, file %s at %d ms', strategy, producers, restarts, t1 - t0, complete ? 'complete' : 'INCOMPLETE', t2 - t0)
    return {
      scenario: 'restart',
      strategy,
      producers,
      records: total,
      expectedBytes,
      fileBytes: fileSize(file),
      producersMs: t1 - t0,
      completeMs: t2 - t0,
      complete,
      failedExits: [],
      finishErrors: done.flatMap((d) => d.finishError === null ? [] : [d.finishError]),
      loopEndMs: Math.max(...done.map((d) => d.loopMs)),
      restarts: events,
      writerSummary,
      integrity,
      file: params.keepFile === true ? file : null
    }
  } finally {
    await stopAll(children)
    if (writer !== undefined) await writer.stop(CLEANUP_STOP_MS).catch(() => {})
    if (params.keepFile !== true) rmSync(runDir, { recursive: true, force: true })
  }
}

function stoppedCounts (summary: WriterStopped): RestartEvent['stopped'] {
  return {
    records: summary.records,
    duplicates: summary.duplicates,
    spooled: summary.spool?.entries ?? 0,
    outOfSequence: summary.rejected.out_of_sequence ?? 0
  }
}
