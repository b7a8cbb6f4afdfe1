import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { debuglog } from 'node:util'
import { startWriter, type RunningWriter, type StoppedSummary } from '../producer/start-writer.js'
import { benchError, BenchChild, compiledScript, stopAll } from './child.js'
import { checkIntegrity, type Integrity } from './integrity.js'
import { mergeLatencies, type LatencySummary } from './latency.js'
import { cpuSeconds, machineBusySeconds, peakRssMb } from './proc-stats.js'
import type { ProducerDone, ProducerParams } from './producer.js'
import { FileGrowth, startRawLinesRsyslogd, type RunningRsyslogd } from './rsyslog.js'
import { needsRsyslogd, needsWriter, writesFile, type Strategy } from './strategies.js'

const debug = debuglog('logfunnel')

/** A producer must be set up (node started, logger ready) within this. */
const READY_DEADLINE_MS = 30_000
/** After its `done` line a producer only has to exit. */
const EXIT_DEADLINE_MS = 10_000
/** The run itself: a floor plus a generous allowance per record and per byte. */
const RUN_DEADLINE_BASE_MS = 60_000
const RUN_DEADLINE_MS_PER_RECORD = 0.05
const RUN_DEADLINE_MS_PER_KB = 0.05
/** A timed run: the logging takes `durationMs`; the tail (receipts, transports' flush) far less. */
const RUN_DEADLINE_PER_DURATION = 10
/**
 * The writer's drain on stop: every record already has a receipt when the harness stops it,
 * so the default 200 ms idle wait would only slow the benchmark down (it is not timed).
 */
const WRITER_DRAIN_IDLE_MS = 20
/** After a failure the writer gets this long to stop before it is killed. */
const CLEANUP_STOP_MS = 5000
/** rsyslogd must listen within this (it takes ~20 ms). */
const RSYSLOGD_READY_MS = 10_000
/** rsyslogd drains its queues on SIGTERM; every record is in its file by then. */
const RSYSLOGD_STOP_MS = 10_000
/**
 * rsyslog gives no receipt: the run ends when its file holds every byte logged. Should it not
 * grow for this long first, the rest counts as lost (its queue discards what it cannot enqueue
 * within 2 s).
 */
const RSYSLOG_STALL_MS = 10_000

/** One run of one cell. */
export interface RunParams {
  strategy: Strategy
  producers: number
  /** Records per producer; without it, each producer logs for `durationMs`. */
  records?: number
  /** How long each producer logs (from `go`) when `records` is not set. */
  durationMs?: number
  /** Bytes of each record's message. */
  recordBytes: number
  /** Parent directory: the run makes its own directory in it and removes it afterwards. */
  dir: string
  /** Leave the run's directory (and its `app.log`) in place; the caller removes it. */
  keepFile?: boolean
  /** Node options for the producer processes, e.g. `['--cpu-prof', '--cpu-prof-dir', dir]`. */
  producerNodeArgs?: string[]
}

/** What one run measured. */
export interface RunSample {
  strategy: Strategy
  producers: number
  /** Records logged in all, as reported by the producers. */
  records: number
  /** From `go` until the last producer's records were in the file (or receipted), by its own clock; rsyslog: until its file held every byte, by the harness's. */
  elapsedMs: number
  recordsPerSec: number
  mbPerSec: number
  /** Size of the file, or for `null` the bytes the producers logged. */
  bytes: number
  /** Bytes the producers say they logged: must equal `fileBytes`. */
  loggedBytes: number
  fileBytes: number | null
  latencyUs: LatencySummary
  cpuSec: { producers: number, writer: number }
  /** CPU seconds per million records (= microseconds per record): all, the producers' and the writer's. */
  cpuSecPerMillion: number
  producerCpuUsPerRecord: number
  writerCpuUsPerRecord: number
  /**
   * Cores' worth of CPU that other processes (not this run's) used while it was measured:
   * on a shared machine, the noise under the figures.
   */
  otherCores: number
  /** The slowest producer's tail: from the end of its logging loop until its records were in the file. */
  finishMs: number
  /** Context switches of all producers per 1000 records (voluntary: blocked or yielded; involuntary: preempted). */
  contextSwitchesPerKRecords: { voluntary: number, involuntary: number }
  /** The producers' main-thread GC pauses: summed over the producers, and the longest. */
  gc: { count: number, totalMs: number, maxMs: number }
  /** Largest peak RSS among the producers. */
  producerRssMb: number
  writerRssMb: number | null
  writerSummary: StoppedSummary | null
  integrity: Integrity | null
  /** The log file, when `keepFile` was set and the strategy writes one. */
  file: string | null
}

