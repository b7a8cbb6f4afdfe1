/**
 * Soak: logfunnel run as a production site runs it for hours, compressed into minutes.
 *
 * One writer (the CLI: 8M rotation, gzip, keep 20, checkpoints every 5 s, stats every second,
 * metrics) and 14 producers at a steady rate: 8 through `funnel()`, 2 through the pino transport,
 * 4 Python; each makes a child logger per "request" and a whole new destination every
 * `--destination-every-ms`, closed or dropped (bench/soak-producer.ts, bench/python/soak_producer.py).
 * One producer of the restartable half is restarted every 20 s (SIGTERM, or exit without close),
 * the writer is SIGTERMed and restarted every 60 s, and SIGHUPed every 15 s.
 * Every 5 s: the writer's RSS, heap, descriptors and threads, the same of the long-lived
 * producers, the spool, and the writer's write latency. At the end: every record accounted for
 * (the rotated files are hard-linked aside as they appear, since --rotate-keep deletes them),
 * `logfunnel verify --key src` and `verify --checkpoints` over the whole set, no spool file left.
 *
 * Usage: node dist/bench/soak.js [--minutes 9] [--rate 1000] [--destination-every-ms 500] [--dir DIR]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createReadStream, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync, appendFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as delay } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { createGunzip } from 'node:zlib'
import { parseArgs } from 'node:util'

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '9' },
    rate: { type: 'string', default: '1000' },
    'destination-every-ms': { type: 'string', default: '500' },
    'writer-restart-ms': { type: 'string', default: '60000' },
    dir: { type: 'string' }
  }
})
const MINUTES = Number(args.minutes)
const RATE = Number(args.rate)
const DESTINATION_EVERY_MS = Number(args['destination-every-ms'])
const SAMPLE_MS = 5000
const PRODUCER_RESTART_MS = 20_000
const WRITER_RESTART_MS = Number(args['writer-restart-ms'])
const HUP_MS = 15_000

const root = fileURLToPath(new URL('../..', import.meta.url))
const bin = join(root, 'dist/cli/bin.js')
const dir = args.dir ?? mkdtempSync(join(tmpdir(), 'logfunnel-soak-'))
const logDir = join(dir, 'logs')
const keptDir = join(dir, 'kept')
mkdirSync(keptDir, { recursive: true })
mkdirSync(join(dir, 'reports'), { recursive: true })
const file = join(logDir, 'app.log')
const endpoint = `ipc://${dir}/w.sock`
const spoolDir = `${dir}/w.sock.spool`
const metricsPort = 20_000 + Math.floor(Math.random() * 20_000)
const samplesFile = join(dir, 'samples.jsonl')
const started = Date.now()

function log (text: string): void { console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${text}`) }

// ---- the writer ------------------------------------------------------------------------------

interface Writer { child: ChildProcess, pid: number, stopped: Promise<string> }
let writer: Writer | undefined
let lastStats: Record<string, any> | undefined
const latencies: Array<{ count: number, p50: number, p99: number, max: number }> = []
const writerEvents: string[] = []

async function startWriter (): Promise<Writer> {
  const child = spawn(process.execPath, [bin, 'writer', '--file', file, '--endpoint', endpoint,
    '--rotate-size', '8M', '--rotate-gzip', '--rotate-keep', '20', '--checkpoints', '--checkpoint-interval', '5s',
    '--stats-interval-ms', '1000', '--metrics-port', String(metricsPort)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // A writer that does not stop is asked for a diagnostic report (JS stack, handles) before SIGKILL.
    env: { ...process.env, NODE_OPTIONS: `--report-on-signal --report-signal=SIGUSR2 --report-directory=${dir}/reports` }
  })
  let stoppedLine = ''
  const stdout = createInterface({ input: child.stdout! })
  const ready = new Promise<number>((resolve, reject) => {
    stdout.on('line', (line) => {
      const event = JSON.parse(line) as { event: string, pid?: number }
      if (event.event === 'ready') resolve(event.pid ?? child.pid!)
      if (event.event === 'stopped') stoppedLine = line
    })
    child.once('exit', (code) => reject(new Error(`writer exited ${String(code)} before ready`)))
  })
  createInterface({ input: child.stderr! }).on('line', (line) => {
    let event: Record<string, any>
    try { event = JSON.parse(line) } catch { writerEvents.push(line); return }
    if (event.event === 'stats') {
      lastStats = event
      if (event.writeLatencyMs?.count > 0) latencies.push(event.writeLatencyMs)
    } else { writerEvents.push(line); log(`writer ${child.pid} says: ${line.slice(0, 300)}`) }
  })
  const stopped = once(child, 'exit').then(([code, signal]) => `exit ${String(code)} ${String(signal)} ${stoppedLine}`)
  const pid = await ready
  return { child, pid, stopped }
}

async function stopWriter (w: Writer): Promise<string> {
  w.child.kill('SIGTERM')
  const result = await Promise.race([w.stopped, delay(30_000).then(() => 'TIMEOUT')])
  if (result === 'TIMEOUT') {
    const tasks = readdirSync(`/proc/${w.pid}/task`).map((tid) => {
      const stat = readFileSync(`/proc/${w.pid}/task/${tid}/stat`, 'utf8')
      let wchan = ''
      try { wchan = readFileSync(`/proc/${w.pid}/task/${tid}/wchan`, 'utf8') } catch {}
      return `${stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))}:${stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)}:${wchan}`
    })
    log(`writer ${w.pid} still running 30 s after SIGTERM; threads ${tasks.join(' ')}; asking for a report (SIGUSR2)`)
    w.child.kill('SIGUSR2')
    await delay(5000)
    w.child.kill('SIGKILL')
    await w.stopped
    return 'TIMEOUT (killed)'
  }
  if (!result.startsWith('exit 0 ')) log(`writer stop: ${result}`)
  return result
}

// ---- producers -------------------------------------------------------------------------------

interface Slot { index: number, kind: 'funnel' | 'transport' | 'python', restartable: boolean, child?: ChildProcess, ended: Promise<void>, pid: number }
const slots: Slot[] = []
const reports: Array<{ how: string, pid: number, counts: Record<string, number> }> = []
const producerProblems: string[] = []

function spawnProducer (slot: Slot): void {
  const tag = `${slot.kind}${slot.index}`
  const child = slot.kind === 'python'
    ? spawn('/usr/bin/python3', [join(root, 'bench/python/soak_producer.py'),
        JSON.stringify({ endpoint, tag, rate: RATE, destination_every_ms: DESTINATION_EVERY_MS })], { stdio: ['pipe', 'pipe', 'pipe'] })
    : spawn(process.execPath, [join(root, 'dist/bench/soak-producer.js'),
      JSON.stringify({ endpoint, tag, mode: slot.kind, rate: RATE, destinationEveryMs: DESTINATION_EVERY_MS })], { stdio: ['pipe', 'pipe', 'pipe'] })
  slot.child = child
  slot.pid = child.pid!
  let done = false
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const event = JSON.parse(line)
    if (event.event === 'done') { reports.push(event); done = true }
  })
  createInterface({ input: child.stderr! }).on('line', (line) => { producerProblems.push(`${tag} ${child.pid}: ${line}`) })
  slot.ended = once(child, 'exit').then(([code, signal]) => {
    if (!done) producerProblems.push(`${tag} ${child.pid}: ended (${String(code)}, ${String(signal)}) without its counts`)
  })
}

// ---- sampling --------------------------------------------------------------------------------

function procStatus (pid: number): { rssMb: number, threads: number, fds: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const rss = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]) / 1024
    const threads = Number(/^Threads:\s+(\d+)$/m.exec(status)?.[1])
    return { rssMb: Math.round(rss * 10) / 10, threads, fds: readdirSync(`/proc/${pid}/fd`).length }
  } catch { return undefined }
}

async function metrics (): Promise<Record<string, number>> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(2000) })).text()
    const out: Record<string, number> = {}
    for (const name of ['nodejs_heap_size_used_bytes', 'process_resident_memory_bytes', 'process_open_fds', 'nodejs_active_handles_total', 'logfunnel_records_total', 'logfunnel_producers']) {
      const m = new RegExp(`^${name} (\\S+)`, 'm').exec(text)
      if (m !== null) out[name] = Number(m[1])
    }
    return out
  } catch (err) { return { error: 1 } }
}

function spoolState (): { files: number, bytes: number } {
  let files = 0; let bytes = 0
  const walk = (d: string): void => {
    let names: string[]
    try { names = readdirSync(d) } catch { return }
    for (const name of names) {
      try {
        const st = statSync(join(d, name))
        if (st.isDirectory()) walk(join(d, name)); else { files++; bytes += st.size }
      } catch {}
    }
  }
  walk(spoolDir)
  return { files, bytes }
}

async function sample (): Promise<Record<string, any>> {
  const recent = latencies.splice(0)
  const m = writer === undefined ? {} : await metrics()
  const longLived: Record<string, any> = {}
  for (const slot of slots) if (!slot.restartable) longLived[`${slot.kind}${slot.index}`] = procStatus(slot.pid)
  const s = {
    t: Math.round((Date.now() - started) / 1000),
    writerPid: writer?.pid,
    writer: writer === undefined ? undefined : procStatus(writer.pid),
    heapMb: m.nodejs_heap_size_used_bytes === undefined ? undefined : Math.round(m.nodejs_heap_size_used_bytes / 1048576 * 10) / 10,
    metrics: m,
    producers: longLived,
    spool: spoolState(),
    latency: recent.length === 0 ? undefined : { p50: Math.max(...recent.map((l) => l.p50)), p99: Math.max(...recent.map((l) => l.p99)), max: Math.max(...recent.map((l) => l.max)) },
    records: lastStats?.records,
    stats: lastStats === undefined ? undefined : { producers: lastStats.producers, connected: lastStats.connectedProducers, duplicates: lastStats.duplicates, rejected: lastStats.rejected, queueBytes: lastStats.queueBytes }
  }
  appendFileSync(samplesFile, JSON.stringify(s) + '\n')
  return s
}

// ---- keeping the rotated set -----------------------------------------------------------------

const ROTATED = /^app\.log\.\d{8}T\d{6}\.\d{3}Z(\.gz)?$/
function keepRotated (): void {
  let names: string[]
  try { names = readdirSync(logDir) } catch { return }
  for (const name of names) {
    if (!ROTATED.test(name) || existsSync(join(keptDir, name))) continue
    try { linkSync(join(logDir, name), join(keptDir, name)) } catch {}
  }
}

// ---- the run ---------------------------------------------------------------------------------

async function main (): Promise<void> {
  log(`dir ${dir}, ${MINUTES} min, ${RATE} records/s per producer, a new destination every ${DESTINATION_EVERY_MS} ms, metrics :${metricsPort}`)
  writer = await startWriter()
  const kinds: Array<Slot['kind']> = ['funnel', 'funnel', 'funnel', 'funnel', 'funnel', 'funnel', 'funnel', 'funnel', 'transport', 'transport', 'python', 'python', 'python', 'python']
  // The second of each kind's half is restarted in turn; the others live through the run.
  const restartable = new Set([4, 5, 6, 7, 9, 12, 13])
  kinds.forEach((kind, index) => {
    const slot: Slot = { index, kind, restartable: restartable.has(index), ended: Promise.resolve(), pid: 0 }
    slots.push(slot)
    spawnProducer(slot)
  })
  const keeper = setInterval(keepRotated, 100)
  const end = started + MINUTES * 60_000
  let restarts = 0
  let restarting: Promise<void> = Promise.resolve()
  let writerBusy = false
  const hup = setInterval(() => { if (!writerBusy && writer !== undefined) process.kill(writer.pid, 'SIGHUP') }, HUP_MS)
  const producerRestart = setInterval(() => {
    const candidates = slots.filter((s) => s.restartable)
    const slot = candidates[restarts % candidates.length]!
    const how = slot.kind !== 'python' && restarts % 2 === 0 ? 'SIGTERM' : 'exit'
    restarts++
    const child = slot.child!
    if (how === 'SIGTERM') child.kill('SIGTERM'); else child.stdin!.write('exit\n')
    restarting = slot.ended.then(() => spawnProducer(slot), () => {})
  }, PRODUCER_RESTART_MS)
  const writerRestart = setInterval(() => {
    if (writer === undefined) return
    writerBusy = true
    const old = writer
    writer = undefined
    log(`writer restart: SIGTERM to ${old.pid}`)
    stopWriter(old).then(async (result) => {
      log(`writer ${old.pid} ended: ${result.slice(0, 200)}`)
      writer = await startWriter()
      log(`writer ${writer.pid} ready`)
    }).then(() => { writerBusy = false },
      (err: unknown) => { log(`writer restart failed: ${String(err)}`); process.exitCode = 1 })
  }, WRITER_RESTART_MS)

  while (Date.now() < end) {
    await delay(SAMPLE_MS)
    const s = await sample()
    log(`writer ${s.writer === undefined ? '-' : `rss ${s.writer.rssMb} MB heap ${s.heapMb} MB fds ${s.writer.fds} threads ${s.writer.threads}`}` +
      ` | spool ${s.spool.files} files ${(s.spool.bytes / 1e6).toFixed(1)} MB | latency p99 ${s.latency?.p99 ?? '-'} max ${s.latency?.max ?? '-'} ms` +
      ` | ${Object.entries(s.producers).map(([k, v]: [string, any]) => `${k} ${v === undefined ? '-' : `${v.rssMb}M/${v.fds}fd/${v.threads}t`}`).join(' ')}`)
  }
  clearInterval(hup); clearInterval(producerRestart); clearInterval(writerRestart)
  while (writerBusy) await delay(100)

  log('stopping the producers')
  await restarting
  for (const slot of slots) slot.child!.stdin!.write('stop\n')
  await Promise.race([Promise.all(slots.map((s) => s.ended)), delay(60_000)])
  for (const slot of slots) if (slot.child!.exitCode === null && slot.child!.signalCode === null) { producerProblems.push(`${slot.kind}${slot.index}: did not end within 60 s of stop`); slot.child!.kill('SIGKILL') }
  // The writer takes what the producers spooled (the dropped destinations', a restart's).
  const spoolDeadline = Date.now() + 60_000
  while (spoolState().files > 0 && Date.now() < spoolDeadline) await delay(200)
  const spoolLeftBeforeStop = spoolState()
  const stoppedLine = writer === undefined ? 'no writer' : await stopWriter(writer)
  writer = undefined
  keepRotated()
  clearInterval(keeper)
  const spoolLeft = spoolState()
  log(`writer: ${stoppedLine}`)
  log(`spool before the last stop ${JSON.stringify(spoolLeftBeforeStop)}, after ${JSON.stringify(spoolLeft)}`)

  // ---- accounting ----
  const kept = readdirSync(keptDir).sort()
  const set: string[] = []
  for (const name of kept) {
    if (name.endsWith('.gz')) set.push(join(keptDir, name))
    else if (!kept.includes(`${name}.gz`)) set.push(join(keptDir, name))
  }
  set.push(file)
  const expected = new Map<string, number>()
  for (const r of reports) for (const [src, n] of Object.entries(r.counts)) expected.set(src, (expected.get(src) ?? 0) + n)
  const found = new Map<string, number>()
  let lines = 0
  for (const path of set) {
    const input = path.endsWith('.gz') ? createReadStream(path).pipe(createGunzip()) : createReadStream(path)
    for await (const line of createInterface({ input, crlfDelay: Infinity })) {
      lines++
      const m = /"src":"([^"]+)"/.exec(line)
      if (m !== null) found.set(m[1]!, (found.get(m[1]!) ?? 0) + 1)
    }
  }
  let expectedTotal = 0; let foundTotal = 0; const mismatches: string[] = []
  for (const [src, n] of expected) { expectedTotal += n; if (found.get(src) !== n) mismatches.push(`${src}: logged ${n}, in the files ${found.get(src) ?? 0}`) }
  for (const [src, n] of found) { foundTotal += n; if (!expected.has(src)) mismatches.push(`${src}: not reported by any producer, ${n} in the files`) }
  log(`files in the set: ${set.length} (${kept.filter((n) => n.endsWith('.gz')).length} gz), lines ${lines}`)
  log(`records: logged ${expectedTotal} by ${expected.size} sources (${reports.length} producer processes), in the files ${foundTotal}; mismatches ${mismatches.length}`)
  for (const m of mismatches.slice(0, 20)) log(`  ${m}`)
  const verify = spawnSync(process.execPath, [bin, 'verify', ...set, '--key', 'src', '--json'], { encoding: 'utf8', maxBuffer: 1 << 28 })
  log(`verify --key src: exit ${String(verify.status)} ${verify.stdout.slice(0, 600)}${verify.stderr.slice(0, 600)}`)
  const chain = spawnSync(process.execPath, [bin, 'verify', ...set, '--checkpoints', '--json'], { encoding: 'utf8', maxBuffer: 1 << 28 })
  log(`verify --checkpoints: exit ${String(chain.status)} ${chain.stdout.slice(0, 600)}${chain.stderr.slice(0, 600)}`)
  log(`producer problems ${producerProblems.length}`)
  for (const p of producerProblems.slice(0, 30)) log(`  ${p}`)
  log(`writer events (not stats) ${writerEvents.length}`)
  for (const e of writerEvents.slice(0, 40)) log(`  ${e.slice(0, 300)}`)
  const alive = slots.filter((s) => existsSync(`/proc/${s.pid}`))
  log(`producer processes still alive: ${alive.length}`)
  writeFileSync(join(dir, 'reports.json'), JSON.stringify({ reports, mismatches, producerProblems, writerEvents }))
}

main().then(() => process.exit(), (err: unknown) => {
  console.error(err)
  for (const slot of slots) slot.child?.kill('SIGKILL')
  writer?.child.kill('SIGKILL')
  process.exitCode = 1
})
