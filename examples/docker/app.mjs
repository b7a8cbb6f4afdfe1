// Logs through the writer container's socket, then ends by itself (no close() needed). If the
// writer is not up yet, the records wait in memory and are sent when it answers; if this
// process ends first, they go to the spool beside the socket and the writer ingests them.
import pino from 'pino'
import { funnel } from 'logfunnel'

const log = pino(funnel({ endpoint: process.env.LOGFUNNEL_ENDPOINT }))
for (let seq = 0; seq < 1000; seq++) log.info({ seq }, 'from the app container')
