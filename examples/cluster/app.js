// A node:cluster app: the primary starts the writer, each worker logs through funnel().
// node examples/cluster/app.js [logDir] [workers] [records]
import cluster from 'node:cluster'
import { join } from 'node:path'
import pino from 'pino'
import { funnel, startWriter } from 'logfunnel'

const [logDir = './logs', workers = '4', records = '10000'] = process.argv.slice(2)

if (cluster.isPrimary) {
  const writer = await startWriter({ file: join(logDir, 'app.log'), endpoint: `ipc://${join(logDir, 'writer.sock')}` })
  const exits = Array.from({ length: Number(workers) }, () => new Promise((resolve) => {
    cluster.fork({ LOGFUNNEL_ENDPOINT: writer.endpoint }).on('exit', resolve)
  }))
  const codes = await Promise.all(exits)
  const summary = await writer.stop()
  console.log(JSON.stringify({ event: 'done', file: writer.file, codes, records: summary.records }))
} else {
  const dest = funnel({ endpoint: process.env.LOGFUNNEL_ENDPOINT })
  let seq = 0
  // A per-process counter makes the file checkable: logfunnel verify finds gaps, duplicates, reorders.
  const log = pino({ mixin: () => ({ seq: seq++ }) }, dest)
  for (let i = 0; i < Number(records); i++) log.info({ worker: cluster.worker.id }, 'request handled')
  await dest.close() // resolves once every record has a receipt (or, past its deadline, is in the spool)
  process.exit(0)
}
