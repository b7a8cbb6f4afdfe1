import { chmodSync, chownSync, lchownSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import * as zmq from 'zeromq'
import { exitCode, fixture, spawnNode, tempDir } from './helpers/children.js'
import { expectWriterRefusal } from './helpers/writer-cli.js'

const IS_ROOT = process.getuid?.() === 0
/** nobody / nogroup: the other user who squats the directory. */
const NOBODY = 65534
const RECORDS = 20
const FAST = { connectTimeoutMs: 300, closeTimeoutMs: 300 }

/** Ways another user (or anyone) controls the directory of a producer's socket. */
const SQUATS: Array<[string, (dir: string) => string, boolean]> = [
  ['the default <tmp>/logfunnel-<uid>/ made by another user (uid 65534, 0755)', (dir) => {
    const sockDir = join(dir, `logfunnel-${process.getuid?.() ?? 0}`)
    mkdirSync(sockDir, { mode: 0o755 })
    chownSync(sockDir, NOBODY, NOBODY)
    return sockDir
  }, true],
  ['a symlink of another user (uid 65534) to a directory', (dir) => {
    mkdirSync(join(dir, 'real'), { mode: 0o700 })
    symlinkSync(join(dir, 'real'), join(dir, 'link'))
    lchownSync(join(dir, 'link'), NOBODY, NOBODY)
    return join(dir, 'link')
  }, true],
  ['a directory writable by others (0777)', (dir) => {
    mkdirSync(join(dir, 'open'))
    chmodSync(join(dir, 'open'), 0o777)
    return join(dir, 'open')
  }, false]
]

describe('producers refuse a socket directory others control (issue 13, point 4)', () => {
  for (const [what, squat, needsRoot] of SQUATS) {
    it.runIf(!needsRoot || IS_ROOT)(`${what}: LOGFUNNEL_ERR_UNSAFE_ENDPOINT, nothing reaches the squatter's socket, nothing is spooled there, the records are kept`, async () => {
      const dir = tempDir()
      const sockDir = squat(dir)
      const endpoint = `ipc://${join(sockDir, 'writer.sock')}`
      // The squatter's socket, where the producer's lines would go.
      const squatter = new zmq.Pull({ receiveTimeout: 500 })
      try {
        await squatter.bind(endpoint)
        const child = spawnNode([fixture('producer-unreachable'), JSON.stringify({ endpoint, records: RECORDS, mode: 'funnel', awaitReport: true, producer: FAST })],
          { env: { ...process.env, TMPDIR: dir } })
        const done = await child.waitForLine((l) => l.event === 'done')
        expect(await exitCode(child), child.describe()).toBe(0)
        const reports = child.stdout().split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((l) => l.event === 'unreachable')
        expect(reports.map((r) => r.code)).toEqual(['LOGFUNNEL_ERR_UNSAFE_ENDPOINT'])
        expect(done.closeError).toBe('LOGFUNNEL_ERR_CLOSE_TIMEOUT')
        expect(done.stats).toMatchObject({ records: RECORDS, receipted: -1, spooled: 0 })
        // Anything the producer had sent would be queued here by now; wait at most receiveTimeout.
        await expect(squatter.receive()).rejects.toMatchObject({ code: 'EAGAIN' })
        expect(readdirSync(sockDir)).toEqual(['writer.sock'])
      } finally {
        squatter.close()
      }
    })
  }

  it.runIf(IS_ROOT)('the writer refuses a socket directory that is a symlink of another user (uid 65534)', async () => {
    const dir = tempDir()
    mkdirSync(join(dir, 'real'), { mode: 0o700 })
    symlinkSync(join(dir, 'real'), join(dir, 'link'))
    lchownSync(join(dir, 'link'), NOBODY, NOBODY)
    await expectWriterRefusal(['--file', join(dir, 'app.log'), '--endpoint', `ipc://${join(dir, 'link', 'w.sock')}`], 1, 'LOGFUNNEL_ERR_UNSAFE_ENDPOINT')
    expect(readdirSync(join(dir, 'real'))).toEqual([])
  })
}, 60_000)
