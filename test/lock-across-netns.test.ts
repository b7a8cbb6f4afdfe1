import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { BIN, exitCode, spawnCommand, tempDir } from './helpers/children.js'
import { runProducers, startWriterChild } from './helpers/cluster.js'

/**
 * Two writers in two network namespaces (two containers sharing a log volume, a deploy scaled to
 * two replicas): the abstract-namespace lock is per network namespace, so before, the second one
 * started, and both appended to the file, saved its state file and rotated it under each other.
 * Now the socket file beside what is locked refuses it.
 */

/** Whether this machine lets the test make a network namespace (root with CAP_SYS_ADMIN); else why not. */
function probeUnshare (): string | undefined {
  const run = spawnSync('unshare', ['--net', 'true'], { encoding: 'utf8' })
  return run.status === 0 ? undefined : `cannot unshare a network namespace here: ${(run.stderr ?? String(run.error)).trim()}`
}

const cannotUnshare = probeUnshare()
if (cannotUnshare !== undefined) console.log(`skipping the network namespace tests: ${cannotUnshare}`)

/** `logfunnel writer <args>` in a network namespace of its own. */
function writerInOwnNetns (args: string[]): ReturnType<typeof spawnCommand> {
  return spawnCommand('unshare', ['--net', process.execPath, BIN, 'writer', ...args])
}

describe.skipIf(cannotUnshare !== undefined)('a second writer in another network namespace', () => {
  it('on the same file (another endpoint) exits 1 with LOGFUNNEL_ERR_FILE_IN_USE; the first keeps writing, every record once', async () => {
    const dir = tempDir()
    const first = await startWriterChild(dir)
    const second = writerInOwnNetns(['--file', first.file, '--endpoint', `ipc://${join(dir, 'other.sock')}`])
    expect(await exitCode(second, 20_000), second.describe()).toBe(1)
    expect(second.stderr()).toMatch(/^logfunnel: LOGFUNNEL_ERR_FILE_IN_USE: .*app\.log is already written by another writer/)
    expect(second.stdout()).toBe('')

    await runProducers(2, { endpoint: first.endpoint, records: 2000 })
    expect(await first.stop({ spoolTaken: true })).toMatchObject({ records: 4000, fileErrors: 0 })
    expect(await verifyFile(first.file)).toMatchObject({ lines: 4000, producers: 2, torn: 0, duplicates: 0, ok: true })
    expect(existsSync(join(dir, '.app.log.logfunnel-lock'))).toBe(false)
  })

  it('on the same ipc endpoint exits 1 with LOGFUNNEL_ERR_ENDPOINT_IN_USE and leaves the first one\'s sockets', async () => {
    const dir = tempDir()
    const first = await startWriterChild(dir)
    const second = writerInOwnNetns(['--file', join(dir, 'b.log'), '--endpoint', first.endpoint])
    expect(await exitCode(second, 20_000), second.describe()).toBe(1)
    expect(second.stderr()).toMatch(/^logfunnel: LOGFUNNEL_ERR_ENDPOINT_IN_USE: /)

    const [done] = await runProducers(1, { endpoint: first.endpoint, records: 1000, producer: { spoolDir: join(dir, 'spool') } })
    expect(done.stats).toMatchObject({ records: 1000, spooledRecords: 0, abandoned: 0 })
    expect(await first.stop()).toMatchObject({ records: 1000 })
  })

  it('starts once the first one was killed (SIGKILL leaves its lock files; they are replaced)', async () => {
    const dir = tempDir()
    const first = await startWriterChild(dir)
    first.child.proc.kill('SIGKILL')
    await exitCode(first.child)
    expect(existsSync(join(dir, '.app.log.logfunnel-lock'))).toBe(true)
    const next = writerInOwnNetns(['--file', first.file, '--endpoint', first.endpoint])
    await next.waitForLine((l) => l.event === 'ready', 20_000)
    next.proc.kill('SIGTERM')
    expect(await exitCode(next, 20_000), next.describe()).toBe(0)
    expect(existsSync(join(dir, '.app.log.logfunnel-lock'))).toBe(false)
  })
}, 60_000)
