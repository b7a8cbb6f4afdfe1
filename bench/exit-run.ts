import { mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { debuglog } from 'node:util'
import { startWriter, type RunningWriter } from '../producer/start-writer.js'
import { defaultSpoolDir } from '../shared/spool.js'
import { benchError, stopAll, type BenchChild } from './child.js'
import { checkIntegrity } from './integrity.js'
import { exitCodeWithin, fileSize, startProducers, waitForFile, type LossRunParams, type LossSample, type WriterStopped } from './loss-run.js'
import { needsRsyslogd, needsWriter, writesFile } from './strategies.js'

const debug = debuglog('logfunnel')

/** Producers must be gone within this after `go`: a floor plus an allowance per record. */
const EXIT_DEADLINE_BASE_MS = 60_000
const EXIT_DEADLINE_MS_PER_RECORD = 0.05
/** After the producers exited, the writer gets this long to have every record in the file. */
const SETTLE_DEADLINE_BASE_MS = 30_000
const SETTLE_DEADLINE_MS_PER_RECORD = 0.05
/** After a failure the writer gets this long to stop before it is killed. */
const CLEANUP_STOP_MS = 5000

/**
 * The exit scenario, one run: N producers log R records each and call `process.exit(0)` right
 * after the last `log.info` (no flush, no close). For `funnel` and `funnel-transport` the
 * writer (started with its defaults) stays up: what the producers had not got a receipt for
 * is in the spool, so the harness waits until the file holds every byte and no spool file is
 * left, or a deadline passes, then stops the writer. The file is verified either way: `lost`
 * and `duplicated` come from it.
 *
 * Rejects with `LOGFUNNEL_ERR_BENCH` when a producer fails to start or hangs (a producer that
 * exits non-zero is reported in `failedExits`, not thrown), and with the writer's start/stop
 * codes. Throws for `null`, which has no file.
 *
 * @example
 * ```ts
 * const sample = await runExitOnce({ strategy: 'funnel', producers: 4, records: 20_000, recordBytes: 100, dir })
 * sample.integrity.lost // 0
 * ```
 */
export async function runExitOnce (params: LossRunParams): Promise<LossSample> {
  const { strategy, producers, records, recordBytes } = params
  if (!writesFile(strategy)) throw benchError(`the exit scenario needs a file; ${strategy} writes none`)
  if (needsRsyslogd(strategy)) throw benchError('the exit scenario does not start an rsyslogd; rsyslog is a throughput peer only')
  const runDir = mkdtempSync(join(params.dir, `exit-${strategy}-`))
  const file = join(runDir, 'app.log')
  const endpoint = `ipc://${join(runDir, 'w.sock')}`
  let children: BenchChild[] = []
  let writer: RunningWriter | undefined
  try {
    if (needsWriter(strategy)) writer = await startWriter({ file, endpoint })
    const started = await startProducers(producers, { strategy, file, endpoint, records, recordBytes, exitAtOnce: true }, `exit ${strategy}`)
    children = started.children
    const expectedBytes = started.readies.reduce((sum, r) => sum + (r.loggedBytes ?? 0), 0)
    const total = producers * records

    const t0 = performance.now()
    for (const child of children) child.send('go', true)
    let t1 = t0
    const codes = await Promise.all(children.map(async (child) => {
      const code = await exitCodeWithin(child, EXIT_DEADLINE_BASE_MS + total * EXIT_DEADLINE_MS_PER_RECORD)
      t1 = Math.max(t1, performance.now())
      return code
    }))
    // Without a writer nothing can reach the file after the processes are gone.
    const complete = writer === undefined
      ? fileSize(file) >= expectedBytes
      : await waitForFile(file, expectedBytes, defaultSpoolDir(endpoint), SETTLE_DEADLINE_BASE_MS + total * SETTLE_DEADLINE_MS_PER_RECORD)
    const t2 = writer === undefined ? t1 : performance.now()

    const running = writer
    writer = undefined
    const writerSummary = running === undefined ? null : await running.stop() as WriterStopped
    const integrity = await checkIntegrity(file, total)
    debug('bench exit %s x%d: producers gone %d ms, file %s at %d ms', strategy, producers, t1 - t0, complete ? 'complete' : 'INCOMPLETE', t2 - t0)
    return {
      scenario: 'exit',
      strategy,
      producers,
      records: total,
      expectedBytes,
      fileBytes: fileSize(file),
      producersMs: t1 - t0,
      completeMs: t2 - t0,
      complete,
      failedExits: codes.filter((code) => code !== 0),
      finishErrors: [],
      loopEndMs: null,
      restarts: [],
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
