import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { encodeHeader, HEADER_BYTES } from '../shared/protocol.js'
import { rawPush } from './helpers/raw-push.js'
import { tempDir, waitFor } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'


const producerId = randomBytes(16)
const header = (fields: Partial<{ records: number, seq: number, base: number }> = {}): Buffer =>
  encodeHeader({ records: 1, seq: 0, base: 0, producerId, ...fields })

/** Each bad message, the reason the writer must count it under, and its frames. */
const BAD: Array<[string, string, Buffer[]]> = [
  ['a frame without a trailing newline', 'no_trailing_newline', [Buffer.from('{"bad":1}')]],
  ['an empty frame', 'empty', [Buffer.alloc(0)]],
  ['a bad header', 'bad_header', [Buffer.from('not a header'), Buffer.from('{"bad":2}\n')]],
  ['an unknown protocol version', 'unsupported_version', [Buffer.concat([header().subarray(0, 2), Buffer.from([9]), header().subarray(3)]), Buffer.from('{"bad":3}\n')]],
  ['invalid UTF-8', 'invalid_utf8', [Buffer.from([0x7b, 0xff, 0xfe, 0x7d, 0x0a])]],
  ['a 2 MiB frame', 'too_large', [Buffer.concat([Buffer.alloc(2 * 1024 * 1024 - 1, 0x61), Buffer.from('\n')])]],
  ['a record count that does not match', 'count_mismatch', [header({ records: 5 }), Buffer.from('{"bad":4}\n')]],
  ['three frames', 'bad_frame_count', [header(), Buffer.from('{"bad":5}\n'), Buffer.from('{"bad":6}\n')]],
  ['a batch that skips ahead', 'out_of_sequence', [header({ seq: 7, base: 0 }), Buffer.from('{"bad":7}\n')]],
  ['a line that is not UTF-8 beside good ones', 'invalid_utf8_line', []]
]

describe('a raw PUSH client sending good and bad messages', () => {
  it('writes only the good lines, counts each bad message by reason, keeps serving', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const push = rawPush(writer.endpoint)

    await push.send(Buffer.from('{"good":1}\n{"good":2}\n'))
    for (const [, , frames] of BAD) if (frames.length > 0) await push.send(frames)
    // A logfunnel batch in sequence after the bad ones, then a plain frame.
    await push.send([header({ seq: 0 }), Buffer.from('{"good":3}\n')])
    await push.send(Buffer.from('{"good":4}\n'))

    const lines = (): string[] => readFileSync(writer.file, 'utf8').split('\n').filter(Boolean)
    await waitFor(() => lines().length >= 4, 20_000, () => `file has ${lines().length} lines: ${lines().join(' | ')}`)
    const summary = await writer.stop()

    expect(lines()).toEqual(['{"good":1}', '{"good":2}', '{"good":3}', '{"good":4}'])
    expect(summary.records).toBe(4)
    expect(summary.rejected).toEqual(Object.fromEntries(BAD.filter(([, , frames]) => frames.length > 0).map(([, reason]) => [reason, 1])))
  })

  it('a message with one line that is not UTF-8: its other lines are written, the bad one counted as invalid_utf8_line and named once; a batch of it is receipted', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const push = rawPush(writer.endpoint)
    const bad = Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d, 0x0a])
    await push.send(Buffer.concat([Buffer.from('{"plain":1}\n'), bad, Buffer.from('{"plain":2}\n')]))
    await push.send([header({ records: 3, seq: 0 }), Buffer.concat([Buffer.from('{"batch":1}\n'), bad, Buffer.from('{"batch":2}\n')])])
    // The batch was written and receipted: the producer's next one follows it.
    await push.send([header({ records: 1, seq: 1, base: 1 }), Buffer.from('{"batch":3}\n')])
    const lines = (): string[] => readFileSync(writer.file, 'utf8').split('\n').filter(Boolean)
    await waitFor(() => lines().length >= 5, 20_000, () => `file has ${lines().length} lines: ${lines().join(' | ')}`)
    const summary = await writer.stop()
    expect(lines()).toEqual(['{"plain":1}', '{"plain":2}', '{"batch":1}', '{"batch":2}', '{"batch":3}'])
    expect(summary).toMatchObject({ records: 5, batches: 3, rejected: { invalid_utf8_line: 2 } })
    const told = writer.child.stderr().split('\n').filter((l) => l.includes('"lines-dropped"')).map((l) => JSON.parse(l))
    expect(told.map((t) => [t.producerId, t.lines, t.written])).toEqual([['plain', 1, 2], [producerId.toString('hex'), 1, 2]])
  })

  it('survives 500 random messages and still writes the next good line', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const push = rawPush(writer.endpoint)
    for (let i = 0; i < 500; i++) {
      const frames = Array.from({ length: 1 + (i % 3) }, (_, j) =>
        j === 0 && i % 5 === 0 ? Buffer.concat([header(), randomBytes(i % HEADER_BYTES)]) : randomBytes(i % 97))
      await push.send(frames)
    }
    await push.send(Buffer.from('{"after":"noise"}\n'))
    const text = (): string => readFileSync(writer.file, 'utf8')
    await waitFor(() => text().includes('{"after":"noise"}\n'), 20_000, () => `file: ${JSON.stringify(text().slice(-200))}`)
    const summary = await writer.stop()
    // Lines dropped from a message whose other lines were written are counted apart (invalid_utf8_line).
    const rejected = Object.entries(summary.rejected as Record<string, number>).filter(([reason]) => reason !== 'invalid_utf8_line').reduce((a, [, n]) => a + n, 0)
    // Every message is accounted for: written (a random frame can be valid lines), duplicate or rejected.
    expect(rejected + summary.batches + summary.duplicates).toBe(501)
    expect(text().endsWith('{"after":"noise"}\n')).toBe(true)
  })
}, 60_000)

for (const [what, reason] of BAD) {
  it(`docs/protocol.md documents the reject reason '${reason}' for ${what}`, () => {
    expect(readFileSync(new URL('../docs/protocol.md', import.meta.url), 'utf8')).toContain(`\`${reason}\``)
  })
}
