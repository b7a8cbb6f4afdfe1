import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { canRunFixturesAs, exitCode, fixture, spawnNode, tempDir, type Child } from './helpers/children.js'
import { spawnProducer, startWriterChild } from './helpers/cluster.js'
import { readSpooled } from './helpers/spool-files.js'
import { CLOSE_ENDED_WRITER_AWAY, connectLines, escapeRegExp, unreachedLine, unreachedMessage } from './helpers/unreached.js'

const IS_ROOT = process.getuid?.() === 0
const NOBODY = 65534
/** Running a producer as NOBODY needs a checkout it can read. */
const AS_NOBODY = IS_ROOT && canRunFixturesAs(NOBODY)
/** Short deadlines keep these tests fast; the defaults are 10 s. */
const FAST = { connectTimeoutMs: 300, closeTimeoutMs: 300 }
type Mode = 'funnel' | 'funnel-warning' | 'transport'

function spawnUnreachable (params: Record<string, unknown>, opts: { uid?: number, gid?: number } = {}): Child {
  return spawnNode([fixture('producer-unreachable'), JSON.stringify(params)], opts)
}

/** The fixture's JSON lines of one event. */
function lines (child: Child, event: string): any[] {
  return child.stdout().split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((l) => l.event === event)
}

/** The reports a mode must produce, as [via, code] pairs. */
const EXPECTED_VIA: Record<Mode, string[]> = {
  funnel: ['error'],
  'funnel-warning': ['warning'],
  transport: ['event', 'warning']
}

describe('a producer with no writer to talk to', () => {
  for (const mode of ['funnel', 'funnel-warning', 'transport'] as const) {
    it(`${mode}: reports LOGFUNNEL_ERR_CONNECT (no socket) after connectTimeoutMs, keeps its records, exits 0`, async () => {
      const endpoint = `ipc://${join(tempDir(), 'none.sock')}`
      const child = spawnUnreachable({ endpoint, records: 10, mode, awaitReport: true, producer: FAST })
      const done = await child.waitForLine((l) => l.event === 'done')
      expect(await exitCode(child), child.describe()).toBe(0)

      const reports = lines(child, 'unreachable')
      expect(reports.map((r) => r.via).sort(), child.describe()).toEqual([...EXPECTED_VIA[mode]].sort())
      for (const r of reports) {
        // A warning from the transport thread carries the code in its text (a cloned Error loses `code`).
        expect(r.code ?? r.message.split(':')[0]).toBe('LOGFUNNEL_ERR_CONNECT')
        expect(r.message).toMatch(/within 300 ms: no socket at that path/)
      }
      // close() resolves: the records are in the spool; it says so once, through the same channel.
      expect(done.closeError).toBe(null)
      if (mode !== 'transport') {
        expect(lines(child, 'close-report'), child.describe()).toMatchObject([{ via: mode === 'funnel' ? 'error' : 'warning', code: 'LOGFUNNEL_ERR_CLOSE_TIMEOUT', message: expect.stringContaining('10 records without a receipt went to the spool') }])
      }
      expect(done.stats).toMatchObject({ records: 10, receipted: -1 })
      // Kept: in the spool beside the socket (the writer ingests it when it starts).
      expect(done.stats.spooled).toBeGreaterThan(0)
    })
  }

  it('keeps trying: once a writer starts on the endpoint, every record is written', async () => {
    const dir = tempDir()
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    // spoolAfterMs 0: close() waits for the writer (with copies in the spool it would end before
    // the writer starts, the records left for it there: test/close-writer-away.test.ts).
    const child = spawnUnreachable({
      endpoint, records: 1000, mode: 'funnel', awaitReport: true, closeMs: 20_000,
      producer: { connectTimeoutMs: 200, closeTimeoutMs: 20_000, receiptTimeoutMs: 500, spoolAfterMs: 0 }
    })
    await child.waitForLine((l) => l.event === 'unreachable')
    const writer = await startWriterChild(dir)
    const done = await child.waitForLine((l) => l.event === 'done')
    expect(await exitCode(child), child.describe()).toBe(0)
    expect(done).toMatchObject({ closeError: null, stats: { records: 1000, heldBytes: 0, spooledRecords: 0 } })
    expect(await writer.stop()).toMatchObject({ records: 1000, producers: 1 })
  })

  it.runIf(AS_NOBODY)('of another user, facing a 0700 socket directory: LOGFUNNEL_ERR_CONNECT (permission denied); nothing is written', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const child = spawnUnreachable({ endpoint: writer.endpoint, records: 10, mode: 'funnel', awaitReport: true, producer: FAST },
      { uid: NOBODY, gid: NOBODY })
    const report = await child.waitForLine((l) => l.event === 'unreachable')
    expect(report).toMatchObject({ via: 'error', code: 'LOGFUNNEL_ERR_CONNECT' })
    expect(report.message).toMatch(/permission denied/)
    expect(await exitCode(child), child.describe()).toBe(0)
    expect(await writer.stop()).toMatchObject({ records: 0, producers: 0 })
  })
}, 60_000)

