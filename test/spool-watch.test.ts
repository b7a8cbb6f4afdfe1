import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { tempDir, waitFor } from './helpers/children.js'

/** Runs once, in the middle of SpoolWatch's next statSync of `armed.path`. */
let armed: { path: string, run: () => void } | undefined
/** The next fs.watch of this path throws this error, once (as inotify does with no watches left). */
let refuseWatch: { path: string, err: NodeJS.ErrnoException } | undefined

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>()
  const statSync = ((path: string, ...rest: unknown[]) => {
    if (armed !== undefined && String(path) === armed.path) {
      const { run } = armed
      armed = undefined
      run()
    }
    return (fs.statSync as (...args: unknown[]) => unknown)(path, ...rest)
  }) as typeof fs.statSync
  const watch = ((path: string, ...rest: unknown[]) => {
    if (refuseWatch !== undefined && String(path) === refuseWatch.path) {
      const { err } = refuseWatch
      refuseWatch = undefined
      throw err
    }
    return (fs.watch as (...args: unknown[]) => unknown)(path, ...rest)
  }) as typeof fs.watch
  return { ...fs, default: { ...fs, statSync, watch }, statSync, watch }
})

// Test files share one worker (isolate: false): another file may have loaded spool-watch.js with
// the real node:fs already, so it is loaded anew here, with the mock above.
vi.resetModules()
const { SpoolWatch } = await import('../writer/spool-watch.js')

const SPOOL_NAME = `${'ab'.repeat(16)}-${process.pid}-0000000000.spool`

describe('SpoolWatch', () => {
  let watch: InstanceType<typeof SpoolWatch> | undefined
  afterEach(() => {
    watch?.close()
    armed = undefined
    refuseWatch = undefined
  })

  // The spool directory is looked for, is not there, and is made (by a producer) before its
  // parent is watched: the parent then sees no creation. Before, nothing watched the directory
  // and a segment renamed into it waited for the next poll (spoolPollMs, 10 s by default).
  it('a spool directory made between the look for it and the watch of its parent: a segment renamed into it is seen', async () => {
    const parent = tempDir()
    const dir = join(parent, 'w.sock.spool')
    let landed = 0
    watch = new SpoolWatch(dir, () => { landed++ })
    // The look for `dir` failed; the parent is looked at next, before its watch: make `dir` then.
    armed = { path: parent, run: () => mkdirSync(dir, { mode: 0o700 }) }
    watch.refresh()
    expect(armed, 'the parent was not looked at').toBe(undefined)
    writeFileSync(join(dir, `${SPOOL_NAME}.incoming`), 'x')
    renameSync(join(dir, `${SPOOL_NAME}.incoming`), join(dir, SPOOL_NAME))
    await waitFor(() => landed > 0, 2000, () => `landed ${landed} times`)
  })

  it('a spool directory removed and made again: a segment renamed into the new one is seen', async () => {
    const parent = tempDir()
    const dir = join(parent, 'w.sock.spool')
    mkdirSync(dir, { mode: 0o700 })
    let landed = 0
    watch = new SpoolWatch(dir, () => { landed++ })
    watch.refresh()
    rmSync(dir, { recursive: true })
    await waitFor(() => landed > 0, 2000, () => 'the removal was not seen')
    watch.refresh()
    mkdirSync(dir, { mode: 0o700 })
    await waitFor(() => landed > 1, 2000, () => 'the creation was not seen')
    watch.refresh()
    const before = landed
    writeFileSync(join(dir, `${SPOOL_NAME}.incoming`), 'x')
    renameSync(join(dir, `${SPOOL_NAME}.incoming`), join(dir, SPOOL_NAME))
    await waitFor(() => landed > before, 2000, () => `landed ${landed - before} times after the rename`)
  })

  // inotify refuses a watch while the user's watches are used up (ENOSPC) and grants it once
  // other programs let theirs go. Before, a directory that could not be watched once was never
  // tried again while it was the same directory: the writer took segments only at its polls.
  it('a watch refused once (no inotify watches left) is tried again at the next refresh: a segment renamed in is seen', async () => {
    const dir = join(tempDir(), 'w.sock.spool')
    mkdirSync(dir, { mode: 0o700 })
    let landed = 0
    watch = new SpoolWatch(dir, () => { landed++ })
    refuseWatch = { path: dir, err: Object.assign(new Error('ENOSPC: System limit for number of file watchers reached'), { code: 'ENOSPC' }) }
    watch.refresh()
    expect(refuseWatch, 'the directory was not watched').toBe(undefined)
    watch.refresh()
    writeFileSync(join(dir, `${SPOOL_NAME}.incoming`), 'x')
    renameSync(join(dir, `${SPOOL_NAME}.incoming`), join(dir, SPOOL_NAME))
    await waitFor(() => landed > 0, 2000, () => `landed ${landed} times`)
  })
})
