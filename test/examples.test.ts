import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BIN, exitCode, once, ROOT, spawnNode, spawnCommand, tempDir, type Child } from './helpers/children.js'

// The examples import 'logfunnel' as a user's code does: inside this package the name resolves
// to the package itself (package.json "exports", Node's self-reference), i.e. the built dist/.
const WORKERS = 3
const RECORDS = 5000

async function finished (child: Child): Promise<string> {
  const closed = once(child.proc, 'close')
  expect(await exitCode(child, 60_000), child.describe()).toBe(0)
  await closed
  return child.stdout()
}

/** `logfunnel verify --json ...`: the exit code and the report. */
async function verify (args: string[]): Promise<{ code: number | string, report: any }> {
  const child = spawnNode([BIN, 'verify', '--json', ...args])
  const closed = once(child.proc, 'close')
  const code = await exitCode(child)
  await closed
  return { code, report: JSON.parse(child.stdout()) }
}

const CLEAN = { lines: WORKERS * RECORDS, producers: WORKERS, torn: 0, gaps: 0, duplicates: 0, reordered: 0, timeBackwards: 0, missing: 0, extra: 0, ok: true }

describe('examples/ run as documented and their files pass verify', () => {
  for (const [name, key] of [['cluster', 'pid'], ['fork-pool', 'pid'], ['worker-threads', 'thread']] as const) {
    it(`${name}: ${WORKERS} x ${RECORDS} records, verify --key ${key} --expect ${RECORDS}`, async () => {
      const dir = tempDir()
      const app = spawnNode([join(ROOT, 'examples', name, 'app.js'), dir, String(WORKERS), String(RECORDS)], { cwd: dir })
      const done = JSON.parse((await finished(app)).trim().split('\n').at(-1)!)
      expect(done).toEqual({ event: 'done', file: join(dir, 'app.log'), codes: Array(WORKERS).fill(0), records: WORKERS * RECORDS })
      const { code, report } = await verify([join(dir, 'app.log'), '--key', key, '--expect', String(RECORDS)])
      expect(code, JSON.stringify(report)).toBe(0)
      expect(report).toMatchObject(CLEAN)
    })
  }

  it('worker-threads: with the default --key pid, verify sees one producer whose counter repeats', async () => {
    const dir = tempDir()
    await finished(spawnNode([join(ROOT, 'examples', 'worker-threads', 'app.js'), dir, String(WORKERS), String(RECORDS)], { cwd: dir }))
    const { code, report } = await verify([join(dir, 'app.log')])
    expect(code).toBe(1)
    expect(report).toMatchObject({ lines: WORKERS * RECORDS, producers: 1, duplicates: (WORKERS - 1) * RECORDS, gaps: 0, ok: false })
  })

  it('sidecar: run.sh starts the writer, runs the app as a separate process, stops the writer, verifies', async () => {
    const dir = tempDir()
    const run = spawnCommand('/bin/sh', [join(ROOT, 'examples', 'sidecar', 'run.sh'), join(dir, 'logs'), String(RECORDS)],
      { cwd: dir, env: { ...process.env, LOGFUNNEL: `${process.execPath} ${BIN}` } })
    const out = await finished(run)
    expect(out).toContain(`ok: ${RECORDS} lines, 1 producers, 0 torn, 0 gaps, 0 duplicates, 0 reordered`)
    const { code, report } = await verify([join(dir, 'logs', 'app.log'), '--expect', String(RECORDS)])
    expect(code).toBe(0)
    expect(report).toMatchObject({ ...CLEAN, lines: RECORDS, producers: 1 })
  })
}, 120_000)