describe('a producer of a healthy writer', () => {
  for (const mode of ['funnel', 'transport'] as const) {
    it(`${mode}: is not reported, even when idle past connectTimeoutMs (the writer's welcome)`, async () => {
      const writer = await startWriterChild(tempDir())
      const child = spawnUnreachable({
        endpoint: writer.endpoint, records: 100, mode, idleMs: 500, producer: { connectTimeoutMs: 200 }
      })
      const done = await child.waitForLine((l) => l.event === 'done')
      expect(await exitCode(child), child.describe()).toBe(0)
      expect(lines(child, 'unreachable')).toEqual([])
      expect(done).toMatchObject({ closeError: null, stats: { records: 100, heldBytes: 0 } })
      expect(await writer.stop({ spoolTaken: true })).toMatchObject({ records: 100 })
    })
  }
}, 60_000)

describe('the sender thread ends cleanly', () => {
  const RUNS = 20
  const BATCH = 5
  it(`${RUNS} unreachable producers (funnel and transport; close() or process.exit() after the report) all exit 0, none aborts`, async () => {
    const endpoint = `ipc://${join(tempDir(), 'none.sock')}`
    const runs = Array.from({ length: RUNS }, (_, i) => ({
      mode: i % 2 === 0 ? 'funnel' : 'transport', exitAfterReport: i % 4 >= 2
    }))
    for (let start = 0; start < RUNS; start += BATCH) {
      await Promise.all(runs.slice(start, start + BATCH).map(async (run) => {
        const child = spawnUnreachable({ endpoint, records: 10, awaitReport: true, producer: { connectTimeoutMs: 100, closeTimeoutMs: 200 }, ...run })
        const code = await exitCode(child)
        const what = `${JSON.stringify(run)}\n${child.describe()}`
        expect(code, what).toBe(0)
        expect(child.stderr(), what).not.toMatch(/terminate called|Napi::Error|Aborted|core dumped/)
        expect(lines(child, 'unreachable').length, what).toBeGreaterThan(0)
        if (!run.exitAfterReport) expect(lines(child, 'done'), what).toHaveLength(1)
      }))
    }
  })
}, 120_000)

/** Records logged by the producers below, which end long before connectTimeoutMs (10 s, the default). */
const KEPT = 25
const range = (from: number, n: number): number[] => Array.from({ length: n }, (_v, i) => from + i)

interface End {
  name: string
  start: (endpoint: string) => Promise<Child>
  /** Exit code, or the signal that ends it. */
  exit: number | string
  /** close(): the report also says how it ended (and there is no LOGFUNNEL_ERR_CLOSE_TIMEOUT after it). */
  closeEnding?: string
}

