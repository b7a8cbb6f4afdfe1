import { readFileSync, statSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import * as zmq from 'zeromq'
import { tempDir, waitFor } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'

// The bound documented in README ("Guarantees and limits"), with the options of this test.
const KiB = 1024
const MiB = 1024 * KiB
const RECEIVE_HIGH_WATER_MARK = 4
const CONNECTIONS = 16
const FRAME_BYTES = 64 * KiB
/**
 * The writer's own reader (no CURVE here): the high-water mark in all, but each connection's
 * share at least one message; per connection its read buffer (256 KiB) and the message being
 * read; and the 32 MiB ring of received bodies.
 */
const RECEIVE_QUEUES = Math.max(RECEIVE_HIGH_WATER_MARK, CONNECTIONS) * FRAME_BYTES + CONNECTIONS * (256 * KiB + FRAME_BYTES) + 32 * MiB
/** writer.ts pauses receiving above 8 MiB waiting for the file; one more frame can land first; the sink merges up to 1 MiB per write. */
const WRITE_QUEUE = 8 * MiB + FRAME_BYTES + 1 * MiB
/** V8 starts collecting only once external memory (received Buffers) has grown 64 MiB since the last GC. */
const GC_SLACK = 64 * MiB
const ALLOWANCE = RECEIVE_QUEUES + WRITE_QUEUE + GC_SLACK

const sockets: zmq.Socket[] = []
afterEach(() => {
  for (const s of sockets.splice(0)) s.close()
})

/** VmHWM (peak resident set) of a process, in bytes. */
function peakRss (pid: number): number {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (match === null) throw new Error(`no VmHWM in /proc/${pid}/status`)
  return Number(match[1]) * KiB
}

describe.runIf(process.platform === 'linux')('writer memory under a flood', () => {
  it(`${CONNECTIONS} raw PUSH clients blasting 64 KiB frames at a slow writer (--receive-high-water-mark ${RECEIVE_HIGH_WATER_MARK}): peak RSS stays under baseline + ${Math.round(ALLOWANCE / MiB)} MiB, every client served in turns`, async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir, [
      '--receive-high-water-mark', String(RECEIVE_HIGH_WATER_MARK),
      '--max-frame-bytes', String(FRAME_BYTES),
      '--stats-interval-ms', '0'
    ], undefined, 1)
    const pid = writer.child.proc.pid as number
    const baseline = peakRss(pid)

    const frame = Buffer.concat([Buffer.alloc(FRAME_BYTES - 1, 0x61), Buffer.from('\n')])
    let blasting = true
    let sent = 0
    const sentBy = new Array<number>(CONNECTIONS).fill(0)
    const clients = Array.from({ length: CONNECTIONS }, () => {
      const push = new zmq.Push({ linger: 0, sendHighWaterMark: 8 })
      sockets.push(push)
      push.connect(writer.endpoint)
      return push
    })
    const loops = clients.map(async (push, i) => {
      while (blasting) {
        await push.send(frame)
        sent++
        sentBy[i]++
      }
    })

    // Push at least twice the allowance through the writer, so that a writer keeping what it
    // received (or queueing without a limit) would pass the bound.
    const size = (): number => statSync(writer.file, { throwIfNoEntry: false })?.size ?? 0
    await waitFor(() => size() >= 2 * ALLOWANCE, 60_000, () => `log file has ${size()} bytes, writer peak RSS ${peakRss(pid)}`)
    const peak = peakRss(pid)

    blasting = false
    for (const push of clients) push.close()
    await Promise.allSettled(loops)
    const summary = await writer.stop()

    expect(summary.rejected).toEqual({})
    expect(summary.bytes).toBeGreaterThanOrEqual(2 * ALLOWANCE)
    // The clients were faster than the writer: messages were still queued (in the clients,
    // the kernel and the writer's libzmq queues) when they closed.
    expect(sent - summary.batches).toBeGreaterThanOrEqual(CONNECTIONS * RECEIVE_HIGH_WATER_MARK)
    // Taken in turns: no client waited behind the others' flood (each sent at least half an
    // even share; its own queue and the kernel's hold 8 or so of a starved client's).
    for (const n of sentBy) expect(n, `sent per client: ${sentBy.join(' ')}`).toBeGreaterThanOrEqual(sent / CONNECTIONS / 2)
    expect(peak, `baseline ${(baseline / MiB).toFixed(1)} MiB, peak ${(peak / MiB).toFixed(1)} MiB, allowance ${(ALLOWANCE / MiB).toFixed(1)} MiB`)
      .toBeLessThan(baseline + ALLOWANCE)
  })
}, 120_000)
