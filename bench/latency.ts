import hdr from 'hdr-histogram-js'

/** 3 significant digits: a value is known to 0.1 %, the HdrHistogram default. */
const SIGNIFICANT_DIGITS = 3

/** Percentiles of `log.info` call durations, in microseconds. */
export interface LatencySummary {
  p50: number
  p99: number
  p999: number
  max: number
  count: number
}

/**
 * Turns per-call durations (milliseconds, from `performance.now()`) into a compressed HDR
 * histogram of nanoseconds, the form a producer reports to the harness. The durations are
 * kept in a typed array during the run and only fed to the histogram afterwards, because
 * `recordValue()` costs about as much as a cheap `log.info()`.
 */
export function encodeDurations (durationsMs: Float32Array | Float64Array): string {
  const histogram = hdr.build({ numberOfSignificantValueDigits: SIGNIFICANT_DIGITS })
  for (const ms of durationsMs) histogram.recordValue(Math.max(1, Math.round(ms * 1e6)))
  const encoded = hdr.encodeIntoCompressedBase64(histogram)
  histogram.destroy()
  return encoded
}

/**
 * Merges the histograms of several producers and summarises them in microseconds.
 *
 * @example
 * ```ts
 * mergeLatencies([a, b]) // { p50: 1.2, p99: 8.4, p999: 40.1, max: 1520.3, count: 40000 }
 * ```
 */
export function mergeLatencies (encoded: string[]): LatencySummary {
  const merged = hdr.build({ numberOfSignificantValueDigits: SIGNIFICANT_DIGITS })
  for (const text of encoded) {
    const histogram = hdr.decodeFromCompressedBase64(text)
    merged.add(histogram)
    histogram.destroy()
  }
  const summary: LatencySummary = {
    p50: merged.getValueAtPercentile(50) / 1000,
    p99: merged.getValueAtPercentile(99) / 1000,
    p999: merged.getValueAtPercentile(99.9) / 1000,
    max: merged.maxValue / 1000,
    count: merged.totalCount
  }
  merged.destroy()
  return summary
}
