import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { exitCode, fixture, lineCount, spawnNode, tempDir, waitFor } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'
import { spoolFilesWaiting } from './helpers/writer-cli.js'
import { verifyFile } from '../shared/verify.js'

/**
 * A transport logger that is garbage-collected has its worker terminated by thread-stream with
 * the sockets open: the process goes on, and what the worker had sent reaches the file.
 */
/** 50 collected transports; `npm run stress` runs 200 (LOGFUNNEL_STRESS_ROUNDS). */
const ROUNDS = Number(process.env.LOGFUNNEL_STRESS_ROUNDS ?? 50)
const RECORDS = 100

describe('transport loggers created in a function and dropped, gc() between them', () => {
  it(`${ROUNDS} collected transports: exit 0, every worker terminated, flushed rounds all in the file, no line torn or doubled`, async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const app = spawnNode(['--expose-gc', fixture('transport-gc'), writer.endpoint, String(ROUNDS), String(RECORDS)])
    expect(await exitCode(app, 90_000), app.describe()).toBe(0)
    const done = await app.waitForLine((l) => l.event === 'done')
    expect(done.terminated, app.describe()).toBe(ROUNDS)
    const flushed = ROUNDS / 2 * RECORDS
    await waitFor(() => lineCount(writer.file) >= flushed, 20_000, () => `${lineCount(writer.file)} lines`)
    await writer.stop()
    const seen = new Set<string>()
    for (const line of readFileSync(writer.file, 'utf8').split('\n').filter((l) => l !== '')) {
      const { round, seq } = JSON.parse(line) as { round: number, seq: number }
      const key = `${round}/${seq}`
      expect(seen.has(key), `${key} twice`).toBe(false)
      seen.add(key)
    }
    for (let round = 0; round < ROUNDS; round += 2) {
      for (let seq = 0; seq < RECORDS; seq++) expect(seen.has(`${round}/${seq}`), `flushed round ${round} seq ${seq}`).toBe(true)
    }
  })
})

/**
 * funnel() loggers made per request and dropped without close(). Made with the same options they
 * share one sender thread (funnel.ts); before, each had its own: 500 made at ~16 a second took
 * a process to 452 threads and 6.8 GB resident. Made with options of their own (`distinct`), each
 * has its thread, and once collected each one closes (what has no receipt goes to the spool) and
 * ends; before, every dropped logger kept its thread, ~10 MB and 7 descriptors, until the process
 * ended, and its ring (4 MiB) until a later fix.
 */
describe('funnel() loggers made per request and dropped without close()', () => {
  const LOGGERS = 40
  const cases = {
    // A collection between two requests (every logger of the first dropped) ended the shared
    // sender, and the next request started another: 40 of 40 started with gc() between them,
    // and 2 in 1 of 4 clean runs of the suite without it. Now the channel is kept 5 s after
    // the last logger made for it (funnel.ts). Without gc() between them: the test after next.
    collected: 'the same options, each collected before the next is made: one sender thread for all',
    distinct: 'each with options of its own: a thread each'
  }
  for (const [how, what] of Object.entries(cases)) {
    it(`${LOGGERS} dropped loggers, ${what}, the threads end, the process exits 0 by itself, every record in the file once`, async () => {
      const dir = tempDir()
      const writer = await startWriterChild(dir)
      // Distinct options are held for a shorter time here: the collected case holds for the 5 s.
      const env = how === 'distinct' ? { ...process.env, LOGFUNNEL_TEST_KEEP_MS: '1000' } : process.env
      const app = spawnNode(['--expose-gc', fixture('funnel-gc'), writer.endpoint, String(LOGGERS), String(RECORDS), how], { env })
      expect(await exitCode(app, 90_000), app.describe()).toBe(0)
      const done = await app.waitForLine((l) => l.event === 'done')
      if (how === 'distinct') {
        expect(done.sendersStarted, app.describe()).toBe(LOGGERS)
        expect(done.peakThreads, app.describe()).toBeGreaterThan(done.threadsBefore + 2)
      } else {
        expect(done.sendersStarted, app.describe()).toBe(1)
        expect(done.peakThreads, app.describe()).toBeLessThanOrEqual(done.threadsBefore + 2)
      }
      expect(done.threadsAfter, app.describe()).toBe(done.threadsBefore)
      // Nor their rings (4 MiB each by default): the orphans' exit hooks held them, with their
      // Workers, for the process's life (176 MB of 40 rings after gc(); 12.6 MB now).
      expect(done.arrayBuffers, app.describe()).toBeLessThan(40 * 1024 * 1024)
      await waitFor(() => lineCount(writer.file) >= LOGGERS * RECORDS, 20_000, () => `${lineCount(writer.file)} lines`)
      await writer.stop({ spoolTaken: true })
      expect(await verifyFile(writer.file, { producerKey: 'request', expect: RECORDS })).toMatchObject({ lines: LOGGERS * RECORDS, producers: LOGGERS, torn: 0, gaps: 0, duplicates: 0, missing: 0 })
    })
  }
})

