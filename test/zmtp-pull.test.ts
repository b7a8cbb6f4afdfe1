import { readFileSync } from 'node:fs'
import net from 'node:net'
import { describe, expect, it } from 'vitest'
import {
  encodeCommand, encodeGreeting, encodeProperties, FLAG_COMMAND, FLAG_MORE, frameHeader, FrameDecoder, GREETING_BYTES,
  parseCommand, type Frame
} from '../shared/zmtp-frames.js'
import { encodeHeader } from '../shared/protocol.js'
import { tempDir, waitFor } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'
import { rawPush } from './helpers/raw-push.js'

/**
 * The writer's own ZMTP reader (writer/zmtp-pull.ts) serves endpoints without CURVE. A peer that
 * does not speak ZMTP 3 as a PUSH socket is dropped; the writer writes nothing of it and goes on
 * serving everyone else. Each case talks raw bytes over the ipc socket.
 */
const READY_PUSH = encodeCommand('READY', encodeProperties({ 'Socket-Type': 'PUSH' }))
const READY_PULL = encodeCommand('READY', encodeProperties({ 'Socket-Type': 'PULL' }))
const data = (text: string, flags = 0): Buffer => Buffer.concat([frameHeader(Buffer.byteLength(text), flags), Buffer.from(text)])

/** Connects, writes `bytes` (one byte per write when `trickle`), resolves with what came back once the writer closed or `untilBytes` arrived. */
async function talk (endpoint: string, bytes: Buffer, opts: { trickle?: boolean, untilBytes?: number } = {}): Promise<{ closed: boolean, received: Buffer }> {
  const socket = net.connect(endpoint.slice('ipc://'.length))
  const got: Buffer[] = []
  let closed = false
  socket.on('data', (chunk: Buffer) => got.push(chunk))
  socket.on('error', () => {})
  socket.on('close', () => { closed = true })
  await new Promise((resolve) => socket.once('connect', resolve))
  if (opts.trickle === true) for (let i = 0; i < bytes.length; i++) socket.write(bytes.subarray(i, i + 1))
  else socket.write(bytes)
  const size = (): number => got.reduce((n, b) => n + b.length, 0)
  await waitFor(() => closed || (opts.untilBytes !== undefined && size() >= opts.untilBytes), 10_000, () => `open, ${size()} bytes back`)
  socket.destroy()
  return { closed, received: Buffer.concat(got) }
}

const lines = (file: string): string[] => readFileSync(file, 'utf8').split('\n').filter(Boolean)

describe("the writer's own ZMTP reader", () => {
  it('drops each peer that is not a ZMTP 3 PUSH socket, writes nothing of theirs, keeps serving', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const bad: Array<[string, Buffer]> = [
      ['not ZMTP at all', Buffer.concat([Buffer.from('GET / HTTP/1.1\r\n\r\n'), Buffer.alloc(64, 0x61)])],
      ['the CURVE mechanism', Buffer.concat([encodeGreeting('CURVE'), data('{"bad":1}\n')])],
      ['a PULL socket', Buffer.concat([encodeGreeting('NULL'), encodeCommand('READY', encodeProperties({ 'Socket-Type': 'PULL' })), data('{"bad":2}\n')])],
      ['a message before READY', Buffer.concat([encodeGreeting('NULL'), data('{"bad":3}\n')])],
      ['reserved frame flags', Buffer.concat([encodeGreeting('NULL'), READY_PUSH, Buffer.from([0x80, 10]), Buffer.from('{"bad":4}\n')])],
      ['a command of 5000 bytes', Buffer.concat([encodeGreeting('NULL'), READY_PUSH, frameHeader(5000, FLAG_COMMAND), Buffer.alloc(5000, 4)])],
      ['a message of 65 empty frames', Buffer.concat([encodeGreeting('NULL'), READY_PUSH, ...Array.from({ length: 65 }, () => frameHeader(0, FLAG_MORE))])]
    ]
    for (const [what, bytes] of bad) {
      const { closed } = await talk(writer.endpoint, bytes)
      expect(closed, what).toBe(true)
    }
    const push = rawPush(writer.endpoint)
    await push.send(Buffer.from('{"good":1}\n'))
    await waitFor(() => lines(writer.file).length >= 1, 10_000, () => `file: ${lines(writer.file).join(' | ')}`)
    const summary = await writer.stop()
    expect(lines(writer.file)).toEqual(['{"good":1}'])
    expect(summary.records).toBe(1)
    expect(summary.rejected).toEqual({})
  })

  it('reads past a message over the limit (4 MiB frames + header) without keeping it: counted as too_large, the peer stays, its next message is written', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const header = encodeHeader({ records: 1, seq: 0, base: 0, producerId: Buffer.alloc(16, 9) })
    const big = 5 * 1024 * 1024
    const stream = Buffer.concat([
      encodeGreeting('NULL'),
      READY_PUSH,
      frameHeader(header.length, FLAG_MORE), header,
      frameHeader(big, 0), Buffer.alloc(big, 0x78),
      data('{"good":2}\n')
    ])
    const socket = net.connect(writer.endpoint.slice('ipc://'.length))
    let closed = false
    socket.on('error', () => {})
    socket.on('close', () => { closed = true })
    socket.write(stream)
    await waitFor(() => lines(writer.file).length >= 1 || closed, 10_000, () => `file: ${lines(writer.file).join(' | ')}`)
    expect(closed).toBe(false)
    socket.destroy()
    const summary = await writer.stop()
    expect(lines(writer.file)).toEqual(['{"good":2}'])
    expect(summary.rejected).toEqual({ too_large: 1 })
    expect(writer.child.stderr()).toContain('"batch-too-large"')
  })

  it('takes a stream cut into single bytes: the handshake, a two-frame batch, a plain frame; answers PING with PONG', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const producerId = Buffer.alloc(16, 7)
    const payload = '{"n":1}\n{"n":2}\n'
    const stream = Buffer.concat([
      encodeGreeting('NULL'),
      READY_PUSH,
      Buffer.concat([frameHeader(encodeHeader({ records: 2, seq: 0, base: 0, producerId }).length, FLAG_MORE), encodeHeader({ records: 2, seq: 0, base: 0, producerId })]),
      data(payload),
      data('{"n":3}\n'),
      encodeCommand('PING', Buffer.from([0, 0, 0x63, 0x74, 0x78]))
    ])
    const { received } = await talk(writer.endpoint, stream, { trickle: true, untilBytes: GREETING_BYTES + READY_PULL.length + encodeCommand('PONG', Buffer.from('ctx')).length })
    await waitFor(() => lines(writer.file).length >= 3, 10_000, () => `file: ${lines(writer.file).join(' | ')}`)
    const summary = await writer.stop()
    expect(lines(writer.file)).toEqual(['{"n":1}', '{"n":2}', '{"n":3}'])
    expect(summary.records).toBe(3)
    expect(summary.batches).toBe(2)

    // The writer's greeting (as server, NULL), its READY (a PULL socket), then the PONG.
    expect([received[0], received[9], received[10], received[32]]).toEqual([0xff, 0x7f, 3, 1])
    const decoder = new FrameDecoder(1024)
    decoder.append(received.subarray(GREETING_BYTES))
    const frames: Frame[] = []
    expect(decoder.parse(frames)).toBeUndefined()
    const commands = frames.map((f) => parseCommand(f.body))
    expect(commands.map((c) => c?.name)).toEqual(['READY', 'PONG'])
    expect(commands[1]?.data.toString()).toBe('ctx')
  })
})
