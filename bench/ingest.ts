import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import type { StoppedSummary } from '../producer/start-writer.js'
import { benchError, BenchChild, compiledScript, stopAll } from './child.js'
import type { PusherParams } from './ingest-pusher.js'
import { addDefects, checkIntegrity, defectCount, NO_DEFECTS, type Defects } from './integrity.js'
import { cpuSeconds, peakRssMb } from './proc-stats.js'
import { spread, type Spread } from './stats.js'

/** Frame size of the scenario: one 64 KiB frame of complete lines per message. */
export const FRAME_BYTES = 64 * 1024
/** 64 lines of 1 KiB fill a frame exactly. */
const LINE_BYTES = 1024
const READY_DEADLINE_MS = 30_000
/** The file must reach its size at no less than 1 MB/s, plus a floor. */
const FILL_DEADLINE_BASE_MS = 30_000
const FILL_DEADLINE_MS_PER_MB = 1000
/** How often the harness looks at the file's size while the writer catches up. */
const SIZE_POLL_MS = 1
/** Every frame is in the file when the harness stops the writer: nothing is left to drain. */
const WRITER_DRAIN_IDLE_MS = 1
/** The writer drains, fsyncs and prints its summary within this after SIGTERM. */
const STOP_DEADLINE_MS = 30_000
const EXIT_DEADLINE_MS = 10_000

export interface IngestParams {
  /** Pusher processes. */
  pushers: number
  /** Bytes to push in all; rounded up to whole frames per pusher. */
  totalBytes: number
  /** Parent directory of the run's files. */
  dir: string
}

/** One repetition: the writer and the ceiling on the same bytes. */
export interface IngestSample {
  bytes: number
  writerMs: number
  writerMbPerSec: number
  ceilingMs: number
  ceilingMbPerSec: number
  writerCpuSec: number
  writerRssMb: number
  summary: StoppedSummary
  defects: Defects
  examples: string[]
}

/** The writer-ingest row of the results. */
export interface IngestResult {
  scenario: 'writer-ingest'
  pushers: number
  frameBytes: number
  totalBytes: number
  repeats: number
  warmup: number
  /** `null` when the file had defects. */
  writerMbPerSec: Spread | null
  ceilingMbPerSec: Spread
  /** writer / ceiling of each repetition. */
  ratio: Spread | null
  writerCpuSecPerGB: Spread
  writerRssMb: Spread
  defective: boolean
  defects: Defects
  defectExamples: string[]
}

/**
 * Measures the bytes the writer itself can take in: first writes the bytes straight to a
 * file with `fs.writeSync` in 64 KiB chunks and fsync (the ceiling), then has `pushers`
 * processes push the same bytes as pre-built plain frames into a fresh `logfunnel writer`,
 * times from `go` until the file holds them all and the writer's stop summary (printed after
 * its fsync) is in, and verifies the file.
 *
 * Rejects with `LOGFUNNEL_ERR_BENCH` when the writer or a pusher fails, or the file does not
 * fill in time.
 */
