import { fork } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { UsageError } from '../shared/errors.js'
import { verifyFile } from '../shared/verify.js'
import { formatReport } from '../shared/verify-format.js'
import { startWriter } from '../producer/start-writer.js'

const WORKER = fileURLToPath(new URL('./demo-worker.js', import.meta.url))
const DEFAULTS = { workers: 4, records: 100_000, file: './logs/demo.log' }

const USAGE = `usage: logfunnel demo [--workers N] [--records N] [--file PATH]

Starts a writer, forks a pool of worker processes that each log --records records through
pino into it, closes them, stops the writer and verifies the file.

  --workers N    pool size (default ${DEFAULTS.workers})
  --records N    records per worker (default ${DEFAULTS.records})
  --file PATH    log file, replaced on each run (default ${DEFAULTS.file})
  --help         show this help
`

/** `logfunnel demo`: the main job behind `npm start`. Exit 0 when the file verifies clean. */
export async function main (argv: string[]): Promise<number> {
  let values
  try {
    values = parseArgs({
      args: argv,
      options: { workers: { type: 'string' }, records: { type: 'string' }, file: { type: 'string' }, help: { type: 'boolean' } }
    }).values
  } catch (err) {
    throw new UsageError(`${(err as Error).message} (logfunnel demo --help lists the flags)`)
  }
  if (values.help === true) {
    process.stdout.write(USAGE)
    return 0
  }
  const workers = count(values.workers, DEFAULTS.workers, 'workers')
  const records = count(values.records, DEFAULTS.records, 'records')
  const file = resolve(values.file ?? DEFAULTS.file)
  rmSync(file, { force: true })

  // A private endpoint, so the demo never meets a writer that is already running.
  const socketDir = mkdtempSync(join(tmpdir(), 'logfunnel-demo-'))
  const started = Date.now()
  const writer = await startWriter({ file, endpoint: `ipc://${join(socketDir, 'writer.sock')}` })
  try {
    process.stdout.write(`writer ${writer.pid} ready at ${writer.endpoint}\n`)
    process.stdout.write(`forking ${workers} workers x ${records} records ...\n`)
    const results = await Promise.all(Array.from({ length: workers }, async () => {
      const child = fork(WORKER, [writer.endpoint, String(records)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
      const [message] = await once(child, 'message') as [{ pid: number, elapsedMs: number }]
      const [code] = await once(child, 'exit') as [number | null]
      if (code !== 0) throw new Error(`worker ${child.pid ?? '?'} exited with code ${String(code)}`)
      return message
    }))
    for (const r of results) {
      process.stdout.write(`  worker ${r.pid}: ${records} records logged and receipted in ${Math.round(r.elapsedMs)} ms\n`)
    }
  } finally {
    const summary = await writer.stop()
    process.stdout.write(`writer stopped: ${summary.records} records, ${summary.bytes} bytes, ${summary.batches} batches, ` +
      `rejected ${JSON.stringify(summary.rejected)}\n`)
    rmSync(socketDir, { recursive: true, force: true })
  }
  const elapsed = (Date.now() - started) / 1000
  const report = await verifyFile(file)
  process.stdout.write(`\nlog file: ${file}\n`)
  process.stdout.write(`${workers * records} records in ${elapsed.toFixed(1)} s (${Math.round(workers * records / elapsed)} records/s end to end)\n`)
  process.stdout.write(`verify: ${formatReport(report)}\n`)
  return report.ok && report.lines === workers * records ? 0 : 1
}

function count (raw: string | undefined, fallback: number, name: string): number {
  if (raw === undefined) return fallback
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new UsageError(`--${name} must be a positive whole number, got '${raw}'`)
  return Number(raw)
}
