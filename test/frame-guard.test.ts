import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { MAX_MESSAGE_SIZE_FACTOR } from '../shared/options.js'
import { HEADER_BYTES } from '../shared/protocol.js'
import { rawPush } from './helpers/raw-push.js'
import { tempDir, waitFor } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'

const MAX_FRAME_BYTES = 1024
/** libzmq's ZMQ_MAXMSGSIZE on the writer's PULL. */
const GUARD_BYTES = MAX_FRAME_BYTES * MAX_MESSAGE_SIZE_FACTOR + HEADER_BYTES


/** A frame of `bytes` bytes made of whole lines (so only its size is wrong). */
function linesOf (bytes: number): Buffer {
  return Buffer.concat([Buffer.from('{"big":"'), Buffer.alloc(bytes - 11, 0x61), Buffer.from('"}\n')])
}

describe(`maxMessageSize guard (maxFrameBytes ${MAX_FRAME_BYTES}: frames over ${GUARD_BYTES} bytes stop in libzmq)`, () => {
  it('a frame over the guard is never counted, the writer keeps serving, a later frame from another connection is written', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir, ['--max-frame-bytes', String(MAX_FRAME_BYTES)])
    const lines = (): string[] => readFileSync(writer.file, 'utf8').split('\n').filter(Boolean)
    const attacker = rawPush(writer.endpoint)

    // Over maxFrameBytes but under the guard: it reaches the writer and is counted as too_large.
    await attacker.send(linesOf(2 * MAX_FRAME_BYTES))
    await attacker.send(Buffer.from('{"a":"before"}\n'))
    await waitFor(() => lines().length === 1, 20_000, () => `file: ${lines().join(' | ')}`)

    // Far over the guard: libzmq drops the connection while decoding; JS never sees the frame.
    await attacker.send(linesOf(64 * GUARD_BYTES))
    const other = rawPush(writer.endpoint)
    await other.send(Buffer.from('{"b":"after"}\n'))
    await waitFor(() => lines().length === 2, 20_000, () => `file: ${lines().join(' | ')}`)

    const summary = await writer.stop()
    expect(lines()).toEqual(['{"a":"before"}', '{"b":"after"}'])
    expect(summary).toMatchObject({ records: 2, batches: 2, rejected: { too_large: 1 } })
    expect(Object.keys(summary.rejected)).toEqual(['too_large'])
  })
}, 60_000)
