import { chmodSync, lchownSync, lstatSync, readdirSync, readFileSync, realpathSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { stderrEvents, tempDir, waitFor, type Child } from './helpers/children.js'
import { runProducers } from './helpers/cluster.js'
import { expectWriterRefusal, startWriterWith } from './helpers/writer-cli.js'

const IS_ROOT = process.getuid?.() === 0
const NOBODY = 65534
const VICTIM = 'victim line 1\nvictim line 2 without newline'

/** The writer's `recovered` line (stderr may arrive after the ready line on stdout). */
async function recoveredLine (child: Child): Promise<any> {
  await waitFor(() => stderrEvents(child, 'recovered').length === 1, 10_000, () => child.stderr())
  return stderrEvents(child, 'recovered')[0]
}

function setup (): { dir: string, log: string, victim: string, endpoint: string } {
  const dir = tempDir()
  const victim = join(dir, 'victim.txt')
  writeFileSync(victim, VICTIM)
  return { dir, log: join(dir, 'app.log'), victim, endpoint: `ipc://${join(dir, 'run', 'w.sock')}` }
}

describe('files beside the log are never written through planted symlinks (issue 13, point 3)', () => {
  it('a <file>.torn symlink: the torn tail goes to a fresh file with the log\'s mode; the target is untouched', async () => {
    const { log, victim, endpoint } = setup()
    writeFileSync(log, '{"a":1}\n{"torn', { mode: 0o600 })
    chmodSync(log, 0o600)
    symlinkSync(victim, `${log}.torn`)
    const writer = await startWriterWith(['--file', log, '--endpoint', endpoint])
    const recovered = await recoveredLine(writer.child)
    await writer.stop()
    expect(readFileSync(victim, 'utf8')).toBe(VICTIM)
    expect(lstatSync(`${log}.torn`).isSymbolicLink()).toBe(true)
    expect(recovered.movedTo).toMatch(/app\.log\.torn\.[0-9a-f]{12}$/)
    expect(readFileSync(recovered.movedTo, 'utf8')).toBe('{"torn\n')
    expect(statSync(recovered.movedTo).mode & 0o777).toBe(0o600)
    expect(readFileSync(log, 'utf8')).toBe('{"a":1}\n')
  })

  it('a <state>.tmp symlink, and the state file itself a symlink: the state is saved beside them, the target is untouched', async () => {
    const { dir, log, victim, endpoint } = setup()
    const state = join(dir, 'state.json')
    symlinkSync(victim, `${state}.tmp`)
    const writer = await startWriterWith(['--file', log, '--endpoint', endpoint, '--state-file', state])
    await runProducers(1, { endpoint, records: 100 })
    expect(await writer.stop()).toMatchObject({ records: 100, producers: 1 })
    expect(readFileSync(victim, 'utf8')).toBe(VICTIM)
    expect(Object.keys(JSON.parse(readFileSync(state, 'utf8')).producers)).toHaveLength(1)
    expect(statSync(state).mode & 0o777 & ~(statSync(log).mode & 0o777)).toBe(0)

    // Now the state file itself points at the victim: the save replaces the link, not the victim.
    writeFileSync(victim, VICTIM)
    symlinkSync(victim, join(dir, 'state2.json'))
    const second = await startWriterWith(['--file', log, '--endpoint', endpoint, '--state-file', join(dir, 'state2.json')])
    await runProducers(1, { endpoint, records: 10 })
    await second.stop()
    expect(readFileSync(victim, 'utf8')).toBe(VICTIM)
    expect(lstatSync(join(dir, 'state2.json')).isFile()).toBe(true)
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual(['state.json.tmp'])
  })

  it.runIf(IS_ROOT)('the log path a symlink of another user (uid 65534): the writer refuses to start (LOGFUNNEL_ERR_FILE) and leaves the target as it was', async () => {
    const { log, victim, endpoint } = setup()
    symlinkSync(victim, log)
    lchownSync(log, NOBODY, NOBODY)
    await expectWriterRefusal(['--file', log, '--endpoint', endpoint], 1, 'LOGFUNNEL_ERR_FILE')
    expect(readFileSync(victim, 'utf8')).toBe(VICTIM)
  })

  it('the log path a symlink of the writer\'s own user: followed, and recovery names the file it truncated', async () => {
    const { log, victim, endpoint } = setup()
    symlinkSync(victim, log)
    const writer = await startWriterWith(['--file', log, '--endpoint', endpoint])
    const recovered = await recoveredLine(writer.child)
    await writer.stop()
    expect(recovered).toMatchObject({ file: log, target: realpathSync(victim), tornBytes: 'victim line 2 without newline'.length })
    expect(readFileSync(victim, 'utf8')).toBe('victim line 1\n')
  })
}, 60_000)
