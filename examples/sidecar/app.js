// The app half of a sidecar: the writer runs as a separate process (see run.sh, or a systemd
// unit, or a container next to the app); the app only knows the endpoint.
// LOGFUNNEL_ENDPOINT=ipc:///run/logfunnel/writer.sock node examples/sidecar/app.js [records]
import pino from 'pino'
import { funnel } from 'logfunnel'

const records = Number(process.argv[2] ?? '10000')
const dest = funnel({ endpoint: process.env.LOGFUNNEL_ENDPOINT })
let seq = 0
const log = pino({ mixin: () => ({ seq: seq++ }) }, dest)
for (let i = 0; i < records; i++) log.info({ path: '/orders' }, 'request')
await dest.close()
console.log(JSON.stringify({ event: 'done', records }))