const ENDS: End[] = [
  { name: 'funnel(), process.exit() right after logging', start: async (endpoint) => spawnProducer({ endpoint, records: KEPT, exitAtOnce: true }), exit: 0 },
  { name: 'transport, process.exit() right after logging', start: async (endpoint) => spawnProducer({ endpoint, records: KEPT, mode: 'transport', exitAtOnce: true }), exit: 0 },
  { name: 'funnel(), close() without an \'error\' listener', start: async (endpoint) => spawnProducer({ endpoint, records: KEPT }), exit: 0, closeEnding: CLOSE_ENDED_WRITER_AWAY },
  {
    name: 'funnel(), SIGTERM (no handler of the application\'s)',
    start: async (endpoint) => {
      const child = spawnProducer({ endpoint, records: KEPT, holdUntilSignal: true })
      await child.waitForLine((l) => l.event === 'logged')
      child.proc.kill('SIGTERM')
      return child
    },
    exit: 'SIGTERM'
  },
  ...(['itself', 'exit'] as const).map((end) => ({
    name: `funnel() in a worker thread that ends ${end === 'itself' ? 'by itself' : 'by process.exit()'}`,
    start: async (endpoint: string) => spawnNode([fixture('worker-logs-and-ends'), JSON.stringify({ endpoint, records: KEPT, end })]),
    exit: 0
  }))
]

describe('a producer that ends before connectTimeoutMs, no writer ever reached: said once as it ends (before, nothing was said)', () => {
  for (const end of ENDS) {
    it(`${end.name}: one LOGFUNNEL_ERR_CONNECT line on stderr naming the ${KEPT} records and the spool; a writer started later writes exactly those`, async () => {
      const dir = tempDir()
      const endpoint = `ipc://${join(dir, 'w.sock')}`
      const spoolDir = join(dir, 'w.sock.spool')
      const child = await end.start(endpoint)
      expect(await exitCode(child), child.describe()).toBe(end.exit)
      const said = connectLines(child.stderr())
      expect(said, child.describe()).toHaveLength(1)
      expect(said[0], child.describe()).toMatch(unreachedLine(endpoint, KEPT, spoolDir, 10_000, end.closeEnding))
      expect(child.stderr(), child.describe()).toBe(`${said[0] as string}\n`)
      expect(readSpooled(spoolDir).seqs, child.describe()).toEqual(range(0, KEPT))

      const writer = await startWriterChild(dir)
      expect(await writer.stop({ spoolTaken: true })).toMatchObject({ records: KEPT, duplicates: 0 })
      expect(await verifyFile(writer.file)).toMatchObject({ lines: KEPT, producers: 1, gaps: 0, duplicates: 0, reordered: 0, torn: 0, ok: true })
    })
  }

  /** Runs spawnUnreachable() with no writer at a fresh endpoint until it is done and exits 0. */
  async function endUnreachable (mode: 'funnel' | 'transport'): Promise<{ child: Child, endpoint: string, spoolDir: string }> {
    const dir = tempDir()
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    const child = spawnUnreachable({ endpoint, records: KEPT, mode })
    await child.waitForLine((l) => l.event === 'done')
    expect(await exitCode(child), child.describe()).toBe(0)
    return { child, endpoint, spoolDir: join(dir, 'w.sock.spool') }
  }

  it("funnel() with an 'error' listener, close(): the report is one 'error' event, which says how close() ended too; not a line on stderr", async () => {
    const { child, endpoint, spoolDir } = await endUnreachable('funnel')
    const reports = lines(child, 'unreachable')
    expect(reports, child.describe()).toMatchObject([{ via: 'error', code: 'LOGFUNNEL_ERR_CONNECT', name: 'ConnectError' }])
    expect(reports[0].message).toMatch(unreachedMessage(endpoint, KEPT, spoolDir, 10_000, CLOSE_ENDED_WRITER_AWAY))
    // That one event says how close() ended too: no LOGFUNNEL_ERR_CLOSE_TIMEOUT event after it.
    expect(lines(child, 'close-report'), child.describe()).toEqual([])
    expect(connectLines(child.stderr()), child.describe()).toEqual([])
  })

  it('funnel(), the writer stopped (SIGSTOP: its socket still takes connections), the script ends by itself: LOGFUNNEL_ERR_HANDSHAKE, not "nothing accepted the connection"; the writer, resumed, writes every record', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    writer.child.proc.kill('SIGSTOP')
    try {
      // A pause past UNREACHED_AT_END_AFTER_MS (1 s): a writer that has not answered sooner is only slow, not reported.
      const child = spawnProducer({ endpoint: writer.endpoint, records: KEPT, endOnItsOwn: true, pauseEvery: KEPT - 5, pauseMs: 1100 })
      expect(await exitCode(child), child.describe()).toBe(0)
      expect(child.stderr(), child.describe()).toMatch(new RegExp(`^logfunnel: LOGFUNNEL_ERR_HANDSHAKE: ${escapeRegExp(writer.endpoint)} accepts connections but no writer answered within \\d+ ms: ` +
        'no ZMTP handshake completed \\(a writer stopped or too busy to answer, or not a logfunnel writer\\); ' +
        `closed before connectTimeoutMs \\(10000 ms\\), with ${KEPT} records without a receipt in the spool \\(${escapeRegExp(writer.spoolDir)}\\), where a writer on this endpoint takes them\\n$`))
    } finally {
      writer.child.proc.kill('SIGCONT')
    }
    expect(await writer.stop({ spoolTaken: true })).toMatchObject({ records: KEPT, duplicates: 0 })
    expect(await verifyFile(writer.file)).toMatchObject({ lines: KEPT, producers: 1, gaps: 0, duplicates: 0, reordered: 0, torn: 0, ok: true })
  })

  it("transport, end(): one line on stderr (the thread's end is the process's: an event would not reach it), no 'logfunnel:error' event", async () => {
    const { child, endpoint, spoolDir } = await endUnreachable('transport')
    expect(lines(child, 'unreachable'), child.describe()).toEqual([])
    const said = connectLines(child.stderr())
    expect(said, child.describe()).toHaveLength(1)
    expect(said[0]).toMatch(unreachedLine(endpoint, KEPT, spoolDir))
  })
}, 60_000)

