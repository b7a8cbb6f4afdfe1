import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyCheckpoints } from '../shared/verify-checkpoints.js'
import { FileSink } from '../writer/sink/file-sink.js'
import { BIN, exitCode, once, spawnNode, tempDir } from './helpers/children.js'

const LINE = (i: number): Buffer => Buffer.from(`${JSON.stringify({ level: 30, time: 1_700_000_000_000 + i, pid: 7, seq: i, msg: 'x'.repeat(200) })}\n`)

/** 50 size rotations (gzip) over two sink lifetimes: a writer restart in between. */
async function writeSet (dir: string): Promise<string[]> {
  const file = join(dir, 'app.log')
  let i = 0
  for (const batches of [30, 30]) {
    const sink = new FileSink(file, { rotateSizeBytes: 1024, rotateGzip: true, checkpoints: true, fsync: 'off' })
    sink.on('error', () => {})
    await sink.ready()
    for (let b = 0; b < batches; b++) sink.append(Buffer.concat([LINE(i++), LINE(i++)]))
    await sink.end()
  }
  return readdirSync(dir).filter((n) => n.startsWith('app.log')).map((n) => join(dir, n))
}

async function cli (args: string[]): Promise<{ code: number | string, report: any }> {
  const child = spawnNode([BIN, 'verify', '--checkpoints', '--json', ...args])
  const closed = once(child.proc, 'close')
  const code = await exitCode(child)
  await closed
  return { code, report: JSON.parse(child.stdout()) }
}

describe('checkpoints', () => {
  it('a rotated, gzipped set written over a restart verifies; each tampering is found and located', async () => {
    const dir = tempDir()
    try {
      const files = await writeSet(dir)
      expect(files.filter((f) => f.endsWith('.gz')).length).toBeGreaterThanOrEqual(50)
      const clean = await cli([...files].reverse())
      expect(clean.code).toBe(0)
      // The restart continued the chain (no chain-start defect).
      expect(clean.report.defects.map((d: any) => d.kind)).toEqual([])

      const plain = files.find((f) => f.endsWith('app.log')) as string
      const text = readFileSync(plain, 'utf8')
      const lines = text.split('\n')
      const dataLine = lines.findIndex((l) => l.includes('"seq"'))
      writeFileSync(plain, lines.map((l, k) => k === dataLine ? l.replace('xxxx', 'xxxy') : l).join('\n'))
      const edited = await verifyCheckpoints(files)
      expect(edited.defects).toMatchObject([{ kind: 'hash-mismatch', file: plain }])

      writeFileSync(plain, lines.filter((_, k) => k !== dataLine).join('\n'))
      expect((await verifyCheckpoints(files)).defects).toMatchObject([{ kind: 'hash-mismatch', file: plain }])
      writeFileSync(plain, text)

      const gone = files.filter((f) => f.endsWith('.gz'))[10] as string
      const rest = files.filter((f) => f !== gone)
      const holed = await cli(rest)
      expect(holed.code).toBe(1)
      expect(holed.report.defects).toMatchObject([{ kind: 'chain-hole' }])

      const doubled = await verifyCheckpoints([...files, gone])
      expect(doubled.defects.some((d) => d.kind === 'doubled')).toBe(true)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
