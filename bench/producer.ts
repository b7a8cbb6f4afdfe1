/**
 * One bench producer process: `node producer.js <json ProducerParams>`.
 *
 * Sets up the strategy's pino logger, prints `{"event":"ready"}`, waits for `go` on stdin,
 * logs `records` records `{ pid, seq }` with a `recordBytes`-byte message while timing every
 * `log.info` call, waits until its records are in the file (receipted, for logfunnel), and
 * prints `{"event":"done",...}` (ProducerDone) before it exits.
 */
import { once } from 'node:events'
import pino from 'pino'
import { benchError } from './child.js'
import { openLogger } from './loggers.js'
import type { Strategy } from './strategies.js'

/** The JSON argument of the producer process. */
export interface ProducerParams {
  strategy: Strategy
  file?: string
  endpoint?: string
  records: number
  recordBytes: number
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
  /** Compressed HDR histogram of the `log.info` durations, in ns. */
  histogram: string
  /** The logging loop alone. */
  loopMs: number
  /** From the loop's end until `finish()` resolved: the flush, close and receipt tail. */
  finishMs: number
}

const params = JSON.parse(process.argv[2] ?? '{}') as ProducerParams
const { log, ready, finish } = await openLogger(params.strategy, { file: params.file, endpoint: params.endpoint })
const message = 'x'.repeat(params.recordBytes)
const durations = new Float64Array(params.records)

await ready()
process.stdout.write(`${JSON.stringify({ event: 'ready', pid: process.pid })}\n`)
process.stdin.setEncoding('utf8')
const [command] = await once(process.stdin, 'data') as [string]
if (command.trim() !== 'go') throw benchError(`expected "go" on stdin, got ${JSON.stringify(command)}`)
process.stdin.destroy()

const cpu0 = process.cpuUsage()
const t0 = performance.now()
for (let seq = 0; seq < params.records; seq++) {
  const start = performance.now()
  log.info({ seq }, message)
  durations[seq] = performance.now() - start
}
const t1 = performance.now()
await finish()
const t2 = performance.now()
const cpu = process.cpuUsage(cpu0)
// Loaded after the measured part: the histogram library is not what a producer's start costs.
const { encodeDurations } = await import('./latency.js')

const done: ProducerDone = {
  event: 'done',
  pid: process.pid,
  records: params.records,
  loggedBytes: loggedBytes(params.records, message),
  cpuUserUs: cpu.user,
  cpuSystemUs: cpu.system,
  maxRssKb: process.resourceUsage().maxRSS,
  histogram: encodeDurations(durations),
  loopMs: t1 - t0,
  finishMs: t2 - t1
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