/**
 * Runs one cell once in fresh processes: starts the writer (logfunnel strategies), spawns
 * the producers, waits until every one is ready, releases them together with `go` on their
 * stdin, and times until the last one reports its records in the file. Then it reads the
 * writer's CPU time and peak RSS, stops it, and verifies the file.
 *
 * Rejects with `LOGFUNNEL_ERR_BENCH` when a producer crashes, exits non-zero or misses a
 * deadline, and `LOGFUNNEL_ERR_WRITER_START` / `LOGFUNNEL_ERR_WRITER_STOP` from the writer;
 * every child is stopped before it settles.
 *
 * @example
 * ```ts
 * const sample = await runOnce({ strategy: 'flock', producers: 4, records: 10_000, recordBytes: 100, dir })
 * sample.integrity // { lines: 40000, torn: 0, lost: 0, ... }
 * ```
 */
export async function runOnce (params: RunParams): Promise<RunSample> {
  const { strategy, producers, records, durationMs, recordBytes } = params
  if ((records === undefined) === (durationMs === undefined)) throw benchError('a run takes either records or durationMs')
  const runDir = mkdtempSync(join(params.dir, `${strategy}-`))
  const file = join(runDir, 'app.log')
  const children: BenchChild[] = []
  let writer: RunningWriter | undefined
  let rsyslogd: RunningRsyslogd | undefined
  let growth: FileGrowth<{ busy: number, writerCpu: number }> | undefined
  const tStart = performance.now()
  try {
    if (needsRsyslogd(strategy)) {
      // Lines are recordBytes plus pino's ~100 bytes of fields.
      rsyslogd = await startRawLinesRsyslogd({ dir: runDir, file, maxLineBytes: recordBytes + 1024, readyDeadlineMs: RSYSLOGD_READY_MS })
    }
    if (needsWriter(strategy)) {
      writer = await startWriter({
        file,
        endpoint: `ipc://${join(runDir, 'w.sock')}`,
        drainIdleMs: WRITER_DRAIN_IDLE_MS,
        fsync: strategy === 'funnel-nofsync' ? 'off' : 'batch',
        ...(strategy === 'funnel-checkpoints' ? { checkpoints: true, checkpointSizeBytes: 64 * 1024 * 1024 } : {})
      })
    }
    const producerParams: ProducerParams = { strategy, file, endpoint: writer?.endpoint, port: rsyslogd?.port, records, durationMs, recordBytes }
    for (let i = 0; i < producers; i++) {
      children.push(new BenchChild(compiledScript('producer.js'), [JSON.stringify(producerParams)], `${strategy} producer ${i + 1}/${producers}`, params.producerNodeArgs))
    }
    await Promise.all(children.map(async (child) => await child.next('ready', READY_DEADLINE_MS)))

    const tReady = performance.now()
    // The process that writes the file: logfunnel's writer or rsyslogd.
    const writerPid = writer?.pid ?? rsyslogd?.pid
    const writerCpu0 = writerPid === undefined ? 0 : cpuSeconds(writerPid)
    const runDeadlineMs = records === undefined
      ? RUN_DEADLINE_BASE_MS + (durationMs ?? 0) * RUN_DEADLINE_PER_DURATION
      : RUN_DEADLINE_BASE_MS + producers * records * (RUN_DEADLINE_MS_PER_RECORD + recordBytes / 1024 * RUN_DEADLINE_MS_PER_KB)
    const busy0 = machineBusySeconds()
    const t0 = performance.now()
    // A timed run ends at one instant for all producers, so that throughput counts one window.
    const go = durationMs === undefined ? 'go' : `go ${(performance.timeOrigin + t0 + durationMs).toFixed(3)}`
    if (rsyslogd !== undefined) {
      const pid = rsyslogd.pid
      growth = new FileGrowth(file, () => ({ busy: machineBusySeconds(), writerCpu: cpuSeconds(pid) }))
    }
    for (const child of children) child.send(go, true)
    await Promise.all(children.map(async (child) => await child.next('finished', runDeadlineMs)))
    let busy = machineBusySeconds() - busy0
    let writerCpu = writerPid === undefined ? 0 : cpuSeconds(writerPid) - writerCpu0
    const dones = await Promise.all(children.map(async (child) => await child.next('done', EXIT_DEADLINE_MS) as unknown as ProducerDone))
    // Timed by the producers' own clocks (one system clock): the latency histogram a producer
    // encodes before its done line is not part of the run.
    let t1 = Math.max(...dones.map((d) => d.finishedAtMs)) - performance.timeOrigin
    if (growth !== undefined && writerPid !== undefined) {
      // The producers have handed every byte to their sockets; the run ends when rsyslogd has
      // them all in its file, as first seen by the poll (every 2 ms) that started at go.
      const expected = dones.reduce((sum, d) => sum + d.loggedBytes, 0)
      const { growth: last } = await growth.reached(expected, RSYSLOG_STALL_MS, runDeadlineMs)
      // Incomplete: the file stalled short of the bytes logged; the check below counts what is lost.
      if (last !== null && last.at > t1) {
        t1 = last.at
        busy = last.probe.busy - busy0
        writerCpu = last.probe.writerCpu - writerCpu0
      }
    }
    const totalRecords = dones.reduce((sum, d) => sum + d.records, 0)
    const writerRssMb = writerPid === undefined ? null : peakRssMb(writerPid)
    const running = writer
    writer = undefined
    const tStopping = performance.now()
    // Every record is in the file once the producers are done (receipted, for logfunnel), so
    // the file is verified while the writer stops, which takes it about a second. Should the
    // file still grow meanwhile, it is verified again.
    const verifiedSize = writesFile(strategy) ? statSync(file).size : null
    const stoppingRsyslogd = rsyslogd
    rsyslogd = undefined
    const [writerSummary, firstIntegrity] = await Promise.all([
      running === undefined ? null : running.stop(),
      writesFile(strategy) ? checkIntegrity(file, totalRecords) : null,
      stoppingRsyslogd?.stop(RSYSLOGD_STOP_MS),
      ...children.map(async (child) => await child.expectExit(EXIT_DEADLINE_MS))
    ])
    const fileBytes = writesFile(strategy) ? statSync(file).size : null
    const integrity = fileBytes === verifiedSize ? firstIntegrity : await checkIntegrity(file, totalRecords)

    const failed = dones.find((d) => d.finishError !== null)
    if (failed !== undefined) throw benchError(`${strategy} producer (pid ${failed.pid}): finishing failed with ${String(failed.finishError)}`)
    if (records !== undefined && totalRecords !== producers * records) throw benchError(`producers logged ${totalRecords} records, expected ${producers * records}`)
    const loggedBytes = dones.reduce((sum, d) => sum + d.loggedBytes, 0)
    const elapsedMs = t1 - t0
    debug('bench %s x%d: setup %d ms, measured %d ms, stop and verify %d ms', strategy, producers,
      tReady - tStart, elapsedMs, performance.now() - tStopping)
    const bytes = fileBytes ?? loggedBytes
    const producerCpu = dones.reduce((sum, d) => sum + (d.cpuUserUs + d.cpuSystemUs) / 1e6, 0)
    return {
      strategy,
      producers,
      records: totalRecords,
      elapsedMs,
      recordsPerSec: totalRecords / (elapsedMs / 1000),
      mbPerSec: bytes / 1e6 / (elapsedMs / 1000),
      bytes,
      loggedBytes,
      fileBytes,
      latencyUs: mergeLatencies(dones.map((d) => d.histogram)),
      cpuSec: { producers: producerCpu, writer: writerCpu },
      cpuSecPerMillion: (producerCpu + writerCpu) / totalRecords * 1e6,
      producerCpuUsPerRecord: producerCpu / totalRecords * 1e6,
      writerCpuUsPerRecord: writerCpu / totalRecords * 1e6,
      otherCores: Math.max(0, busy - producerCpu - writerCpu) / (elapsedMs / 1000),
      finishMs: Math.max(...dones.map((d) => d.finishMs)),
      contextSwitchesPerKRecords: {
        voluntary: dones.reduce((sum, d) => sum + d.voluntaryContextSwitches, 0) / totalRecords * 1000,
        involuntary: dones.reduce((sum, d) => sum + d.involuntaryContextSwitches, 0) / totalRecords * 1000
      },
      gc: {
        count: dones.reduce((sum, d) => sum + d.gc.count, 0),
        totalMs: dones.reduce((sum, d) => sum + d.gc.totalMs, 0),
        maxMs: Math.max(...dones.map((d) => d.gc.maxMs))
      },
      producerRssMb: Math.max(...dones.map((d) => d.maxRssKb / 1024)),
      writerRssMb,
      writerSummary,
      integrity,
      file: params.keepFile === true && writesFile(strategy) ? file : null
    }
  } finally {
    await stopAll(children)
    if (writer !== undefined) await writer.stop(CLEANUP_STOP_MS).catch(() => {})
    if (rsyslogd !== undefined) await rsyslogd.kill()
    // Ends the poll when a failure came before the run's end.
    growth?.stop()
    if (params.keepFile !== true) rmSync(runDir, { recursive: true, force: true })
  }
}
