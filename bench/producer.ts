/**
 * One bench producer process: `node producer.js <json ProducerParams>`.
 *
 * Sets up the strategy's pino logger, prints `{"event":"ready","loggedBytes":...}`, waits for
 * `go` on stdin, logs `records` records `{ pid, seq }` (or as many as it can until the end
 * time that comes with `go <epoch ms>`, else for `durationMs`) with a `recordBytes`-byte
 * message while timing every `log.info` call, waits until its records are in the file
 * (receipted, for logfunnel), prints `{"event":"finished"}`, closes the logger (outside the
 * measure), then prints `{"event":"done",...}`
 * (ProducerDone) with its measures, and exits. With
 * `exitAtOnce` it calls `process.exit(0)` right after the last `log.info` instead: no flush,
 * no close, no done line (the exit scenario). With `pace` it pauses every so many records.
 */
import { once } from 'node:events'
import { PerformanceObserver } from 'node:perf_hooks'
import { setTimeout as delay } from 'node:timers/promises'
import pino from 'pino'
import { benchError } from './child.js'
import { openLogger } from './loggers.js'
import type { Strategy } from './strategies.js'

/** The JSON argument of the producer process. */
export interface ProducerParams {
  strategy: Strategy
  file?: string
  endpoint?: string
  /** rsyslog's imtcp port on 127.0.0.1. */
  port?: number
  /** Records to log; without it the producer logs for `durationMs`. */
  records?: number
  /** Log for this long from `go` (the steady-state throughput runs); ignored when `records` is set. */
  durationMs?: number
  recordBytes: number
  /** Call `process.exit(0)` right after the last log call (the exit scenario). */
  exitAtOnce?: boolean
  /** Log at a steady pace: wait `pauseMs` after every `every` records (the restart scenario). */
  pace?: { every: number, pauseMs: number }
}

/** The `ready` line a producer prints. */
export interface ProducerReady {
  event: 'ready'
  pid: number
  /** Bytes of the lines it will log: its share of the file, known before it starts; null when it logs for a duration. */
  loggedBytes: number | null
}

/** The `done` line a producer prints. */
export interface ProducerDone {
  event: 'done'
  pid: number
  records: number
  /** Bytes of the lines logged: equals the producer's share of the file. */
  loggedBytes: number
  /** CPU time of the whole process (all threads) from `go` until `finish()` resolved. */
  cpuUserUs: number
  cpuSystemUs: number
  /** Peak resident set size of the process, in KiB. */
  maxRssKb: number
  /** Context switches of the process (all threads) from `go` until `finish()` resolved. */
  voluntaryContextSwitches: number
  involuntaryContextSwitches: number
  /** The main thread's garbage collections in the same window: count, summed and longest pause. */
  gc: { count: number, totalMs: number, maxMs: number }
  /** Compressed HDR histogram of the `log.info` durations, in ns. */
  histogram: string
  /** The logging loop alone. */
  loopMs: number
  /** From the loop's end until `finish()` settled: the tail until every record is in the file (funnel: its flush). */
  finishMs: number
  /** When `finish()` settled, in ms since the epoch: the end of this producer's share of the run. */
  finishedAtMs: number
  /** `finish()` rejected (e.g. LOGFUNNEL_ERR_CLOSE_TIMEOUT): its code or message, else null. */
  finishError: string | null
}

/**
 * A bound on the records one producer can log per second, to size the latency array of a
 * timed run: pino alone takes ~0.75 us per 100-byte record on the development machine
 * (1.3M/s), so 4M/s is never reached; were it reached, the run would end early.
 */
const MAX_RECORDS_PER_SEC = 4_000_000

/** Records a timed producer logs into a discarding pino before it is ready (~30-60 ms of CPU). */
const WARMUP_RECORDS = 30_000

/** Long enough for the GC entries of the logging loop to reach the observer (two immediates). */
const GC_ENTRIES_WAIT_MS = 20

const params = JSON.parse(process.argv[2] ?? '{}') as ProducerParams
const { log, ready, finish, close } = await openLogger(params.strategy, { file: params.file, endpoint: params.endpoint, port: params.port })
const message = 'x'.repeat(params.recordBytes)
const durationMs = params.records === undefined ? params.durationMs ?? 0 : Infinity
const limit = params.records ?? Math.ceil(durationMs / 1000 * MAX_RECORDS_PER_SEC)
// Float32: a microsecond-scale duration in ms keeps ~7 digits; pages never touched cost no RSS.
const durations = new Float32Array(limit)

