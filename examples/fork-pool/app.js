// A child_process.fork pool: the parent starts the writer and forks workers; each worker logs
// through funnel() and closes before it exits.
// node examples/fork-pool/app.js [logDir] [workers] [records]
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import pino from 'pino'
import { funnel, startWriter } from 'logfunnel'

const [logDir = './logs', workers = '4', records = '10000'] = process.argv.slice(2)

if (process.send === undefined) {
  const writer = await startWriter({ file: join(logDir, 'app.log'), endpoint: `ipc://${join(logDir, 'writer.sock')}` })
  const children = Array.from({ length: Number(workers) }, () =>
    fork(new URL(import.meta.url).pathname, [logDir, workers, records], { env: { ...process.env, LOGFUNNEL_ENDPOINT: writer.endpoint } }))
  // Hand out the work by message, as a pool does.
  for (const [i, child] of children.entries()) child.send({ task: i, records: Number(records) })
  const codes = await Promise.all(children.map(async (child) => (await once(child, 'exit'))[0]))
  const summary = await writer.stop()
  console.log(JSON.stringify({ event: 'done', file: writer.file, codes, records: summary.records }))
} else {
  const dest = funnel({ endpoint: process.env.LOGFUNNEL_ENDPOINT })
  let seq = 0
  const log = pino({ mixin: () => ({ seq: seq++ }) }, dest)
  const [{ task, records: count }] = await once(process, 'message')
  for (let i = 0; i < count; i++) log.info({ task }, 'job step')
  await dest.close()
  process.disconnect()
}
