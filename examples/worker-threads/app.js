// A worker_threads pool: every thread logs through its own funnel(). Threads share the
// process's pid, so each record carries the thread id: logfunnel verify --key thread.
// node examples/worker-threads/app.js [logDir] [threads] [records]
import { join } from 'node:path'
import { isMainThread, threadId, Worker, workerData } from 'node:worker_threads'
import pino from 'pino'
import { funnel, startWriter } from 'logfunnel'

if (isMainThread) {
  const [logDir = './logs', threads = '4', records = '10000'] = process.argv.slice(2)
  const writer = await startWriter({ file: join(logDir, 'app.log'), endpoint: `ipc://${join(logDir, 'writer.sock')}` })
  const exits = Array.from({ length: Number(threads) }, () => new Promise((resolve, reject) => {
    new Worker(new URL(import.meta.url), { workerData: { endpoint: writer.endpoint, records: Number(records) } })
      .on('error', reject).on('exit', resolve)
  }))
  const codes = await Promise.all(exits)
  const summary = await writer.stop()
  console.log(JSON.stringify({ event: 'done', file: writer.file, codes, records: summary.records }))
} else {
  const dest = funnel({ endpoint: workerData.endpoint })
  let seq = 0
  const log = pino({ mixin: () => ({ thread: threadId, seq: seq++ }) }, dest)
  for (let i = 0; i < workerData.records; i++) log.info('thread work')
  await dest.close()
}
