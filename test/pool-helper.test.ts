import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { BIN, exitCode, fixture, spawnNode, tempDir } from './helpers/children.js'

describe('pool helpers', () => {
  it('a node:cluster primary with startWriter(): 3 workers x 5,000 records', async () => {
    const dir = tempDir()
    const primary = spawnNode([fixture('cluster-pool'), dir, '3', '5000'])
    const done = await primary.waitForLine((l) => l.event === 'done', 60_000)
    expect(await exitCode(primary), primary.describe()).toBe(0)
    expect(done.codes).toEqual([0, 0, 0])
    expect(done.summary).toMatchObject({ records: 15_000, producers: 3, rejected: {} })
    expect(await verifyFile(join(dir, 'app.log'))).toMatchObject({ lines: 15_000, producers: 3, ok: true })
  })

  it('logfunnel demo (npm start) forks a pool, verifies, and says where the log is', async () => {
    const dir = tempDir()
    const file = join(dir, 'demo.log')
    const demo = spawnNode([BIN, 'demo', '--workers', '2', '--records', '5000', '--file', file])
    expect(await exitCode(demo), demo.describe()).toBe(0)
    expect(demo.stdout()).toContain(`log file: ${file}`)
    expect(demo.stdout()).toContain('verify: ok: 10000 lines, 2 producers, 0 torn, 0 gaps, 0 duplicates, 0 reordered')
    expect(readFileSync(file, 'utf8').split('\n').length - 1).toBe(10_000)
  })
}, 90_000)
