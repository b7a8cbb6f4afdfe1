import { spawnSync } from 'node:child_process'
import { chmodSync, chownSync, closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync, ftruncateSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BIN, canRunFixturesAs, exitCode, lineCount, spawnNode, stderrEvents, tempDir, waitFor } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'
import { craftSpool, writeSpool } from './helpers/spool-files.js'

/** This process's start time as a spool preamble records it (field 22 of /proc/<pid>/stat). */
const startTime = (): string => (readFileSync('/proc/self/stat', 'utf8').split(') ')[1] as string).split(' ')[19] as string
const NOBODY = 65534
/** A writer of another user needs a checkout that user can read. */
const AS_NOBODY = process.getuid?.() === 0 && canRunFixturesAs(NOBODY)
const id = (digit: string): Buffer => Buffer.from(digit.repeat(32), 'hex')
const spoolName = (digit: string, suffix = '.spool'): string => `${digit.repeat(32)}-1-0000000000${suffix}`

describe('one bad spool entry does not stop the others (issue 13, point 2)', () => {
  it('a FIFO, a symlink, a directory, a 200 MiB file and a bad preamble are set aside once; junk is moved to .torn (no wider than the log); the good files behind them are ingested and the writer stops', async () => {
    const dir = tempDir()
    const spoolDir = join(dir, 'w.sock.spool')
    mkdirSync(spoolDir, { mode: 0o700 })
    const log = join(dir, 'app.log')
    writeFileSync(log, '', { mode: 0o640 })
    chmodSync(log, 0o640)

    writeFileSync(join(spoolDir, spoolName('0')), 'x'.repeat(1000))
    chmodSync(join(spoolDir, spoolName('0')), 0o000)
    expect(spawnSync('mkfifo', [join(spoolDir, spoolName('1'))]).status).toBe(0)
    symlinkSync('/etc/passwd', join(spoolDir, spoolName('2')))
    mkdirSync(join(spoolDir, spoolName('3')))
    const huge = openSync(join(spoolDir, spoolName('4')), 'w', 0o600)
    ftruncateSync(huge, 200 * 1024 * 1024)
    closeSync(huge)
    writeFileSync(join(spoolDir, spoolName('5')), Buffer.concat([Buffer.from([0x4c, 0x46, 0x53, 0x01, 0, 0, 0, 10]), Buffer.from('notjson!!!')]))
    // Files without a preamble (as older producers wrote them) are ingested too.
    writeSpool(spoolDir, { records: 100, producerId: id('e'), tag: 'good' })

    const writer = await startWriterChild(dir, ['--spool-poll-ms', '50', '--spool-dir', spoolDir])
    await waitFor(() => lineCount(log) >= 100, 20_000, () => `${lineCount(log)} lines; stderr: ${writer.child.stderr()}`)
    // A second good file, ingested by a later scan: the set-aside entries are not reported again.
    writeSpool(spoolDir, { records: 20, producerId: id('f'), tag: 'later' })
    await waitFor(() => lineCount(log) >= 120, 20_000, () => `${lineCount(log)} lines`)
    const started = Date.now()
    const summary = await writer.stop()
    expect(Date.now() - started).toBeLessThan(10_000)

    expect(summary.records).toBe(120)
    expect(summary.spool).toEqual({ files: 3, entries: 12, torn: 1, rejected: 5, foreign: 0, leftAtStop: 0 })
    const rejected = stderrEvents(writer.child, 'spool-rejected')
    expect(rejected.map((e) => e.file).sort()).toEqual(['1', '2', '3', '4', '5'].map((d) => join(spoolDir, spoolName(d))))
    for (const d of ['1', '2', '3', '4', '5']) expect(existsSync(join(spoolDir, spoolName(d, '.spool.rejected')))).toBe(true)
    expect(lstatSync(join(spoolDir, spoolName('2', '.spool.rejected'))).isSymbolicLink()).toBe(true)
    expect(lstatSync(join(spoolDir, spoolName('1', '.spool.rejected'))).isFIFO()).toBe(true)
    expect(stderrEvents(writer.child, 'spool-torn')).toHaveLength(1)
    const torn = join(spoolDir, spoolName('0', '.spool.torn'))
    expect(readFileSync(torn, 'utf8')).toBe('x'.repeat(1000))
    expect(statSync(torn).mode & 0o777 & ~0o640).toBe(0)
    expect(readdirSync(spoolDir).filter((n) => n.endsWith('.spool'))).toEqual([])
    expect(readFileSync(log, 'utf8')).not.toContain('root:')
  })

  it.runIf(AS_NOBODY)('a writer of another user (uid 65534): a spool file it may not read (mode 0000, EACCES) is set aside; the good one behind it is ingested', async () => {
    const dir = tempDir()
    chownSync(dir, NOBODY, NOBODY)
    const spoolDir = join(dir, 'w.sock.spool')
    mkdirSync(spoolDir, { mode: 0o700 })
    writeFileSync(join(spoolDir, spoolName('0')), 'x'.repeat(100), { mode: 0o000 })
    writeSpool(spoolDir, { records: 30, producerId: id('e') })
    for (const name of readdirSync(spoolDir)) chownSync(join(spoolDir, name), NOBODY, NOBODY)
    chownSync(spoolDir, NOBODY, NOBODY)
    const log = join(dir, 'app.log')
    const child = spawnNode([BIN, 'writer', '--file', log, '--endpoint', `ipc://${join(dir, 'w.sock')}`, '--spool-poll-ms', '50'], { uid: NOBODY, gid: NOBODY })
    await child.waitForLine((l) => l.event === 'ready')
    await waitFor(() => lineCount(log) >= 30, 20_000, () => `${lineCount(log)} lines; stderr: ${child.stderr()}`)
    const stopped = child.waitForLine((l) => l.event === 'stopped')
    child.proc.kill('SIGTERM')
    expect((await stopped).spool).toEqual({ files: 1, entries: 3, torn: 0, rejected: 1, foreign: 0, leftAtStop: 0 })
    expect(await exitCode(child), child.describe()).toBe(0)
    expect(stderrEvents(child, 'spool-rejected')).toMatchObject([{ file: join(spoolDir, spoolName('0')), reason: 'cannot open: EACCES' }])
  })

  it('a .spool.tmp whose pid now belongs to another process (start time differs) is ingested; a live producer\'s old one is written, kept and reported once as stale', async () => {
    const dir = tempDir()
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    const spoolDir = join(dir, 'w.sock.spool')
    mkdirSync(spoolDir, { mode: 0o700 })
    // This test process plays the unrelated process that reused the pid.
    writeSpool(spoolDir, { endpoint, records: 10, producerId: id('a'), pid: process.pid, start: '1', tmp: true })
    const live = writeSpool(spoolDir, { endpoint, records: 10, producerId: id('b'), pid: process.pid, start: startTime(), tmp: true })
    const twoHoursAgo = (Date.now() - 2 * 3600 * 1000) / 1000
    utimesSync(join(spoolDir, live), twoHoursAgo, twoHoursAgo)

    const writer = await startWriterChild(dir, ['--spool-poll-ms', '50'])
    await waitFor(() => lineCount(writer.file) >= 20 && stderrEvents(writer.child, 'spool-stale').length > 0, 20_000,
      () => `${lineCount(writer.file)} lines; stderr: ${writer.child.stderr()}`)
    // Another file ingested by a later scan: the stale one is not reported twice.
    writeSpool(spoolDir, { endpoint, records: 5, producerId: id('c') })
    await waitFor(() => lineCount(writer.file) >= 25, 20_000, () => `${lineCount(writer.file)} lines`)
    const summary = await writer.stop()
    expect(summary.records).toBe(25)
    expect(stderrEvents(writer.child, 'spool-stale')).toMatchObject([{ file: join(spoolDir, live), pid: process.pid }])
    expect(readdirSync(spoolDir)).toEqual([live])
  })

  it('a file whose last entry is cut short (a producer killed while spooling): its whole entries are written, the exact tail goes to .torn, reported as spool-torn (reason truncated)', async () => {
    const dir = tempDir()
    const spoolDir = join(dir, 'w.sock.spool')
    mkdirSync(spoolDir, { mode: 0o700 })
    // 3 whole entries of 10 records, then the first 100 bytes of a fourth.
    const whole = craftSpool({ endpoint: `ipc://${join(dir, 'w.sock')}`, records: 30, producerId: id('d') })
    const torn = craftSpool({ records: 10, producerId: id('d') }).bytes.subarray(0, 100)
    writeFileSync(join(spoolDir, whole.name(0)), Buffer.concat([whole.bytes, torn]), { mode: 0o600 })
    const writer = await startWriterChild(dir, ['--spool-poll-ms', '50'])
    await waitFor(() => !existsSync(join(spoolDir, whole.name(0))), 20_000, () => `stderr: ${writer.child.stderr()}`)
    const summary = await writer.stop()
    expect(summary).toMatchObject({ records: 30, spool: { files: 1, entries: 3, torn: 1, rejected: 0, foreign: 0 } })
    expect(stderrEvents(writer.child, 'spool-torn')).toEqual([{ event: 'spool-torn', file: join(spoolDir, whole.name(0)), tornBytes: 100, reason: 'truncated', movedTo: join(spoolDir, `${whole.name(0)}.torn`) }])
    expect(readFileSync(join(spoolDir, `${whole.name(0)}.torn`)).equals(torn)).toBe(true)
    expect(readFileSync(writer.file, 'utf8').split('\n').slice(0, -1).map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual(Array.from({ length: 30 }, (_, i) => i))
  })
}, 60_000)
