import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import * as zmq from 'zeromq'
import { decodeReceipt, encodeHeader, GAP_FLAG } from '../shared/protocol.js'
import { tempDir } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'
import { rawPush } from './helpers/raw-push.js'

const subs: zmq.Subscriber[] = []
afterEach(() => {
  for (const s of subs.splice(0)) s.close()
})

describe('receipts with a gap report', () => {
  it('a batch that skips ahead is refused and answered with the current receipt and GAP_FLAG', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const producerId = randomBytes(16)
    const sub = new zmq.Subscriber({ linger: 0, receiveTimeout: 10_000 })
    subs.push(sub)
    sub.connect(`${writer.endpoint}.receipts`)
    sub.subscribe(producerId)
    // The welcome on subscribe says the subscription is in place.
    const [, welcome, welcomeFlag] = await sub.receive()
    expect(decodeReceipt(welcome as Buffer)).toBeUndefined()
    expect(welcomeFlag).toBeUndefined()

    const push = rawPush(writer.endpoint)
    const batch = (seq: number): Buffer[] => [encodeHeader({ records: 1, seq, base: 0, producerId }), Buffer.from(`{"seq":${seq}}\n`)]
    await push.send(batch(0))
    const [, first] = await sub.receive()
    expect(decodeReceipt(first as Buffer)).toBe(0)

    await push.send(batch(2))
    const [, current, flag] = await sub.receive()
    expect(decodeReceipt(current as Buffer)).toBe(0)
    expect(flag).toEqual(GAP_FLAG)

    await push.send(batch(1))
    await push.send(batch(2))
    const receipts: number[] = []
    while (receipts.at(-1) !== 2) receipts.push(decodeReceipt((await sub.receive())[1] as Buffer) as number)
    expect(receipts.at(-1)).toBe(2)
    const summary = await writer.stop()
    expect(summary).toMatchObject({ records: 3, rejected: { out_of_sequence: 1 } })
  })
}, 60_000)
