import { chmodSync, chownSync, existsSync, mkdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { canRunFixturesAs, fixture, exitCode, spawnNode, tempDir } from './helpers/children.js'
import { runProducers } from './helpers/cluster.js'
import { expectWriterRefusal, startWriterWith } from './helpers/writer-cli.js'

const IS_ROOT = process.getuid?.() === 0
/** nobody / nogroup: "another user" for the tests that need one (they run as root). */
const NOBODY = 65534
/** Running a producer as NOBODY needs a checkout it can read. */
const AS_NOBODY = IS_ROOT && canRunFixturesAs(NOBODY)

const modeOf = (path: string): number => statSync(path).mode & 0o7777

/** A writer whose sockets live in `<tempDir>/<sub>` (created by the writer unless the test made it). */
function paths (dir: string, sub = 'run'): { sockDir: string, endpoint: string, file: string } {
  const sockDir = join(dir, sub)
  return { sockDir, endpoint: `ipc://${join(sockDir, 'w.sock')}`, file: join(dir, 'app.log') }
}

describe('ipc socket directory and file modes', () => {
  it('creates the socket directory 0700 and both socket files 0600; a producer of the same user writes', async () => {
    const { sockDir, endpoint, file } = paths(tempDir())
    const writer = await startWriterWith(['--file', file, '--endpoint', endpoint])
    expect(modeOf(sockDir)).toBe(0o700)
    for (const sock of ['w.sock', 'w.sock.receipts']) {
      expect(statSync(join(sockDir, sock)).isSocket()).toBe(true)
      expect(modeOf(join(sockDir, sock))).toBe(0o600)
    }
    await runProducers(1, { endpoint, records: 500 })
    expect(await writer.stop({ spoolTaken: true })).toMatchObject({ records: 500, rejected: {}, denied: 0 })
  })

  it('--socket-mode 0660 gives the socket files 0660 and a directory it creates 0710 (search for the group)', async () => {
    const { sockDir, endpoint, file } = paths(tempDir())
    const writer = await startWriterWith(['--file', file, '--endpoint', endpoint, '--socket-mode', '0660'])
    expect(modeOf(sockDir)).toBe(0o710)
    expect(modeOf(join(sockDir, 'w.sock'))).toBe(0o660)
    expect(modeOf(join(sockDir, 'w.sock.receipts'))).toBe(0o660)
    await writer.stop()
  })

  it('accepts a group-writable directory when --socket-mode 0660 trusts the group', async () => {
    const { sockDir, endpoint, file } = paths(tempDir())
    mkdirSync(sockDir)
    chmodSync(sockDir, 0o770)
    const writer = await startWriterWith(['--file', file, '--endpoint', endpoint, '--socket-mode', '0660'])
    expect(modeOf(join(sockDir, 'w.sock'))).toBe(0o660)
    await writer.stop()
  })
}, 60_000)

describe('unsafe socket directories are refused with LOGFUNNEL_ERR_UNSAFE_ENDPOINT', () => {
  const cases: Array<[string, (sockDir: string) => void, string[], boolean]> = [
    ['a directory owned by another user (uid 65534)', (d) => { mkdirSync(d, { mode: 0o700 }); chownSync(d, NOBODY, NOBODY) }, [], true],
    ['a directory writable by others (0777)', (d) => { mkdirSync(d); chmodSync(d, 0o777) }, [], false],
    ['a directory writable by others (0777), even with --socket-mode 0660', (d) => { mkdirSync(d); chmodSync(d, 0o777) }, ['--socket-mode', '0660'], false],
    ['a world-writable sticky directory like /tmp (1777)', (d) => { mkdirSync(d); chmodSync(d, 0o1777) }, [], false],
    ['a directory writable by its group (0770) with the default socket mode', (d) => { mkdirSync(d); chmodSync(d, 0o770) }, [], false]
  ]
  for (const [what, prepare, extra, needsRoot] of cases) {
    it.runIf(!needsRoot || IS_ROOT)(`${what}: exits 1 and binds nothing`, async () => {
      const { sockDir, endpoint, file } = paths(tempDir())
      prepare(sockDir)
      await expectWriterRefusal(['--file', file, '--endpoint', endpoint, ...extra], 1, 'LOGFUNNEL_ERR_UNSAFE_ENDPOINT')
      expect(existsSync(join(sockDir, 'w.sock'))).toBe(false)
      expect(existsSync(join(sockDir, 'w.sock.lock'))).toBe(false)
    })
  }

  it('a socket mode with bits for others (0666) is an invalid option', async () => {
    const { endpoint, file } = paths(tempDir())
    await expectWriterRefusal(['--file', file, '--endpoint', endpoint, '--socket-mode', '0666'], 1, 'LOGFUNNEL_ERR_INVALID_OPTION')
  })

  it('a socket mode that is not octal is a usage error', async () => {
    const { endpoint, file } = paths(tempDir())
    await expectWriterRefusal(['--file', file, '--endpoint', endpoint, '--socket-mode', '0689'], 2, 'LOGFUNNEL_ERR_USAGE')
  })
}, 60_000)

describe.runIf(AS_NOBODY)('sharing the socket with a group (--socket-mode 0660)', () => {
  it('a producer of another user in the socket group writes every record', async () => {
    const dir = tempDir()
    chmodSync(dir, 0o711)
    const { sockDir, endpoint, file } = paths(dir, 'shared')
    mkdirSync(sockDir)
    chownSync(sockDir, 0, NOBODY)
    // setgid: the sockets the writer creates take the directory's group, the producer's group.
    chmodSync(sockDir, 0o2710)
    const writer = await startWriterWith(['--file', file, '--endpoint', endpoint, '--socket-mode', '0660'])
    expect(statSync(join(sockDir, 'w.sock')).gid).toBe(NOBODY)

    const producer = spawnNode([fixture('producer-logs'), JSON.stringify({ endpoint, records: 300 })], { uid: NOBODY, gid: NOBODY })
    const done = await producer.waitForLine((l) => l.event === 'done')
    expect(await exitCode(producer), producer.describe()).toBe(0)
    expect(done.stats).toMatchObject({ records: 300, heldBytes: 0 })
    expect(await writer.stop({ spoolTaken: true })).toMatchObject({ records: 300, producers: 1 })
  })
}, 60_000)
