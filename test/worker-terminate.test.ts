import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { exitCode, fixture, lineCount, spawnNode, tempDir, waitFor } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'
import { verifyFile } from '../shared/verify.js'

/**
 * Ending a thread that holds a logfunnel sender never takes the process down: a pool of worker
 * threads, each logging through funnel() (flat out, idle, or calling process.exit() mid-send),
 * terminated at random moments, with the writer up, stopped (SIGSTOP) and absent.
 */
/** 30 rounds per case in the suite; `npm run stress` runs 200 (LOGFUNNEL_STRESS_ROUNDS). */
const ROUNDS = Number(process.env.LOGFUNNEL_STRESS_ROUNDS ?? 30)
const CONCURRENCY = 4
/** With the writer up an odd round waits for its first receipt; otherwise at most this long. */
const RECEIPT_WAIT_UP_MS = 30_000
const RECEIPT_WAIT_DOWN_MS = 300

/**
 * `{"w":<worker>,"seq":<n>` of every line, checked to be whole JSON and none twice. One expect
 * for the file, naming the first record found twice: an expect per line cost about 7 us, some
 * 1.5 s of the test's own CPU for the 200,000 lines of a run.
 */
function recordsOf (file: string): Map<number, Set<number>> {
  const byWorker = new Map<number, Set<number>>()
  let twice: string | undefined
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line === '') continue
    const { w, seq } = JSON.parse(line) as { w: number, seq: number }
    const seen = byWorker.get(w) ?? new Set<number>()
    if (seen.has(seq)) twice ??= `worker ${w} seq ${seq} twice`
    seen.add(seq)
    byWorker.set(w, seen)
  }
  expect(twice, twice).toBeUndefined()
  return byWorker
}

describe('worker threads terminated at random moments (a Piscina-shaped pool)', () => {
  it(`writer up: ${ROUNDS} rounds, exit 0, every receipted record in the file once`, async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const pool = spawnNode([fixture('terminate-pool'), writer.endpoint, String(ROUNDS), String(CONCURRENCY), String(RECEIPT_WAIT_UP_MS)])
    expect(await exitCode(pool, 120_000), pool.describe()).toBe(0)
    const { receipted, logged } = JSON.parse(pool.stdout()) as { receipted: Record<string, number>, logged: Record<string, number> }
    await writer.stop()
    const inFile = recordsOf(writer.file)
    // What a termination costs (docs/guarantees.md): records logged and not in the file.
    let loggedTotal = 0
    let missing = 0
    for (const [w, n] of Object.entries(logged)) {
      loggedTotal += n
      missing += n - (inFile.get(Number(w))?.size ?? 0)
    }
    console.log(`terminated workers: ${loggedTotal} records logged (as last reported), ${missing} not in the file`)
    let checked = 0
    let notInFile: string | undefined
    for (const [w, through] of Object.entries(receipted)) {
      const seqs = inFile.get(Number(w))
      for (let seq = 0; seq <= through && notInFile === undefined; seq++) {
        if (seqs?.has(seq) !== true) notInFile = `worker ${w} seq ${seq} receipted but not in the file`
      }
      checked += through + 1
    }
    expect(notInFile, notInFile).toBeUndefined()
    // The pool really logged: every odd round that does not exit by itself is terminated only
    // after its first receipt (the fixture's modes go flat, idle, exit by index).
    const waitedForReceipt = Array.from({ length: ROUNDS }, (_, i) => i).filter((i) => i % 2 === 1 && i % 3 !== 2)
    for (const i of waitedForReceipt) expect(receipted[i], `round ${i} had no receipt`).toBeGreaterThanOrEqual(99)
    expect(checked).toBeGreaterThan(waitedForReceipt.length * 100)
  })

  it(`writer stopped (SIGSTOP): ${ROUNDS} rounds, exit 0; after SIGCONT no line is torn or doubled`, async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    writer.child.proc.kill('SIGSTOP')
    try {
      const pool = spawnNode([fixture('terminate-pool'), writer.endpoint, String(ROUNDS), String(CONCURRENCY), String(RECEIPT_WAIT_DOWN_MS)])
      expect(await exitCode(pool, 120_000), pool.describe()).toBe(0)
    } finally {
      writer.child.proc.kill('SIGCONT')
    }
    await writer.stop()
    recordsOf(writer.file)
  })

  it(`no writer: ${ROUNDS} rounds, exit 0`, async () => {
    const dir = tempDir()
    const pool = spawnNode([fixture('terminate-pool'), `ipc://${join(dir, 'w.sock')}`, String(ROUNDS), String(CONCURRENCY), String(RECEIPT_WAIT_DOWN_MS)])
    expect(await exitCode(pool, 120_000), pool.describe()).toBe(0)
    expect(JSON.parse(pool.stdout())).toMatchObject({ rounds: ROUNDS, receipted: {} })
  })

  it('a thread terminated with its spool segment open: the writer takes the segment while the process lives on', async () => {
    const records = 3000
    const dir = tempDir()
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    const host = spawnNode([fixture('terminate-spooling'), endpoint, String(records)], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, LOGFUNNEL_TEST_SEGMENT_MAX_AGE_MS: '600000' }
    })
    const { file: segment } = await host.waitForLine((l) => l.event === 'terminated', 30_000)
    const writer = await startWriterChild(dir)
    // Before, the records waited in the segment for as long as the process lived.
    await waitFor(() => existsSync(writer.file) && lineCount(writer.file) === records, 15_000,
      () => `${existsSync(writer.file) ? lineCount(writer.file) : 0} of ${records} lines; ${writer.child.describe()}`)
    expect(existsSync(segment), 'a live process keeps its segment').toBe(true)
    expect(host.proc.exitCode).toBe(null)
    host.proc.stdin?.end()
    expect(await exitCode(host), host.describe()).toBe(0)
    // The segment, now a gone process's .spool.tmp, is taken again (every batch a duplicate) and removed.
    const stopped = await writer.stop({ spoolTaken: true })
    expect(readdirSync(dirname(segment))).toEqual([])
    expect(stopped.records).toBe(records)
    expect(stopped.duplicates, 'the segment read again once the process ended: every batch skipped').toBeGreaterThan(0)
    expect(await verifyFile(writer.file)).toMatchObject({ lines: records, producers: 1, gaps: 0, duplicates: 0, torn: 0 })
  })
})
