import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { MAX_MESSAGE_SIZE_FACTOR } from '../shared/options.js'
import { HEADER_BYTES } from '../shared/protocol.js'
import { rawPush } from './helpers/raw-push.js'
import { tempDir, waitFor } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'

const MAX_FRAME_BYTES = 1024
/** The reader's guard (libzmq's ZMQ_MAXMSGSIZE with CURVE). */
const GUARD_BYTES = MAX_FRAME_BYTES * MAX_MESSAGE_SIZE_FACTOR + HEADER_BYTES


/** A frame of `bytes` bytes made of whole lines (so only its size is wrong). */
function linesOf (bytes: number): Buffer {
  return Buffer.concat([Buffer.from('{"big":"'), Buffer.alloc(bytes - 11, 0x61), Buffer.from('"}\n')])
}

describe(`the message size guard (maxFrameBytes ${MAX_FRAME_BYTES}: frames over ${GUARD_BYTES} bytes are not kept)`, () => {
  it('a frame over the guard is read past without being kept and counted as too_large; the writer keeps serving both connections', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir, ['--max-frame-bytes', String(MAX_FRAME_BYTES)])
    const lines = (): string[] => readFileSync(writer.file, 'utf8').split('\n').filter(Boolean)
    const attacker = rawPush(writer.endpoint)

    // Over maxFrameBytes but under the guard: it reaches the writer and is counted as too_large.
    await attacker.send(linesOf(2 * MAX_FRAME_BYTES))
    await attacker.send(Buffer.from('{"a":"before"}\n'))
    await waitFor(() => lines().length === 1, 20_000, () => `file: ${lines().join(' | ')}`)

    // Far over the guard: the writer's reader reads past it, keeping none of it (with CURVE,
    // libzmq would drop the connection instead); the same connection's next frame is written.
    await attacker.send(linesOf(64 * GUARD_BYTES))
    await attacker.send(Buffer.from('{"c":"after the big one"}\n'))
    const other = rawPush(writer.endpoint)
    await other.send(Buffer.from('{"b":"after"}\n'))
    await waitFor(() => lines().length === 3, 20_000, () => `file: ${lines().join(' | ')}`)

    const summary = await writer.stop()
    expect(lines().sort()).toEqual(['{"a":"before"}', '{"b":"after"}', '{"c":"after the big one"}'])
    expect(summary).toMatchObject({ records: 3, batches: 3, rejected: { too_large: 2 } })
    expect(Object.keys(summary.rejected)).toEqual(['too_large'])
  })
}, 60_000)
