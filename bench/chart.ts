import * as vega from 'vega'
import { compile, type TopLevelSpec } from 'vega-lite'
import { describeDefects } from './integrity.js'
import type { BenchReport } from './report.js'
import { STRATEGIES } from './strategies.js'

const PANEL_WIDTH = 340
const PANEL_HEIGHT = 200

/**
 * Draws a bench report as SVG with vega-lite, rendered by vega on the server side (no
 * browser, no canvas): throughput against producers per strategy with the min-max range,
 * p99 `log.info` latency on a log scale, and writer-ingest against its ceiling. One column
 * per record size. Defective cells have no speed, so they are left out and named in the
 * subtitle.
 *
 * @example
 * ```ts
 * writeFileSync('bench/out/latest.svg', await renderChart(report))
 * ```
 */
export async function renderChart (report: BenchReport): Promise<string> {
  return await renderSvg(chartSpec(report))
}

/** Renders a vega-lite specification to SVG on the server side (no browser, no canvas). */
export async function renderSvg (spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' })
  try {
    return await view.toSVG()
  } finally {
    view.finalize()
  }
}

/** The vega-lite specification behind `renderChart`. */
export function chartSpec (report: BenchReport): TopLevelSpec {
  const rows = report.results.filter((r) => !r.defective).map((r) => ({
    strategy: r.strategy,
    producers: r.producers,
    payload: `${r.recordBytes} B payload`,
    recordsPerSec: r.recordsPerSec?.median ?? null,
    min: r.recordsPerSec?.min ?? null,
    max: r.recordsPerSec?.max ?? null,
    p99: r.p99Us.median
  }))
  const defective = report.results.filter((r) => r.defective)
    .map((r) => `${r.strategy} x${r.producers} ${r.recordBytes} B: ${describeDefects(r.defects)}`)
  const producers = [...new Set(report.results.map((r) => r.producers))].sort((a, b) => a - b)
  const x = { field: 'producers', type: 'quantitative', title: 'producer processes', scale: { type: 'log', base: 2 }, axis: { values: producers, format: 'd' } }
  const color = { field: 'strategy', type: 'nominal', scale: { domain: [...STRATEGIES] }, legend: { orient: 'right' } }
  const panels: unknown[] = [
    {
      title: 'Throughput: records/s (median, bar = min-max)',
      data: { values: rows },
      facet: { column: { field: 'payload', type: 'ordinal', title: null } },
      spec: {
        width: PANEL_WIDTH,
        height: PANEL_HEIGHT,
        layer: [
          { mark: { type: 'line', point: true }, encoding: { x, color, y: { field: 'recordsPerSec', type: 'quantitative', title: 'records/s' } } },
          { mark: { type: 'rule', opacity: 0.6 }, encoding: { x, color, y: { field: 'min', type: 'quantitative' }, y2: { field: 'max' } } }
        ]
      }
    },
    {
      title: 'log.info latency: p99 in microseconds (median of runs, log scale)',
      data: { values: rows },
      facet: { column: { field: 'payload', type: 'ordinal', title: null } },
      spec: {
        width: PANEL_WIDTH,
        height: PANEL_HEIGHT,
        mark: { type: 'line', point: true },
        encoding: { x, color, y: { field: 'p99', type: 'quantitative', title: 'p99 us', scale: { type: 'log' } } }
      }
    }
  ]
  const ingest = report.ingest
  if (ingest !== null) {
    panels.push({
      title: `writer-ingest: ${ingest.pushers} pushers, ${ingest.frameBytes / 1024} KiB frames (MB/s, median)`,
      data: {
        values: [
          { what: 'logfunnel writer', mbPerSec: ingest.writerMbPerSec?.median ?? 0 },
          { what: 'fs.writeSync ceiling', mbPerSec: ingest.ceilingMbPerSec.median }
        ]
      },
      width: PANEL_WIDTH * 2,
      mark: 'bar',
      encoding: {
        y: { field: 'what', type: 'nominal', title: null },
        x: { field: 'mbPerSec', type: 'quantitative', title: 'MB/s' }
      }
    })
  }
  const m = report.machine
  const subtitle = [
    `${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, ${m.os}`,
    `files on ${m.filesystem.type} in ${m.tempDir}; load average ${m.loadAverage.start.toFixed(1)} at start, ${m.loadAverage.end.toFixed(1)} at end`
  ]
  if (defective.length > 0) subtitle.push(`Defective, no speed shown: ${defective.join('; ')}`)
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `logfunnel bench (${report.profile} profile, ${report.startedAt})`, subtitle },
    background: 'white',
    padding: 12,
    vconcat: panels
  } as unknown as TopLevelSpec
}