export async function runIngestOnce (params: IngestParams): Promise<IngestSample> {
  const framesPerPusher = Math.ceil(params.totalBytes / FRAME_BYTES / params.pushers)
  const bytes = framesPerPusher * params.pushers * FRAME_BYTES
  const runDir = mkdtempSync(join(params.dir, 'ingest-'))
  const children: BenchChild[] = []
  try {
    const ceilingMs = writeCeiling(join(runDir, 'ceiling.log'), framesPerPusher * params.pushers)
    rmSync(join(runDir, 'ceiling.log'))

    // The writer CLI itself rather than startWriter(): the clock stops at its summary line,
    // not at its exit a moment later.
    const file = join(runDir, 'app.log')
    const endpoint = `ipc://${join(runDir, 'w.sock')}`
    const writer = new BenchChild(compiledScript('../cli/bin.js'),
      ['writer', '--file', file, '--endpoint', endpoint, '--drain-idle-ms', String(WRITER_DRAIN_IDLE_MS)], 'writer')
    children.push(writer)
    await writer.next('ready', READY_DEADLINE_MS)
    const pusherParams: PusherParams = { endpoint, frames: framesPerPusher, frameBytes: FRAME_BYTES, lineBytes: LINE_BYTES }
    const pushers: BenchChild[] = []
    for (let i = 0; i < params.pushers; i++) {
      pushers.push(new BenchChild(compiledScript('ingest-pusher.js'), [JSON.stringify(pusherParams)], `ingest pusher ${i + 1}/${params.pushers}`))
    }
    children.push(...pushers)
    await Promise.all(pushers.map(async (child) => await child.next('ready', READY_DEADLINE_MS)))

    const cpu0 = cpuSeconds(writer.pid)
    const t0 = performance.now()
    for (const child of pushers) child.send('go')
    const fillDeadline = Date.now() + FILL_DEADLINE_BASE_MS + bytes / 1e6 * FILL_DEADLINE_MS_PER_MB
    await Promise.all(pushers.map(async (child) => await child.next('sent', fillDeadline - Date.now())))
    while (fileSize(file) < bytes) {
      if (Date.now() > fillDeadline) throw benchError(`writer-ingest: the file has ${fileSize(file)} of ${bytes} bytes at the deadline`)
      await delay(SIZE_POLL_MS)
    }
    const writerCpuSec = cpuSeconds(writer.pid) - cpu0
    const writerRssMb = peakRssMb(writer.pid)
    writer.proc.kill('SIGTERM')
    const summary = await writer.next('stopped', STOP_DEADLINE_MS) as unknown as StoppedSummary
    const writerMs = performance.now() - t0
    for (const child of pushers) child.send('exit', true)
    await Promise.all(children.map(async (child) => await child.expectExit(EXIT_DEADLINE_MS)))
    if (summary.bytes !== bytes) throw benchError(`writer-ingest: the writer wrote ${summary.bytes} bytes, expected ${bytes}`)

    const integrity = await checkIntegrity(file, bytes / LINE_BYTES)
    return {
      bytes,
      writerMs,
      writerMbPerSec: bytes / 1e6 / (writerMs / 1000),
      ceilingMs,
      ceilingMbPerSec: bytes / 1e6 / (ceilingMs / 1000),
      writerCpuSec,
      writerRssMb,
      summary,
      defects: { torn: integrity.torn, lost: integrity.lost, duplicated: integrity.duplicated, reordered: integrity.reordered },
      examples: integrity.examples
    }
  } finally {
    await stopAll(children)
    rmSync(runDir, { recursive: true, force: true })
  }
}

/**
 * Runs the scenario `warmup + repeats` times and summarises the measured repetitions.
 * `onRun` is called after each one, warm-up included. Rejects like `runIngestOnce`.
 */
export async function runIngest (params: IngestParams & { repeats: number, warmup: number, onRun?: (sample: IngestSample, warmup: boolean) => void }): Promise<IngestResult> {
  const samples: IngestSample[] = []
  let defects: Defects = { ...NO_DEFECTS }
  let examples: string[] = []
  for (let i = 0; i < params.warmup + params.repeats; i++) {
    const sample = await runIngestOnce(params)
    defects = addDefects(defects, sample.defects)
    if (examples.length === 0) examples = sample.examples
    if (i >= params.warmup) samples.push(sample)
    params.onRun?.(sample, i < params.warmup)
  }
  const defective = defectCount(defects) > 0
  return {
    scenario: 'writer-ingest',
    pushers: params.pushers,
    frameBytes: FRAME_BYTES,
    totalBytes: samples[0]?.bytes ?? 0,
    repeats: params.repeats,
    warmup: params.warmup,
    writerMbPerSec: defective ? null : spread(samples.map((s) => s.writerMbPerSec)),
    ceilingMbPerSec: spread(samples.map((s) => s.ceilingMbPerSec)),
    ratio: defective ? null : spread(samples.map((s) => s.writerMbPerSec / s.ceilingMbPerSec)),
    writerCpuSecPerGB: spread(samples.map((s) => s.writerCpuSec / (s.bytes / 1e9))),
    writerRssMb: spread(samples.map((s) => s.writerRssMb)),
    defective,
    defects,
    defectExamples: examples
  }
}

/** Writes `frames` 64 KiB chunks with writeSync, fsyncs, and returns the milliseconds taken. */
function writeCeiling (path: string, frames: number): number {
  const chunk = Buffer.alloc(FRAME_BYTES, 'x')
  for (let offset = LINE_BYTES - 1; offset < FRAME_BYTES; offset += LINE_BYTES) chunk[offset] = 0x0a
  const t0 = performance.now()
  const fd = openSync(path, 'a')
  try {
    for (let i = 0; i < frames; i++) {
      let written = 0
      while (written < chunk.length) written += writeSync(fd, chunk, written)
    }
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  return performance.now() - t0
}

function fileSize (file: string): number {
  try {
    return statSync(file).size
  } catch {
    return 0
  }
}
