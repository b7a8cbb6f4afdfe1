import { afterEach, describe, expect, it } from 'vitest'
import { cleanUpChildren, exitCode, fixture, spawnCommand, tempDir } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'
import { verifyFile } from '../shared/verify.js'

afterEach(cleanUpChildren)

describe('a process under a file size limit (RLIMIT_FSIZE) that logs through funnel()', () => {
  it('a write of its own past the limit fails with EFBIG and the process lives on (before: SIGXFSZ ended it, status 153)', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const child = spawnCommand('prlimit', ['--fsize=20000', process.execPath, fixture('file-size-limit'), writer.endpoint, dir])
    expect(await exitCode(child, 60_000), child.describe()).toBe(0)
    expect(JSON.parse(child.stdout())).toEqual({ event: 'done', code: 'EFBIG' })
    await writer.stop()
    expect(await verifyFile(writer.file, { seqKey: 'seq', expect: 2 })).toMatchObject({ lines: 2, gaps: 0, duplicates: 0, ok: true })
  })
})
