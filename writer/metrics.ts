import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { debuglog } from 'node:util'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import { BindError } from '../shared/errors.js'
import { REJECT_REASONS } from '../shared/protocol.js'
import type { StatsCounters, WriterStats } from './stats.js'

const debug = debuglog('logfunnel')

/** Buckets of logfunnel_write_latency_seconds: 0.5 ms (one write to the page cache) to 10 s (a stalled disk). */
const LATENCY_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/**
 * Bounds of the metrics server, so idle connections (the port is on loopback: any local user
 * can connect) cannot use up the writer's file descriptors (issue 13, point 5: 1,124 idle
 * connections took a writer to its 1,024-fd limit and libzmq aborted it). A scraper keeps one
 * keep-alive connection; connections past the cap are closed as soon as they are accepted.
 */
const MAX_CONNECTIONS = 32
/** A request's headers must arrive within this (Node's default: 60 s); checked every second. */
const HEADERS_TIMEOUT_MS = 5000
const REQUEST_TIMEOUT_MS = 10_000
const CONNECTIONS_CHECKING_INTERVAL_MS = 1000
/** A connection silent this long is closed (a scraper's keep-alive between scrapes too: it reconnects). */
const IDLE_TIMEOUT_MS = 10_000

type CounterName = 'records' | 'bytes' | 'frames' | 'duplicates' | 'fsyncs'

const COUNTERS: Array<[CounterName, string]> = [
  ['records', 'Log lines handed to the file (written, waiting in logfunnel_queue_bytes, or given up at a stop)'],
  ['bytes', 'Bytes handed to the file (written, waiting in logfunnel_queue_bytes, or given up at a stop)'],
  ['frames', 'Messages received on the data socket, good or bad'],
  ['duplicates', 'Batches received again after they were written (resends), not written twice'],
  ['fsyncs', 'fsync(2) calls on the log file']
]

/**
 * The writer's Prometheus endpoint: `GET /metrics` on `host:port`, served from a private
 * prom-client Registry (never the global one, so an embedding application's metrics do not
 * mix in) holding the logfunnel_* metrics and prom-client's default process metrics.
 *
 * Counters and gauges are read from `counters()` at each scrape (a counter must never
 * decrease: `records` and `bytes` count what was handed to the file, not the summary's written
 * part); the latency histogram is fed by `stats.onLatency()` as batches are written.
 *
 * @example
 * ```ts
 * const server = new MetricsServer(() => stats.counters(writer.summary), stats, { host: '127.0.0.1', port: 9464 })
 * await server.listen()   // rejects with LOGFUNNEL_ERR_BIND when the port is taken
 * ```
 */
export class MetricsServer {
  readonly registry = new Registry()
  readonly url: string
  #host: string
  #port: number
  #server: Server

  constructor (counters: () => StatsCounters, stats: WriterStats, { host, port }: { host: string, port: number }) {
    this.#host = host
    this.#port = port
    this.url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`
    const registers = [this.registry]
    for (const [key, help] of COUNTERS) {
      new Counter({
        name: `logfunnel_${key}_total`,
        help,
        registers,
        collect () {
          this.reset()
          this.inc(counters()[key])
        }
      })
    }
    new Counter({
      name: 'logfunnel_rejected_total',
      help: 'Messages rejected, by reason (see the README reject reasons)',
      labelNames: ['reason'],
      registers,
      collect () {
        const rejected = counters().rejected
        this.reset()
        for (const reason of REJECT_REASONS) this.labels(reason).inc(rejected[reason] ?? 0)
      }
    })
    new Gauge({
      name: 'logfunnel_queue_bytes',
      help: 'Bytes received and not yet written to the file (the libzmq receive queue is not observable)',
      registers,
      collect () { this.set(counters().queueBytes) }
    })
    new Gauge({
      name: 'logfunnel_connected_producers',
      help: 'Open connections on the data socket',
      registers,
      collect () { this.set(counters().connectedProducers) }
    })
    const latency = new Histogram({
      name: 'logfunnel_write_latency_seconds',
      help: 'Time from handing a batch to the file sink until its bytes count as written: fsynced under fsync batch (the default), in the page cache under fsync off or an interval',
      buckets: LATENCY_BUCKETS_SECONDS,
      registers
    })
    stats.onLatency((ms) => latency.observe(ms / 1000))
    collectDefaultMetrics({ register: this.registry })

    const limits = { headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS }
    this.#server = createServer(limits, (req, res) => {
      const path = (req.url ?? '').split('?')[0]
      if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: the metrics are at GET /metrics\n')
        return
      }
      this.registry.metrics().then((body) => {
        res.writeHead(200, { 'content-type': this.registry.contentType }).end(body)
      }, (err: unknown) => {
        debug('metrics collection failed: %o', err)
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed\n')
      })
    })
  }

  /** Binds `host:port`; rejects with LOGFUNNEL_ERR_BIND (port taken, address not local). */
  async listen (): Promise<void> {
    const server = this.#server
    server.maxConnections = MAX_CONNECTIONS
    server.setTimeout(IDLE_TIMEOUT_MS, (socket) => socket.destroy())
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(this.#port, this.#host, () => {
          server.off('error', reject)
          resolve()
        })
      })
    } catch (err) {
      throw new BindError(this.url, { cause: err })
    }
    server.on('error', (err) => debug('metrics server error: %o', err))
  }

  /** Stops listening and drops open connections (a scraper's keep-alive must not hold up stop). */
  async close (): Promise<void> {
    const server = this.#server
    if (!server.listening) return
    const closed = once(server, 'close')
    server.close()
    server.closeAllConnections()
    await closed
  }
}
