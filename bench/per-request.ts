/**
 * A logger made and ended per request (docs/producer.md, "per-request `close()`"): N requests one
 * after another, each `funnel()` with the same options, `records` records through pino, then
 * `await dest.close()` (`--mode close`) or `await dest.flush()` (`--mode flush`, the destination
 * dropped). A writer runs as a child process (its CPU is not in the producer's figure below).
 * Prints one JSON line: the producer process's CPU per request (ms, user + system, the loop
 * only), the sender threads started during the loop (threads of this process seen during a
 * request that were not there before it, sampled while each request's destination is open), the
 * lines the writer's file holds, and whether they are every record once, in order.
 *
 * With `--concurrency C`, C requests at a time (each waits 0-5 ms before its close, as a handler
 * would): a close() then often has others open, or one made during it.
 *
 * Usage: node dist/bench/per-request.js [--requests 40] [--records 3] [--mode close|flush] [--concurrency 1]
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import pino from 'pino'
import { funnel } from '../producer/funnel.js'
import { startWriter } from '../producer/start-writer.js'

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '40' },
    records: { type: 'string', default: '3' },
    mode: { type: 'string', default: 'close' },
    concurrency: { type: 'string', default: '1' }
  }
})
const requests = Number(values.requests)
const records = Number(values.records)
const mode = values.mode
const concurrency = Number(values.concurrency)
if (mode !== 'close' && mode !== 'flush') throw new Error(`--mode close or flush, not ${String(mode)}`)

const tasks = (): string[] => readdirSync('/proc/self/task')
const dir = mkdtempSync(join(tmpdir(), 'per-request-'))
try {
  const file = join(dir, 'app.log')
  const writer = await startWriter({ file, endpoint: `ipc://${join(dir, 'w.sock')}` })
  try {
    const before = new Set(tasks())
    const started = new Set<string>()
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    const handle = async (request: number): Promise<void> => {
      const dest = funnel({ endpoint: writer.endpoint })
      const log = pino(dest)
      for (let seq = 0; seq < records; seq++) log.info({ request, seq }, 'handled')
      for (const tid of tasks()) if (!before.has(tid)) started.add(tid)
      if (concurrency > 1) await delay(Math.random() * 5)
      if (mode === 'close') await dest.close()
      else await dest.flush()
    }
    let next = 0
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < requests) await handle(next++)
    }))
    const cpu = process.cpuUsage(cpu0)
    const wallMs = performance.now() - t0
    await writer.stop()
    const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { request: number, seq: number })
    // Each request's records once and in its order (one after another: the requests' order too).
    const last = new Map<number, number>()
    const inOrder = lines.length === requests * records && lines.every((l, i) => {
      const ok = concurrency > 1 ? l.seq === (last.get(l.request) ?? -1) + 1 : l.request === Math.floor(i / records) && l.seq === i % records
      last.set(l.request, l.seq)
      return ok
    })
    console.log(JSON.stringify({
      mode,
      requests,
      concurrency,
      cpuMsPerRequest: +((cpu.user + cpu.system) / 1000 / requests).toFixed(2),
      wallMsPerRequest: +(wallMs / requests).toFixed(2),
      threadsStarted: started.size,
      lines: lines.length,
      inOrder
    }))
  } finally {
    await writer.stop().catch(() => {})
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
