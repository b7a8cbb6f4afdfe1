/**
 * One process of the demo pool (`logfunnel demo`, `npm start`): logs `records` records through
 * pino into the writer at `endpoint`, closes (every record receipted), reports its counters to
 * the parent over the fork IPC channel and exits.
 * argv: <endpoint> <records>
 */
import pino from 'pino'
import { funnel } from '../producer/funnel.js'

const [endpoint, records] = process.argv.slice(2)
const dest = funnel({ endpoint })
const log = pino(dest)
const count = Number(records)
const started = process.hrtime.bigint()
for (let seq = 0; seq < count; seq++) {
  log.info({ seq, worker: process.pid }, 'request handled')
}
await dest.close()
const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6
process.send?.({ pid: process.pid, elapsedMs, stats: dest.stats })
process.disconnect?.()
