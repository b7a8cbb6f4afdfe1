import pino from 'pino'
import { funnel } from '/work/main/dist/producer/index.js'
const dest = funnel({ endpoint: process.argv[2] })
const log = pino(dest)
const t0 = Date.now()
for (let seq = 0; seq < Number(process.argv[3] ?? 200000); seq++) {
  log.info({ seq })
  if (seq % 200000 === 0) console.error('logged', seq, Date.now() - t0)
}
console.error('loop done', Date.now() - t0)
await dest.close()
console.error('closed', Date.now() - t0)
