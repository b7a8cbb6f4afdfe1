import { readFileSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { FileError } from '../shared/errors.js'
import { FileSink } from '../writer/sink/file-sink.js'
import { nodeSinkFs, type VectorSinkFs } from '../writer/sink/sink-fs.js'
import { tempDir } from './helpers/children.js'
import { batches } from './helpers/faulty-fs.js'

/**
 * node's fs with writev, whose next writev calls misbehave as told: `short` writes only that
 * many bytes, `fail` throws with that code. Counts writev calls; `durable` is how many bytes
 * had been written when the latest completed fsync began.
 */
function vectorFs (plan: Array<{ short?: number, fail?: string }>): VectorSinkFs & { writevs: number, durable: number } {
  let completed = 0
  const fs = {
    ...nodeSinkFs,
    writevs: 0,
    durable: 0,
    write: async (fd: number, buf: Buffer, offset: number, length: number): Promise<number> => {
      const n = await nodeSinkFs.write(fd, buf, offset, length)
      completed += n
      return n
    },
    writev: async (fd: number, bufs: Buffer[]): Promise<number> => {
      fs.writevs++
      const step = plan.shift()
      if (step?.fail !== undefined) throw Object.assign(new Error(`${step.fail}: injected fault`), { code: step.fail })
      const n = step?.short !== undefined
        ? await nodeSinkFs.write(fd, Buffer.concat(bufs), 0, step.short)
        : await nodeSinkFs.writev(fd, bufs)
      completed += n
      return n
    },
    fsync: async (fd: number): Promise<void> => {
      const covered = completed
      await nodeSinkFs.fsync(fd)
      fs.durable = Math.max(fs.durable, covered)
    }
  }
  return fs
}

async function openVectorSink (fs: VectorSinkFs): Promise<{ sink: FileSink, file: string, errors: FileError[] }> {
  const file = join(tempDir(), 'logs', 'app.log')
  const sink = new FileSink(file, { fs, fsync: 'batch' })
  const errors: FileError[] = []
  sink.on('error', (err: FileError) => errors.push(err))
  await sink.ready()
  return { sink, file, errors }
}

describe('a chunk of batches written with writev', () => {
  it('goes on from the first unwritten byte after a short writev: every byte once, in order', async () => {
    const fs = vectorFs([{ short: 1500 }])
    const { sink, file, errors } = await openVectorSink(fs)
    const data = batches(40)
    let end = 0
    for (const b of data) end = sink.append(b)
    await sink.waitBelow(0)
    expect(sink.bytesWritten).toBe(end)
    expect(await sink.end()).toBe(0)
    expect(readFileSync(file)).toEqual(Buffer.concat(data))
    expect([fs.writevs, errors.length]).toEqual([1, 0])
  })

  it('is retried with backoff when writev fails, then written whole', async () => {
    const fs = vectorFs([{ fail: 'ENOSPC' }, { fail: 'ENOSPC' }])
    const { sink, file, errors } = await openVectorSink(fs)
    const data = batches(40)
    for (const b of data) sink.append(b)
    await sink.waitBelow(0)
    await sink.end()
    expect(readFileSync(file)).toEqual(Buffer.concat(data))
    expect(errors.map((e) => [e.op, e.fsCode, e.retryInMs])).toEqual([['write', 'ENOSPC', 100], ['write', 'ENOSPC', 200]])
  })
})

describe('group commit', () => {
  it('counts bytes as written only once an fsync that began after their write has returned', async () => {
    const fs = vectorFs([])
    const { sink } = await openVectorSink(fs)
    const early: Array<[number, number]> = []
    let reports = 0
    sink.on('written', (written: number) => {
      reports++
      if (written > fs.durable) early.push([written, fs.durable])
    })
    let end = 0
    for (let round = 0; round < 20; round++) {
      for (const b of batches(round % 4 === 0 ? 1 : 30)) end = sink.append(b)
      if (round % 2 === 1) await sink.waitBelow(0)
    }
    await sink.waitBelow(0)
    expect(sink.bytesWritten).toBe(end)
    expect(reports).toBeGreaterThan(0)
    expect(early).toEqual([])
    await sink.end()
  })

  it('writes every chunk not yet confirmed again into a new file when the file was removed', async () => {
    const fs = vectorFs([])
    const { sink, file, errors } = await openVectorSink(fs)
    const data = batches(60)
    for (const b of data.slice(0, 10)) sink.append(b)
    await sink.waitBelow(0)
    const dir = join(file, '..')
    renameSync(dir, `${dir}.gone`)
    rmSync(`${dir}.gone`, { recursive: true })
    for (const b of data.slice(10)) sink.append(b)
    await sink.end()
    expect(readFileSync(file)).toEqual(Buffer.concat(data.slice(10)))
    expect(errors.map((e) => [e.op, e.fsCode, e.retryInMs])).toEqual([['write', 'ENOENT', 0]])
  })
})
