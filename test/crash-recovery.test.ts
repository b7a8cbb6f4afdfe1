import { appendFileSync, closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { exitCode, stderrEvents, tempDir, waitFor, type Child } from './helpers/children.js'
import { runProducers, spawnProducer, startWriterChild } from './helpers/cluster.js'

/** Bytes after the last newline. */
function tornTail (file: string): number {
  const data = readFileSync(file)
  return data.length - (data.lastIndexOf(0x0a) + 1)
}

/**
 * Watches the end of the file in a tight loop and sends SIGKILL the moment it does not end in
 * a newline: a write is then in progress (the kernel grows the file page by page), so the kill
 * most often lands mid-write. After `deadlineMs` it kills anyway.
 */
function killWhileUnterminated (child: Child, file: string, deadlineMs: number): void {
  const fd = openSync(file, 'r')
  const last = Buffer.alloc(1)
  const deadline = Date.now() + deadlineMs
  try {
    while (Date.now() < deadline) {
      const size = fstatSync(fd).size
      if (size > 0 && readSync(fd, last, 0, 1, size - 1) === 1 && last[0] !== 0x0a) break
    }
  } finally {
    child.proc.kill('SIGKILL')
    closeSync(fd)
  }
}

const COMPLETE = '{"pid":1,"seq":0}\n{"pid":1,"seq":1}\n'

describe.each([
  ['after complete lines', COMPLETE, '{"pid":1,"seq":2,"pa'],
  ['with no newline at all', '', '{"pid":1,"se']
])('a log file ending in a torn line (%s)', (_what, complete, torn) => {
  it('is cut back to its last complete line at start; the fragment goes to <file>.torn; recovered is reported', async () => {
    const dir = tempDir()
    const file = `${dir}/app.log`
    writeFileSync(file, complete + torn)
    const writer = await startWriterChild(dir)
    await waitFor(() => stderrEvents(writer.child, 'recovered').length === 1, 5000, () => writer.child.describe())

    expect(stderrEvents(writer.child, 'recovered')).toEqual([
      { event: 'recovered', file, tornBytes: Buffer.byteLength(torn), movedTo: `${file}.torn` }
    ])
    expect(readFileSync(file, 'utf8')).toBe(complete)
    expect(readFileSync(`${file}.torn`, 'utf8')).toBe(`${torn}\n`)
    await runProducers(1, { endpoint: writer.endpoint, records: 100 })
    await writer.stop({ spoolTaken: true })
    const report = await verifyFile(file)
    expect(report).toMatchObject({ lines: complete.split('\n').length - 1 + 100, torn: 0, duplicates: 0, reordered: 0 })
  })
})

describe('kill -9 of the writer while it writes 900 KiB records', () => {
  it('the next writer leaves no torn line in the file', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir, ['--fsync', 'off'])
    const producers = Array.from({ length: 3 }, () => spawnProducer({
      endpoint: writer.endpoint, records: 1000, sizes: [900 * 1024], producer: { closeTimeoutMs: 1000 }
    }))
    const size = (): number => existsSync(writer.file) ? statSync(writer.file).size : 0
    await waitFor(() => size() > 10 * 1024 * 1024, 60_000, () => `log file has ${size()} bytes`)
    killWhileUnterminated(writer.child, writer.file, 10_000)
    await exitCode(writer.child)
    for (const p of producers) p.proc.kill('SIGKILL')
    await Promise.all(producers.map(async (p) => await exitCode(p)))

    const tornByKill = tornTail(writer.file)
    console.log(`kill -9 landed ${tornByKill > 0 ? `mid-write: ${tornByKill} bytes torn` : 'between writes'}`)
    // When the kill fell between writes, tear the last line by hand: recovery must run either way.
    if (tornByKill === 0) appendFileSync(writer.file, '{"pid":1,"seq":0,"payload":"xxxx')
    const torn = tornTail(writer.file)

    const next = await startWriterChild(dir)
    await waitFor(() => stderrEvents(next.child, 'recovered').length === 1, 5000, () => next.child.describe())
    expect(stderrEvents(next.child, 'recovered')[0]).toMatchObject({ tornBytes: torn })
    expect(tornTail(next.file)).toBe(0)
    await runProducers(1, { endpoint: next.endpoint, records: 100 })
    await next.stop()
    const report = await verifyFile(next.file)
    expect(report, JSON.stringify(report)).toMatchObject({ torn: 0, gaps: 0, duplicates: 0, reordered: 0 })
  })
})

describe('kill -9 of producers while they log', () => {
  it('never leaves a partial line: a message is written whole or not at all', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const producers = Array.from({ length: 4 }, () => spawnProducer({
      endpoint: writer.endpoint, records: 1_000_000, sizes: [100, 5000, 40_000], announceAfter: 200
    }))
    await Promise.all(producers.map(async (p) => await p.waitForLine((l) => l.event === 'logging', 60_000)))
    const size = (): number => statSync(writer.file).size
    await waitFor(() => size() > 8 * 1024 * 1024, 60_000, () => `log file has ${size()} bytes`)
    for (const p of producers) p.proc.kill('SIGKILL')
    await Promise.all(producers.map(async (p) => await exitCode(p)))
    await runProducers(1, { endpoint: writer.endpoint, records: 1000 })
    const summary = await writer.stop()

    const report = await verifyFile(writer.file)
    expect(report).toMatchObject({ lines: summary.records, torn: 0, gaps: 0, duplicates: 0, reordered: 0 })
    // The clean producer, and killed ones that had reached the file (under load not all may have).
    expect(report.producers).toBeGreaterThanOrEqual(2)
  })
})