if (params.records === undefined) {
  // Warms pino's code up before the window: with 16 producers on 2 cores each gets ~0.15 s
  // of CPU in a 1.2 s window, which would otherwise go to the interpreter and the JIT.
  const warm = pino({}, { write: (_line: string) => true })
  for (let seq = 0; seq < WARMUP_RECORDS; seq++) warm.info({ seq }, message)
}
await ready()
const readyLine: ProducerReady = { event: 'ready', pid: process.pid, loggedBytes: params.records === undefined ? null : loggedBytes(params.records, message) }
process.stdout.write(`${JSON.stringify(readyLine)}\n`)
process.stdin.setEncoding('utf8')
const [command] = await once(process.stdin, 'data') as [string]
// `go` or, for a timed run, `go <end>`: the end of logging in ms since the epoch, the same
// instant for every producer however late one of them is scheduled to read its `go`.
const [word, endEpochMs] = command.trim().split(' ')
if (word !== 'go') throw benchError(`expected "go" on stdin, got ${JSON.stringify(command)}`)
process.stdin.destroy()

const gc = { count: 0, totalMs: 0, maxMs: 0 }
// Entries arrive after the synchronous loop, each with its own start time and duration.
const gcObserver = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gc.count++
    gc.totalMs += entry.duration
    gc.maxMs = Math.max(gc.maxMs, entry.duration)
  }
})
gcObserver.observe({ entryTypes: ['gc'] })
const usage0 = process.resourceUsage()
const cpu0 = process.cpuUsage()
const t0 = performance.now()
let records = 0
if (params.pace === undefined) {
  // One clock read per record: the end of one call is the start of the next.
  const end = endEpochMs === undefined ? t0 + durationMs : Number(endEpochMs) - performance.timeOrigin
  let start = t0
  while (records < limit && start < end) {
    log.info({ seq: records }, message)
    const now = performance.now()
    durations[records++] = now - start
    start = now
  }
} else {
  // A separate loop, so that the unpaced one stays free of awaits.
  const { every, pauseMs } = params.pace
  for (let seq = 0; seq < limit; seq++, records++) {
    const start = performance.now()
    log.info({ seq }, message)
    durations[seq] = performance.now() - start
    if ((seq + 1) % every === 0) await delay(pauseMs)
  }
}
const t1 = performance.now()
if (params.exitAtOnce === true) process.exit(0)
let finishError: string | null = null
await finish().catch((err: Error & { code?: string }) => { finishError = err.code ?? err.message })
const t2 = performance.now()
const cpu = process.cpuUsage(cpu0)
const usage = process.resourceUsage()
// The harness reads the machine's CPU counters at this line, before the work below.
process.stdout.write('{"event":"finished"}\n')
if (finishError === null) await close?.().catch((err: Error & { code?: string }) => { finishError = err.code ?? err.message })
// GC entries reach the observer a few turns of the event loop later.
await delay(GC_ENTRIES_WAIT_MS)
gcObserver.disconnect()
// Loaded after the measured part: the histogram library is not what a producer's start costs.
const { encodeDurations } = await import('./latency.js')

const done: ProducerDone = {
  event: 'done',
  pid: process.pid,
  records,
  loggedBytes: loggedBytes(records, message),
  cpuUserUs: cpu.user,
  cpuSystemUs: cpu.system,
  maxRssKb: usage.maxRSS,
  voluntaryContextSwitches: usage.voluntaryContextSwitches - usage0.voluntaryContextSwitches,
  involuntaryContextSwitches: usage.involuntaryContextSwitches - usage0.involuntaryContextSwitches,
  gc,
  histogram: encodeDurations(durations.subarray(0, records)),
  loopMs: t1 - t0,
  finishMs: t2 - t1,
  finishedAtMs: performance.timeOrigin + t2,
  finishError
}
process.stdout.write(`${JSON.stringify(done)}\n`)

/**
 * The bytes this producer's lines take: its records differ only in the digits of `seq` (the
 * time stays 13 digits), so one line formatted by the same pino settings gives the rest.
 * `null` has no file to measure, and for the others it cross-checks the file size.
 */
function loggedBytes (records: number, msg: string): number {
  let line = ''
  pino({}, { write: (text: string) => { line += text } }).info({ seq: 0 }, msg)
  const first = Buffer.byteLength(line)
  let extraDigits = 0
  for (let digits = 2, from = 10; from < records; digits++, from *= 10) {
    extraDigits += (Math.min(records, from * 10) - from) * (digits - 1)
  }
  return records * first + extraDigits
}
