/**
 * A soak producer (bench/soak.ts starts 10 of them): logs `rate` records/s in 10 ms ticks,
 * through one long-lived logger (`funnel()` or the pino transport) with a child logger per
 * "request", and every `destinationEveryMs` makes a whole new destination, logs 20 records
 * through it and then closes it or just drops it (alternately). Every record has `src` (one per
 * destination) and `seq` (0, 1, 2, ... per src), so `logfunnel verify --key src` checks each.
 *
 * Ends, printing `{"event":"done","how":...,"counts":{src: records logged}}` on stdout, on:
 * "stop" on stdin (close everything, exit 0), "exit" on stdin (exit at once without closing),
 * or a signal (the counts are printed from signal-exit's hook, the one logfunnel spools from).
 * Argument: one JSON object (Params).
 */
import { randomBytes } from 'node:crypto'
import { writeSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import pino from 'pino'
import { onExit } from 'signal-exit'
import { funnel, type FunnelDestination } from '../producer/index.js'

interface Params {
  endpoint: string
  mode: 'funnel' | 'transport'
  tag: string
  rate: number
  destinationEveryMs: number
}

const TICK_MS = 10
/** Records logged through each short-lived destination before it is closed or dropped. */
const RECORDS_PER_DESTINATION = 20

const params = JSON.parse(process.argv[2] ?? '{}') as Params
const transportTarget = fileURLToPath(new URL('../producer/transport.js', import.meta.url))
const TEXT = randomBytes(12_288).toString('base64')
const counts: Record<string, number> = {}
let reported = false

function report (how: string): void {
  if (reported) return
  reported = true
  writeSync(1, JSON.stringify({ event: 'done', how, pid: process.pid, counts }) + '\n')
}
onExit((code, signal) => { report(signal ?? `exit ${String(code)}`) })

function randomInt (n: number): number { return Math.floor(Math.random() * n) }

/** 100 B - 4 KiB, mostly small: 70 % 100-400, 25 % 400-1500, 5 % 1500-4096. */
function payload (): string {
  const r = Math.random()
  const n = r < 0.7 ? 100 + randomInt(300) : r < 0.95 ? 400 + randomInt(1100) : 1500 + randomInt(2597)
  const at = randomInt(TEXT.length - n)
  return TEXT.slice(at, at + n)
}

function logOne (log: pino.Logger, src: string): void {
  const seq = counts[src] ?? 0
  log.info({ src, seq, payload: payload() })
  counts[src] = seq + 1
}

function newLogger (): { log: pino.Logger, end: () => Promise<void> } {
  if (params.mode === 'funnel') {
    const dest: FunnelDestination = funnel({ endpoint: params.endpoint })
    return { log: pino(dest), end: async () => { await dest.close() } }
  }
  const transport = pino.transport({ target: transportTarget, options: { endpoint: params.endpoint } })
  return {
    log: pino(transport),
    end: async () => await new Promise<void>((resolve) => { transport.once('close', () => resolve()); transport.end() })
  }
}

const main = newLogger()
const mainSrc = `${params.tag}.${process.pid}.main`
let requests = 0
let destinations = 0
let stopping = false
const perTick = params.rate * TICK_MS / 1000
let owed = 0

const ticker = setInterval(() => {
  owed += perTick
  while (owed >= 1) {
    const child = main.log.child({ req: requests++ })
    const n = Math.min(Math.floor(owed), 1 + randomInt(5))
    for (let i = 0; i < n; i++) logOne(child, mainSrc)
    owed -= n
  }
}, TICK_MS)

const churn = setInterval(() => {
  const k = destinations++
  const src = `${params.tag}.${process.pid}.d${k}`
  const { log, end } = newLogger()
  for (let i = 0; i < RECORDS_PER_DESTINATION; i++) logOne(log, src)
  // Alternately closed and dropped: a dropped one is left to the garbage collector.
  if (k % 2 === 0) end().catch((err: unknown) => { writeSync(2, `soak-producer: close failed: ${String(err)}\n`) })
}, params.destinationEveryMs)

process.stdin.setEncoding('utf8')
process.stdin.on('data', (text: string) => {
  if (text.includes('exit')) {
    report('exit without close')
    process.exit(0)
  }
  if (text.includes('stop') && !stopping) {
    stopping = true
    clearInterval(ticker)
    clearInterval(churn)
    main.end().then(() => {
      report('stop')
      process.exit(0)
    }, (err: unknown) => {
      writeSync(2, `soak-producer: close failed: ${String(err)}\n`)
      report('stop, close failed')
      process.exit(1)
    })
  }
})
