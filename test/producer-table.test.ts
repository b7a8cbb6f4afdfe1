import { describe, expect, it } from 'vitest'
import { PRODUCER_ID_BYTES, type BatchHeader } from '../shared/protocol.js'
import { ProducerTable } from '../writer/producer-table.js'

/** The writer's per-producer sequencing without sockets or files. */

const ID = Buffer.alloc(PRODUCER_ID_BYTES, 7)
const KEY = ID.toString('hex')
const header = (seq: number, base = 0, producerId = ID): BatchHeader => ({ seq, base, records: 1, producerId } as BatchHeader)
const payload = (text: string): Buffer => Buffer.from(`{"msg":"${text}"}\n`)

describe('ProducerTable', () => {
  it('writes each batch once and in order: the next is written, an earlier one is a duplicate, a later one a gap', () => {
    const table = new ProducerTable()
    expect(table.admit(header(0), payload('a'))).toEqual({ kind: 'write', key: KEY })
    expect(table.admit(header(1), payload('b'))).toEqual({ kind: 'write', key: KEY })
    expect(table.admit(header(1), payload('b'))).toEqual({ kind: 'duplicate', key: KEY, expected: 2 })
    expect(table.admit(header(3), payload('d'))).toEqual({ kind: 'gap', key: KEY, expected: 2 })
    expect(table.admit(header(2), payload('c'))).toEqual({ kind: 'write', key: KEY })
    expect(table.size).toBe(1)
  })

  it('the receipt is the highest batch in the file: this run\'s, or the floor a previous writer saved', () => {
    const table = new ProducerTable()
    expect(table.receiptOf(KEY)).toBeUndefined()
    table.admit(header(0), payload('a'))
    expect(table.receiptOf(KEY)).toBeUndefined()
    table.receipted(KEY, 0)
    expect(table.receiptOf(KEY)).toBe(0)

    // As loadProducerStates() gives it back: the next batch expected is what was written before.
    const restarted = new ProducerTable()
    restarted.restore(new Map([[KEY, { next: 1, seen: Date.now(), floor: 1, written: -1 }]]))
    // The previous writer wrote batch 0: its receipt stands, and a resend of it is a duplicate.
    expect(restarted.receiptOf(KEY)).toBe(0)
    expect(restarted.admit(header(0), payload('a'))).toMatchObject({ kind: 'duplicate', expected: 1 })
    expect(restarted.admit(header(1), payload('b'))).toEqual({ kind: 'write', key: KEY })
  })

  it('a new producer starts at its base: what earlier writers receipted is not owed', () => {
    const table = new ProducerTable()
    expect(table.admit(header(5, 5), payload('f'))).toEqual({ kind: 'write', key: KEY })
    expect(table.admit(header(4, 4), payload('e'))).toMatchObject({ kind: 'duplicate', expected: 6 })
  })

  it('another sender of a written id: a base past unreceived batches, or other content at a written seq, is a conflict reported once', () => {
    const table = new ProducerTable()
    table.admit(header(0), payload('a'))
    table.admit(header(1), payload('b'))
    expect(table.admit(header(9, 9), payload('forged'))).toEqual({ kind: 'base_skip', key: KEY, expected: 2, first: true })
    expect(table.admit(header(1), payload('other'))).toEqual({ kind: 'id_conflict', key: KEY, expected: 2, first: false })
    // Neither moved the producer's position.
    expect(table.admit(header(2), payload('c'))).toEqual({ kind: 'write', key: KEY })
  })

  it('batches from the spool do not make a later base a conflict: they may be copies a killed writer also wrote after its last save', () => {
    const table = new ProducerTable()
    table.restore(new Map([[KEY, { next: 2, seen: Date.now(), floor: 2, written: -1 }]]))
    expect(table.admit(header(2, 2), payload('c'), true)).toEqual({ kind: 'write', key: KEY })
    expect(table.admit(header(3, 2), payload('d'), true)).toEqual({ kind: 'write', key: KEY })
    // The producer had receipts through 4 from the killed writer.
    expect(table.admit(header(5, 5), payload('f'))).toEqual({ kind: 'write', key: KEY })
    // Over the network from then on: a base past what was received is another sender's.
    expect(table.admit(header(9, 9), payload('forged'))).toEqual({ kind: 'base_skip', key: KEY, expected: 6, first: true })
  })

  it('a snapshot is new only when something changed since the last one saved', () => {
    const table = new ProducerTable()
    table.admit(header(0), payload('a'))
    const first = table.snapshot()
    expect(table.isNew(first)).toBe(true)
    table.saved(first)
    expect(table.isNew(table.snapshot())).toBe(false)
    table.admit(header(1), payload('b'))
    expect(table.isNew(table.snapshot())).toBe(true)
  })

  it('prune forgets nothing that is not yet receipted', () => {
    const table = new ProducerTable()
    table.admit(header(0), payload('a'))
    const forgotten: string[] = []
    const farFuture = Date.now() + 365 * 24 * 3600 * 1000
    table.prune(farFuture, (key) => forgotten.push(key))
    expect(forgotten).toEqual([])
    table.receipted(KEY, 0)
    table.prune(farFuture, (key) => forgotten.push(key))
    expect(forgotten).toEqual([KEY])
    expect(table.size).toBe(0)
    expect(table.receiptOf(KEY)).toBeUndefined()
  })
})
