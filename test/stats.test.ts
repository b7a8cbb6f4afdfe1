import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type * as zmq from 'zeromq'
import { encodeHeader } from '../shared/protocol.js'
import type { Child } from './helpers/children.js'
import { rawPush } from './helpers/raw-push.js'
import { tempDir, waitFor } from './helpers/children.js'
import { runProducers, startWriterChild } from './helpers/cluster.js'
import { expectWriterRefusal } from './helpers/writer-cli.js'


/** The writer's `{"event":"stats"}` lines on stderr so far. */
function statsLines (child: Child): any[] {
  return child.stderr().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).filter((l) => l.event === 'stats')
}

const producerId = randomBytes(16)
const batch = (seq: number, lines: string[], records = lines.length): Buffer[] =>
  [encodeHeader({ records, seq, base: 0, producerId }), Buffer.from(lines.map((l) => l + '\n').join(''))]

/**
 * The known workload: client A sends 5 plain frames of 2 lines; client B sends two logfunnel
 * batches (3 lines, 1 line), a resend of the first, and three bad messages.
 */
const PLAIN = Array.from({ length: 5 }, (_, i) => Buffer.from(`{"plain":${i},"n":1}\n{"plain":${i},"n":2}\n`))
const BATCHES = [batch(0, ['{"b":0}', '{"b":1}', '{"b":2}']), batch(1, ['{"b":3}'])]
const RESEND = batch(0, ['{"b":0}', '{"b":1}', '{"b":2}'])
const BAD = [[Buffer.alloc(0)], [Buffer.from('{"no newline":1}')], batch(2, ['{"b":4}'], 7)]
const BYTES = [...PLAIN, ...BATCHES.map((b) => b[1] as Buffer)].reduce((n, b) => n + b.length, 0)
/** fsyncs only at stop (one, counted in the final line), so the counts stay exact. */
const NO_FSYNC = ['--fsync', 'off']
const EXPECTED = {
  records: 14,
  bytes: BYTES,
  frames: PLAIN.length + BATCHES.length + 1 + BAD.length,
  batches: PLAIN.length + BATCHES.length,
  duplicates: 1,
  producers: 1,
  rejected: { empty: 1, no_trailing_newline: 1, count_mismatch: 1 },
  fsyncs: 0,
  queueBytes: 0
}

async function sendWorkload (endpoint: string): Promise<[zmq.Push, zmq.Push]> {
  const a = rawPush(endpoint, 1000)
  const b = rawPush(endpoint, 1000)
  for (const frame of PLAIN) await a.send(frame)
  for (const frames of [...BATCHES, RESEND, ...BAD]) await b.send(frames)
  return [a, b]
}

describe('writer stats lines on stderr', () => {
  it('every --stats-interval-ms: exact cumulative counts, open connections, the interval latency; a final line at stop', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir, ['--stats-interval-ms', '100', ...NO_FSYNC])
    const [a] = await sendWorkload(writer.endpoint)

    const settled = (): any => statsLines(writer.child).find((l) => l.frames === EXPECTED.frames && l.connectedProducers === 2)
    await waitFor(() => settled() !== undefined, 20_000, () => `stats lines: ${writer.child.stderr().slice(-1000)}`)
    expect(settled()).toMatchObject({ ...EXPECTED, final: false, connectedProducers: 2 })

    a.close()
    const after = (): any => statsLines(writer.child).find((l) => l.connectedProducers === 1)
    await waitFor(() => after() !== undefined, 20_000, () => `stats lines: ${writer.child.stderr().slice(-1000)}`)

    const summary = await writer.stop()
    const lines = statsLines(writer.child)
    const final = lines[lines.length - 1]
    expect(lines.filter((l) => l.final)).toEqual([final])
    expect(final).toMatchObject({ ...EXPECTED, fsyncs: 1, final: true })
    expect(summary).toMatchObject({ event: 'stopped', records: 14, bytes: BYTES, batches: 7, duplicates: 1, producers: 1, rejected: EXPECTED.rejected, fsyncs: 1 })

    // Each written batch's latency is counted in exactly one interval.
    expect(lines.reduce((n, l) => n + l.writeLatencyMs.count, 0)).toBe(EXPECTED.batches)
    for (const l of lines) {
      const { count, p50, p99, max } = l.writeLatencyMs
      if (count === 0) expect({ p50, p99, max }).toEqual({ p50: 0, p99: 0, max: 0 })
      else expect(0 <= p50 && p50 <= p99 && p99 <= max).toBe(true)
    }
    const uptimes = lines.map((l) => l.uptimeMs)
    expect(uptimes).toEqual([...uptimes].sort((x, y) => x - y))
  })

  it('--stats-interval-ms 0: no periodic line, one final line with every batch in its latency count', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir, ['--stats-interval-ms', '0', ...NO_FSYNC])
    await sendWorkload(writer.endpoint)
    const lines = (): number => readFileSync(writer.file, 'utf8').split('\n').length - 1
    await waitFor(() => lines() === EXPECTED.records, 20_000, () => `file has ${lines()} lines`)

    const summary = await writer.stop()
    const stats = statsLines(writer.child)
    expect(stats).toHaveLength(1)
    expect(stats[0]).toMatchObject({ ...EXPECTED, fsyncs: 1, final: true, writeLatencyMs: { count: EXPECTED.batches } })
    expect(summary.records).toBe(EXPECTED.records)
  })

  it('the final stats line and the summary agree on fsyncs, the rotation fsyncs included', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir, ['--stats-interval-ms', '0', '--rotate-size', '16K'])
    await runProducers(2, { endpoint: writer.endpoint, records: 2000 })
    const summary = await writer.stop({ spoolTaken: true })
    const [final] = statsLines(writer.child)
    expect(summary.records).toBe(4000)
    expect(summary.rotations).toBeGreaterThan(0)
    expect(final.fsyncs).toBe(summary.fsyncs)
    expect(summary.fsyncs).toBeGreaterThan(summary.rotations)
  })

  for (const ms of ['1', '99']) {
    it(`--stats-interval-ms ${ms} is refused (a flood of stderr): exit 1, LOGFUNNEL_ERR_INVALID_OPTION naming the 100 ms minimum, no ready line`, async () => {
      const dir = tempDir()
      const child = await expectWriterRefusal(['--file', join(dir, 'app.log'), '--endpoint', `ipc://${join(dir, 'w.sock')}`, '--stats-interval-ms', ms], 1, 'LOGFUNNEL_ERR_INVALID_OPTION')
      expect(child.stderr()).toBe(`logfunnel: LOGFUNNEL_ERR_INVALID_OPTION: statsIntervalMs (--stats-interval-ms) must be 0 (off) or an integer between 100 ms and 1 day, got ${ms}\n`)
    })
  }
}, 60_000)
