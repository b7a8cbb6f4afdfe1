/**
 * Where a Node producer's CPU goes, thread by thread (the Node side of bench/python/threads.py):
 * N processes log through `funnel()` into a real writer; each reads its threads' CPU and minor
 * page faults from /proc/self/task before and after its records (after a flush: every receipt
 * in; the sender thread and its sockets exist before the first reading), and the writer's from
 * /proc over the same span. Prints records/s and, per record, each thread's CPU (us) and page
 * faults per 1000 records (memory touched for the first time): `main` is the logging thread,
 * `sender` funnel()'s sender thread (the busiest other thread), `other` the rest (V8's and
 * libuv's helpers).
 *
 * A measurement tool, not a benchmark cell: no verify, no peers.
 *
 * Usage: node dist/bench/threads.js [--size 1024] [--records 50000] [--producers 4]
 *        [--high-water-mark BYTES] [--writer-args '--fsync off']
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import pino from 'pino'
import { funnel } from '../producer/funnel.js'
import { BenchChild, compiledScript, stopAll } from './child.js'
import { cpuSeconds } from './proc-stats.js'

const DEADLINE_MS = 300_000
/** /proc's clock ticks (USER_HZ) per second. */
const TICKS = 100

interface ThreadSample { cpuUs: number, faults: number }
interface ProducerReport { main: ThreadSample, sender: ThreadSample, other: ThreadSample }

if (process.argv[2] === 'producer') await produce(process.argv[3] as string, Number(process.argv[4]), Number(process.argv[5]), Number(process.argv[6]))
else await main()

/** CPU (us) and minor page faults of each thread of this process, by thread id. */
function threads (): Map<string, ThreadSample> {
  const out = new Map<string, ThreadSample>()
  for (const tid of readdirSync('/proc/self/task')) {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'latin1')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    out.set(tid, { cpuUs: (Number(fields[11]) + Number(fields[12])) * 1e6 / TICKS, faults: Number(fields[7]) })
  }
  return out
}

async function produce (endpoint: string, size: number, records: number, highWaterMark: number): Promise<void> {
  const dest = funnel(highWaterMark > 0 ? { endpoint, highWaterMark } : { endpoint })
  const log = pino(dest)
  const msg = 'x'.repeat(size)
  log.info('first')
  await dest.flush(60_000)
  process.stdout.write('{"event":"ready"}\n')
  await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()))
  const before = threads()
  let i = 0
  await new Promise<void>((resolve) => {
    const chunk = (): void => {
      for (let k = 0; k < 2000 && i < records; k++, i++) log.info({ seq: i }, msg)
      if (i < records) setImmediate(chunk)
      else resolve()
    }
    chunk()
  })
  await dest.flush(DEADLINE_MS)
  const after = threads()
  const deltas = [...after].map(([tid, s]) => {
    const b = before.get(tid) ?? { cpuUs: 0, faults: 0 }
    return { tid, cpuUs: s.cpuUs - b.cpuUs, faults: s.faults - b.faults }
  })
  const mainTid = String(process.pid)
  const others = deltas.filter((d) => d.tid !== mainTid).sort((a, b) => b.cpuUs - a.cpuUs)
  const per = (d: { cpuUs: number, faults: number } | undefined): ThreadSample =>
    ({ cpuUs: (d?.cpuUs ?? 0) / records, faults: (d?.faults ?? 0) * 1000 / records })
  const rest = others.slice(1).reduce((sum, d) => ({ cpuUs: sum.cpuUs + d.cpuUs, faults: sum.faults + d.faults }), { cpuUs: 0, faults: 0 })
  const report: ProducerReport = { main: per(deltas.find((d) => d.tid === mainTid)), sender: per(others[0]), other: per(rest) }
  process.stdout.write(JSON.stringify({ event: 'done', ...report }) + '\n')
  await dest.close()
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: '1024' },
      records: { type: 'string', default: '50000' },
      producers: { type: 'string', default: '4' },
      'high-water-mark': { type: 'string', default: '0' },
      'writer-args': { type: 'string', default: '' }
    }
  })
  const size = Number(values.size)
  const records = Number(values.records)
  const producers = Number(values.producers)
  const dir = mkdtempSync(join(tmpdir(), 'lf-threads-'))
  const endpoint = `ipc://${join(dir, 'w.sock')}`
  const children: BenchChild[] = []
  try {
    const writerArgs = values['writer-args'].split(' ').filter((a) => a !== '')
    const writer = new BenchChild(compiledScript('../cli/bin.js'), ['writer', '--file', join(dir, 'app.log'), '--endpoint', endpoint, ...writerArgs], 'writer')
    children.push(writer)
    await writer.next('ready', DEADLINE_MS)
    const script = compiledScript('threads.js')
    const procs = Array.from({ length: producers }, (_, i) => new BenchChild(script, ['producer', endpoint, String(size), String(records), values['high-water-mark']], `producer ${i + 1}`))
    children.push(...procs)
    await Promise.all(procs.map(async (p) => await p.next('ready', DEADLINE_MS)))
    const writer0 = cpuSeconds(writer.pid)
    const t0 = performance.now()
    for (const p of procs) p.send('go')
    const reports = await Promise.all(procs.map(async (p) => await p.next('done', DEADLINE_MS) as unknown as ProducerReport))
    const seconds = (performance.now() - t0) / 1000
    const total = records * producers
    const writerUs = (cpuSeconds(writer.pid) - writer0) * 1e6 / total
    process.stdout.write(`${producers} x ${size} B: ${Math.round(total / seconds)} records/s; writer ${writerUs.toFixed(2)} us/record\n`)
    const show = (s: ThreadSample): string => `${s.cpuUs.toFixed(2)} us ${Math.round(s.faults)} faults`
    for (const r of reports) process.stdout.write(`  main ${show(r.main)}, sender ${show(r.sender)}, other ${show(r.other)}\n`)
  } finally {
    await stopAll(children)
    rmSync(dir, { recursive: true, force: true })
  }
}
