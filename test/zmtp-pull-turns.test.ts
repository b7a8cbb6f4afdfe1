import net from 'node:net'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { encodeCommand, encodeGreeting, encodeProperties, frameHeader } from '../shared/zmtp-frames.js'
import { ZmtpPull } from '../writer/zmtp-pull.js'
import { tempDir, waitFor } from './helpers/children.js'
import { rawPush } from './helpers/raw-push.js'

/**
 * The writer's own reader (writer/zmtp-pull.ts), in this process: messages are taken in turns
 * across connections, and a peer stopped in the middle of a message does not keep the others'
 * bodies out of the ring.
 */
const KiB = 1024
const READY_PUSH = encodeCommand('READY', encodeProperties({ 'Socket-Type': 'PUSH' }))

const pulls: ZmtpPull[] = []
const raw: net.Socket[] = []
afterEach(() => {
  for (const pull of pulls.splice(0)) pull.close()
  for (const socket of raw.splice(0)) socket.destroy()
})

async function listen (opts: { highWaterMark: number, ringBytes: number }): Promise<{ pull: ZmtpPull, endpoint: string }> {
  const pull = new ZmtpPull({ maxMessageBytes: 1024 * KiB, ...opts })
  pulls.push(pull)
  const endpoint = `ipc://${join(tempDir(), 'w.sock')}`
  await pull.bind(endpoint)
  return { pull, endpoint }
}

const nextTurn = async (): Promise<void> => await new Promise((resolve) => setImmediate(resolve))

describe("the writer's own reader, between connections", () => {
  it('4 PUSH clients flooding one reader (high-water mark 8): 4000 messages taken, 1000 from each, in turns', async () => {
    const CLIENTS = 4
    const TAKEN = 4000
    const { pull, endpoint } = await listen({ highWaterMark: 8, ringBytes: 1024 * KiB })
    let flooding = true
    const pushes = Array.from({ length: CLIENTS }, () => rawPush(endpoint))
    const floods = pushes.map(async (push, i) => {
      const msg = Buffer.from(`client ${i}`)
      while (flooding) await push.send(msg)
    })
    const counts = new Array<number>(CLIENTS).fill(0)
    // Wait until every client is connected and sending, then count turns.
    for (const seen = new Set<string>(); seen.size < CLIENTS;) {
      seen.add(String((await pull.receive())[0]))
      await nextTurn()
    }
    for (let n = 0; n < TAKEN; n++) {
      const [body] = await pull.receive()
      counts[Number(String(body).slice('client '.length))]++
      if (n % 16 === 0) await nextTurn()
    }
    flooding = false
    for (const push of pushes) push.close()
    await Promise.allSettled(floods)
    // One message per connection with messages waiting, per turn: within 1% of an even share
    // (a connection can be between reads at a turn).
    for (const count of counts) expect(Math.abs(count - TAKEN / CLIENTS), `taken per client: ${counts.join(' ')}`).toBeLessThanOrEqual(TAKEN / CLIENTS / 100)
  })

  it('a peer stopped in the middle of a 64 KiB body: 64 messages of 64 KiB from another still go to the 1 MiB ring, and the stopped one arrives whole once it goes on', async () => {
    const RING = 1024 * KiB
    const { pull, endpoint } = await listen({ highWaterMark: 8, ringBytes: RING })
    const inRing = (body: Buffer): boolean => pull.ring.owns(body)

    const stalled = net.connect(endpoint.slice('ipc://'.length))
    raw.push(stalled)
    stalled.on('error', () => {})
    const body = Buffer.alloc(64 * KiB, 0x61)
    body.write('the stalled one')
    stalled.write(Buffer.concat([encodeGreeting('NULL'), READY_PUSH, frameHeader(body.length, 0), body.subarray(0, 20 * KiB)]))
    await waitFor(() => pull.ring.inUse === 1, 10_000, () => `${pull.ring.inUse} regions in use`)

    const push = rawPush(endpoint)
    const other = Buffer.alloc(64 * KiB, 0x62)
    const sending = (async () => { for (let i = 0; i < 64; i++) await push.send(other) })()
    let outside = 0
    for (let i = 0; i < 64; i++) {
      const [got] = await pull.receive()
      expect(got.equals(other)).toBe(true)
      if (!inRing(got)) outside++
      pull.ring.hold([got], 0)
      pull.ring.release(0)
    }
    await sending
    // Only the bodies taken while the stalled region was still the oldest came from fresh memory: none.
    expect(outside).toBe(0)

    stalled.write(body.subarray(20 * KiB))
    const [late] = await pull.receive()
    expect(late.equals(body)).toBe(true)
    expect(inRing(late)).toBe(false)              // moved out of the ring when the ring needed it
  })
})
