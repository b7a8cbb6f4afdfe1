import { readdirSync, statSync } from 'node:fs'
import { setTimeout as delay } from 'node:timers/promises'
import type { StoppedSummary } from '../producer/start-writer.js'
import { SPOOL_SUFFIX, SPOOL_TMP_SUFFIX } from '../shared/spool.js'
import { benchError, BenchChild, compiledScript } from './child.js'
import type { Integrity } from './integrity.js'
import type { ProducerParams, ProducerReady } from './producer.js'
import type { Strategy } from './strategies.js'

/** A producer must be set up (node started, logger ready) within this. */
export const READY_DEADLINE_MS = 30_000
/** How often the harness looks at the file and the spool directory while it waits. */
const POLL_MS = 10

/** The loss scenarios: producers exiting at once, and a writer restarted while they log. */
export const LOSS_SCENARIOS = ['exit', 'restart'] as const
export type LossScenario = typeof LOSS_SCENARIOS[number]

/** One run of a loss scenario. */
export interface LossRunParams {
  strategy: Strategy
  producers: number
  /** Records per producer. */
  records: number
  /** Bytes of each record's message. */
  recordBytes: number
  /** Parent directory: the run makes its own directory in it and removes it afterwards. */
  dir: string
  /** Graceful writer restarts while the producers log (restart scenario). */
  restarts?: number
  /** Leave the run's directory (and its `app.log`) in place; the caller removes it. */
  keepFile?: boolean
}

/** The writer's stop summary, with the spool counters it prints. */
export type WriterStopped = StoppedSummary & { spool?: { files: number, entries: number, torn: number } }

/** One graceful restart of the writer during a run. */
export interface RestartEvent {
  /** Since `go`. */
  atMs: number
  /** Bytes in the file when SIGTERM was sent. */
  fileBytes: number
  /** From SIGTERM until the new writer printed its ready line. */
  downMs: number
  /**
   * What the stopped writer wrote, the resent batches it skipped (`duplicates`), the batches
   * it took from the spool and those it refused as out of sequence (the producer resends them).
   */
  stopped: { records: number, duplicates: number, spooled: number, outOfSequence: number }
}

/** What one run of a loss scenario found. */
export interface LossSample {
  scenario: LossScenario
  strategy: Strategy
  producers: number
  /** Records logged in all (producers x records). */
  records: number
  /** Bytes the producers' lines take: what the file holds when nothing is lost. */
  expectedBytes: number
  fileBytes: number
  /** From `go` until the last producer exited (exit) or reported done (restart). */
  producersMs: number
  /** From `go` until the file held every byte (spool ingested), or until the deadline. */
  completeMs: number
  /** The file held every byte, with no spool file left, before the deadline. */
  complete: boolean
  /** Exit codes of the producers that did not exit 0. */
  failedExits: Array<number | string>
  /** finish() failures reported by the producers (restart scenario). */
  finishErrors: string[]
  /** The end of the slowest producer's logging loop, since `go` (restart scenario). */
  loopEndMs: number | null
  restarts: RestartEvent[]
  /** The last writer's stop summary, or null without a writer. */
  writerSummary: WriterStopped | null
  integrity: Integrity
  file: string | null
}

/** Spawns `n` bench producers and waits until every one printed its ready line. */
export async function startProducers (n: number, params: ProducerParams, label: string): Promise<{ children: BenchChild[], readies: ProducerReady[] }> {
  const children: BenchChild[] = []
  for (let i = 0; i < n; i++) {
    children.push(new BenchChild(compiledScript('producer.js'), [JSON.stringify(params)], `${label} producer ${i + 1}/${n}`))
  }
  const readies = await Promise.all(children.map(async (child) => await child.next('ready', READY_DEADLINE_MS) as unknown as ProducerReady))
  return { children, readies }
}

/** Resolves with the child's exit code; rejects with LOGFUNNEL_ERR_BENCH after `deadlineMs`. */
export async function exitCodeWithin (child: BenchChild, deadlineMs: number): Promise<number | string> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      child.exited,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(benchError(`${child.name} (pid ${child.pid}) did not exit within ${deadlineMs} ms`)), deadlineMs)
      })
    ])
  } finally {
    clearTimeout(timer)
  }
}

/** Size of `file`, 0 while it does not exist. */
export function fileSize (file: string): number {
  try {
    return statSync(file).size
  } catch {
    return 0
  }
}

/** Spool files (complete or in progress) the writer has yet to ingest. */
export function spoolFilesLeft (spoolDir: string): number {
  try {
    return readdirSync(spoolDir).filter((name) => name.endsWith(SPOOL_SUFFIX) || name.endsWith(SPOOL_TMP_SUFFIX)).length
  } catch {
    return 0
  }
}

/**
 * Waits until `file` holds at least `bytes` bytes and, when `spoolDir` is given, no spool
 * file is left. Resolves true when that happened, false when `deadlineMs` passed first: the
 * caller then verifies what is there, so a loss is counted from the file, never assumed.
 */
export async function waitForFile (file: string, bytes: number, spoolDir: string | undefined, deadlineMs: number): Promise<boolean> {
  const deadline = performance.now() + deadlineMs
  for (;;) {
    if (fileSize(file) >= bytes && (spoolDir === undefined || spoolFilesLeft(spoolDir) === 0)) return true
    if (performance.now() >= deadline) return false
    await delay(POLL_MS)
  }
}