/**
 * A destination collected among live ones: its exit hooks go, and only its own. With
 * on-exit-leak-free's, the collection also took the hooks of the next destination made: with the
 * writer away, that one's records were neither closed at 'beforeExit' nor spooled at 'exit',
 * the process ended 0 and they were lost (no spool file, 0 of 1,000 in the file; 1,000 now).
 */
describe('funnel(): a destination collected while others live', () => {
  const RECORDS_AFTER = 1000
  it(`the next destination keeps its exit hooks: its ${RECORDS_AFTER} records, logged with no writer, reach the spool and then the file`, async () => {
    const dir = tempDir()
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    const app = spawnNode(['--expose-gc', fixture('funnel-collected-among-live'), endpoint, String(RECORDS_AFTER)])
    expect(await exitCode(app, 60_000), app.describe()).toBe(0)
    await app.waitForLine((l) => l.event === 'done')
    expect(spoolFilesWaiting(join(dir, 'w.sock.spool')).length, app.describe()).toBeGreaterThan(0)
    const writer = await startWriterChild(dir)
    await writer.stop({ spoolTaken: true })
    expect(await verifyFile(writer.file, { producerKey: 'logger', expect: RECORDS_AFTER })).toMatchObject({ lines: RECORDS_AFTER, producers: 1, torn: 0, gaps: 0, duplicates: 0, missing: 0 })
  })
})

/**
 * funnel() loggers dropped as above, without gc(), as a server runs. With the same options they
 * share one sender thread, collected or not. With options of their own, V8 collects by its own
 * measure, which sees neither a SharedArrayBuffer (the ring) nor a worker's isolate, so a dropped
 * destination looked like a few hundred bytes: before its weight, none was ever collected in a
 * process whose heap did not grow (300 requests left 311 threads, 2,105 descriptors and 3.4 GB
 * resident, and the exit took 40 s).
 */
describe('funnel() loggers made per request and dropped, no gc() called', () => {
  const LOGGERS = 80
  for (const distinct of [false, true]) {
    const how = distinct ? 'each with options of its own' : 'the same options'
    it(`${LOGGERS} dropped loggers, ${how}: ${distinct ? 'V8 collects them by itself' : 'one sender thread for all'}, the process exits 0 by itself, every record in the file once`, async () => {
      const dir = tempDir()
      const writer = await startWriterChild(dir)
      const app = spawnNode([fixture('funnel-dropped'), writer.endpoint, String(LOGGERS), String(RECORDS), distinct ? 'distinct' : 'same'])
      expect(await exitCode(app, 120_000), app.describe()).toBe(0)
      const done = await app.waitForLine((l) => l.event === 'done')
      // Each channel weighs SENDER_THREAD_WEIGHT_BYTES in V8's count, so V8 collects them as it
      // goes (without the weight, none of 300). How many are left at the end varies with V8's
      // external memory limit, which grows with what is live: 45 to 78 of 80 collected in 45 runs
      // here (a bound of 64 failed about 1 run in 8).
      if (distinct) expect(done.collected, app.describe()).toBeGreaterThanOrEqual(LOGGERS / 2)
      else expect(done.peakThreads, app.describe()).toBe(done.threadsBefore + 1)
      // What a failure needs to tell lost records from records not taken yet: the app's output and the spool.
      await waitFor(() => lineCount(writer.file) >= LOGGERS * RECORDS, 30_000,
        () => `${lineCount(writer.file)} lines; spool files waiting: ${spoolFilesWaiting(writer.spoolDir).join(', ') || 'none'}\n${app.describe()}`)
      await writer.stop({ spoolTaken: true })
      expect(await verifyFile(writer.file, { producerKey: 'request', expect: RECORDS })).toMatchObject({ lines: LOGGERS * RECORDS, producers: LOGGERS, torn: 0, gaps: 0, duplicates: 0, missing: 0 })
    })
  }
})
