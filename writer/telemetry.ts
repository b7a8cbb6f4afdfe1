import type { ResolvedWriterOptions } from '../shared/options.js'
import type { FileSink } from './sink/file-sink.js'
import type { MetricsServer } from './metrics.js'
import type { StatsLine, WriterStats } from './stats.js'
import type { WriterSummary } from '../shared/summary.js'

/**
 * Reports a writer's stats: a stats line every `statsIntervalMs` and one at close through
 * `emit`, and the Prometheus endpoint when `metricsPort` is set.
 *
 * Order of use: `listen()` (first, so that a taken metrics port fails the start before any
 * socket is bound), `attach()` once the sink and the data socket exist, `close()` at stop.
 */
export class Telemetry {
  readonly stats: WriterStats
  #options: ResolvedWriterOptions
  #summary: () => WriterSummary
  #emit: (line: StatsLine) => void
  #metrics: MetricsServer | undefined
  #timer: NodeJS.Timeout | undefined
  #attached = false

  constructor (options: ResolvedWriterOptions, stats: WriterStats, summary: () => WriterSummary, emit: (line: StatsLine) => void) {
    this.#options = options
    this.stats = stats
    this.#summary = summary
    this.#emit = emit
  }

  /** The metrics URL, when served. */
  get metricsUrl (): string | undefined {
    return this.#metrics?.url
  }

  /** Serves `/metrics` when `metricsPort` is set; rejects with LOGFUNNEL_ERR_BIND. */
  async listen (): Promise<void> {
    const { metricsPort, metricsHost } = this.#options
    if (metricsPort === 0) return
    // Loaded only here: prom-client is a third of the writer's load time, which every start
    // and restart would pay for an endpoint most writers do not serve.
    const { MetricsServer } = await import('./metrics.js')
    // records and bytes as handed to the file: the summary's drop by what a stop gives up.
    const counters = (): ReturnType<WriterStats['counters']> => ({ ...this.stats.counters(this.#summary()), ...this.stats.handed() })
    const metrics = new MetricsServer(counters, this.stats, { host: metricsHost, port: metricsPort })
    await metrics.listen()
    this.#metrics = metrics
  }

  /** Starts following the sink and the data socket, and the periodic stats line. */
  attach (sink: FileSink, pull: Parameters<WriterStats['watchConnections']>[0]): void {
    this.stats.attach(sink)
    this.stats.watchConnections(pull)
    this.#attached = true
    const { statsIntervalMs } = this.#options
    if (statsIntervalMs > 0) {
      this.#timer = setInterval(() => this.#emit(this.stats.line(this.#summary(), false)), statsIntervalMs)
      this.#timer.unref()
    }
  }

  /** Stops the periodic line, emits the final one (when attached), closes the metrics endpoint. */
  async close (): Promise<void> {
    clearInterval(this.#timer)
    if (this.#attached) {
      this.#attached = false
      this.#emit(this.stats.line(this.#summary(), true))
    }
    await this.#metrics?.close()
  }
}
