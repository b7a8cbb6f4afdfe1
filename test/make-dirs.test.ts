import { statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { exitCode, fixture, spawnNode, tempDir } from './helpers/children.js'

const PROCESSES = 6
const DIRS = 300

// A pool whose processes start at once on a log directory that does not exist yet: each
// creates the same missing parents. One that made a parent and then found the directory itself
// made by another process in between threw EEXIST (LOGFUNNEL_ERR_LOCK_FILE from flockDestination).
describe.each(['sync', 'async'])('makeDirs (%s)', (kind) => {
  it(`${PROCESSES} processes create the same ${DIRS} nested directories at once: no error, every directory there`, async () => {
    const root = tempDir()
    const children = Array.from({ length: PROCESSES }, () =>
      spawnNode([fixture('make-dirs-race'), root, String(DIRS), kind], { stdio: ['pipe', 'pipe', 'pipe'] }))
    await Promise.all(children.map(async (child) => await child.waitForLine((l) => l.event === 'ready')))
    for (const child of children) child.proc.stdin?.write('go\n')
    const done = await Promise.all(children.map(async (child) => await child.waitForLine((l) => l.event === 'done', 60_000)))
    for (const child of children) expect(await exitCode(child), child.describe()).toBe(0)
    expect(done.map((d) => d.errors)).toEqual(Array.from({ length: PROCESSES }, () => []))
    for (let i = 0; i < DIRS; i++) expect(statSync(join(root, `t${i}`, 'a', 'b', 'c')).isDirectory()).toBe(true)
  })
})
