import { performance } from 'node:perf_hooks'
import type { FileSink } from './sink/file-sink.js'
import type { WriterSummary } from '../shared/summary.js'

/**
 * Batches kept per interval to estimate the latency percentiles (a uniform random sample,
 * Vitter's algorithm R): 1024 samples put p50 within about 3 percentiles of the truth; p99
 * is the 11th largest sample, an estimate, while `max` and `count` are exact.
 */
const LATENCY_SAMPLES = 1024

/** Write latency of the batches written in one interval, in milliseconds (3 decimals). */
export interface LatencySummary {
  /** Batches whose bytes reached the file in the interval (exact). */
  count: number
  /** Median, from a random sample of at most 1024 of them; 0 when `count` is 0. */
  p50: number
  /** 99th percentile, from the same sample. */
  p99: number
  /** Longest (exact). */
  max: number
}

/** Counters since start (cumulative) and the current gauges. */
export interface StatsCounters {
  records: number
  bytes: number
  /** Messages received, good or bad (a message is one or two ZeroMQ frames). */
  frames: number
  batches: number
  duplicates: number
  producers: number
  rejected: WriterSummary['rejected']
  /** fsync(2) calls of the log file, the rotation's included (the summary's count). */
  fsyncs: number
  /** Bytes handed to the file sink and not yet written (the writer's own queue); not those a stop gave up. */
  queueBytes: number
  /** Open connections on the data socket (ZMQ_EVENT_ACCEPTED minus ZMQ_EVENT_DISCONNECTED). */
  connectedProducers: number
}

/** The `{"event":"stats",...}` line: cumulative counters, gauges, the interval's latency. */
export interface StatsLine extends StatsCounters {
  event: 'stats'
  /** True on the one line emitted at stop. */
  final: boolean
  uptimeMs: number
  writeLatencyMs: LatencySummary
}

/**
 * What the writer counts besides its summary: messages received, open connections, and
 * the latency of each batch from `append` to the sink's `'written'` (its bytes are in the
 * kernel, not necessarily on disk). The receive loop calls `received()` and `appended()`; the
 * rest is fed by the sink's `'written'` events and the socket's monitor events. Counters the
 * summary has (fsyncs among them) are taken from it: one source for the summary, the stats
 * line and Prometheus.
 *
 * @example
 * ```ts
 * const stats = new WriterStats()
 * stats.attach(sink)
 * stats.appended(sink.append(payload))
 * ```
 */
export class WriterStats {
  readonly startedAt = performance.now()
  #frames = 0
  #connections = 0
  /** Lines and bytes handed to the sink: never less, whatever becomes of them (see handed()). */
  #handedRecords = 0
  #handedBytes = 0
  #sink: FileSink | undefined
  /** Batches appended and not yet written: [end offset, append time], oldest first from #head. */
  #inFlight: Array<[number, number]> = []
  #head = 0
  #interval = new LatencySample()
  #observers: Array<(ms: number) => void> = []

  /** Counts one message received from the data socket. */
  received (): void {
    this.#frames++
  }

  /** Counts a batch of `records` lines and `bytes` handed to the sink, and starts its latency clock (it ends at byte offset `end`). */
  appended (end: number, records: number, bytes: number): void {
    this.#handedRecords += records
    this.#handedBytes += bytes
    this.#inFlight.push([end, performance.now()])
  }

  /**
   * Lines and bytes handed to the sink since start: written, waiting, or given up at stop. The
   * summary's `records` and `bytes` drop at a stop that gives the file up (they count only what
   * the file holds); a Prometheus counter must never decrease, so the metrics take these.
   */
  handed (): { records: number, bytes: number } {
    return { records: this.#handedRecords, bytes: this.#handedBytes }
  }

  /** Calls `fn(ms)` with the latency of every batch written from now on. */
  onLatency (fn: (ms: number) => void): void {
    this.#observers.push(fn)
  }

  /** Follows the sink: its `'written'` byte count stops the clocks of the batches it covers. */
  attach (sink: FileSink): void {
    this.#sink = sink
    sink.on('written', (written: number) => this.#written(written))
  }

  /**
   * Counts connections on the data socket from libzmq's monitor events. The monitor ends by
   * itself when the socket closes; closing it explicitly fails with ENOTSOCK in zeromq 6.
   */
  watchConnections (pull: { events: { on: (event: 'accept' | 'disconnect', fn: () => void) => unknown } }): void {
    const events = pull.events
    events.on('accept', () => { this.#connections++ })
    events.on('disconnect', () => { this.#connections = Math.max(0, this.#connections - 1) })
  }

  /** The cumulative counters and gauges, on top of the writer's summary. */
  counters (summary: WriterSummary): StatsCounters {
    const { records, bytes, batches, duplicates, producers, rejected, fsyncs } = summary
    return {
      records,
      bytes,
      frames: this.#frames,
      batches,
      duplicates,
      producers,
      rejected,
      fsyncs,
      queueBytes: this.#sink?.pendingBytes ?? 0,
      connectedProducers: this.#connections
    }
  }

  /** A stats line; starts a new latency interval. */
  line (summary: WriterSummary, final: boolean): StatsLine {
    return {
      event: 'stats',
      final,
      uptimeMs: Math.round(performance.now() - this.startedAt),
      ...this.counters(summary),
      writeLatencyMs: this.#interval.take()
    }
  }

  #written (written: number): void {
    const now = performance.now()
    const inFlight = this.#inFlight
    while (this.#head < inFlight.length && (inFlight[this.#head] as [number, number])[0] <= written) {
      const ms = now - (inFlight[this.#head++] as [number, number])[1]
      this.#interval.add(ms)
      for (const fn of this.#observers) fn(ms)
    }
    if (this.#head > 1024 && this.#head * 2 > inFlight.length) {
      this.#inFlight = inFlight.slice(this.#head)
      this.#head = 0
    }
  }
}

/** Count, max and a bounded uniform sample of the latencies seen since the last `take()`. */
class LatencySample {
  #samples = new Float64Array(LATENCY_SAMPLES)
  #count = 0
  #max = 0

  add (ms: number): void {
    this.#count++
    if (ms > this.#max) this.#max = ms
    if (this.#count <= LATENCY_SAMPLES) {
      this.#samples[this.#count - 1] = ms
    } else {
      const slot = Math.floor(Math.random() * this.#count)
      if (slot < LATENCY_SAMPLES) this.#samples[slot] = ms
    }
  }

  take (): LatencySummary {
    const count = this.#count
    const sorted = this.#samples.slice(0, Math.min(count, LATENCY_SAMPLES)).sort()
    const at = (q: number): number => sorted.length === 0 ? 0 : round(sorted[Math.ceil(q * sorted.length) - 1] as number)
    const summary = { count, p50: at(0.5), p99: at(0.99), max: round(this.#max) }
    this.#count = 0
    this.#max = 0
    return summary
  }
}

function round (ms: number): number {
  return Math.round(ms * 1000) / 1000
}