describe('a producer that reached its writer: nothing said as it ends', () => {
  for (const mode of ['funnel', 'transport'] as const) {
    it(`${mode}: the writer up, process.exit() right after logging: nothing on stderr, all ${KEPT} records in the file`, async () => {
      const writer = await startWriterChild(tempDir())
      const child = spawnProducer({ endpoint: writer.endpoint, records: KEPT, mode, exitAtOnce: true })
      expect(await exitCode(child), child.describe()).toBe(0)
      expect(child.stderr(), child.describe()).toBe('')
      expect(await writer.stop({ spoolTaken: true })).toMatchObject({ records: KEPT })
    })
  }

  it('funnel(): receipts from the writer, then it stops (its socket gone), 50 more records and process.exit(): they are in the spool, nothing on stderr', async () => {
    const dir = tempDir()
    const first = await startWriterChild(dir)
    const child = spawnNode([fixture('producer-logs-across-writer-stop'), JSON.stringify({
      endpoint: first.endpoint, producer: {}, payloadBytes: 10, before: 100, during: 50, after: 0, round: 1, pauseMs: 0, end: 'exit', deadlineMs: 10_000
    })], { stdio: ['pipe', 'pipe', 'pipe'] })
    await child.waitForLine((l) => l.event === 'receipted')
    expect(await first.stop()).toMatchObject({ records: 100 })
    child.proc.stdin?.write('go on\n')
    await child.waitForLine((l) => l.event === 'logged-during')
    child.proc.stdin?.write('go on\n')
    expect(await exitCode(child), child.describe()).toBe(0)
    expect(child.stderr(), child.describe()).toBe('')
    expect(readSpooled(first.spoolDir).seqs, child.describe()).toEqual(range(100, 50))
    const second = await startWriterChild(dir, [], join(dir, 'second.log'))
    expect(await second.stop({ spoolTaken: true })).toMatchObject({ records: 50, duplicates: 0 })
  })
}, 60_000)
