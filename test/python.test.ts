import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { exitCode, ROOT, spawnCommand, tempDir } from './helpers/children.js'
import { haveProgram, PYTHON } from './helpers/programs.js'

// The Python package's own tests (pytest, clients/python/tests) run once, against the real
// writer built in dist/; each pytest test is reported here as a test of its own, so the
// closing `N passed, N failed` line of `npm test` counts both runners.
const TESTS = join(ROOT, 'clients', 'python', 'tests')
const HAVE_PYTEST = haveProgram('python3-pytest', PYTHON, ['-m', 'pytest', '--version'])
/** The files of one of the two pytest processes (about half of the suite's time); the other runs the rest. */
const FIRST_HALF = ['test_exit.py', 'test_package.py', 'test_pools.py']

function collect (): string[] {
  const out = spawnSync(PYTHON, ['-m', 'pytest', '--collect-only', '-q', '-p', 'no:cacheprovider', TESTS], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })
  const ids = out.stdout.split('\n').filter((line) => line.includes('::'))
  if (out.status !== 0 || ids.length === 0) throw new Error(`pytest --collect-only failed (${String(out.status)}):\n${out.stdout}${out.stderr}`)
  return ids
}

interface Outcome { id: string, when: string, outcome: 'passed' | 'failed' | 'skipped', detail: string }

describe.runIf(HAVE_PYTEST)('Python package (pytest clients/python/tests)', () => {
  const ids = HAVE_PYTEST ? collect() : []
  const outcomes = new Map<string, Outcome[]>()
  let run = ''

  beforeAll(async () => {
    // Two pytest processes side by side, each with about half of the suite's time: most of it is
    // waiting on writers and child processes, so the pair takes little more than the larger half.
    const files = readdirSync(TESTS).filter((f) => /^test_.*\.py$/.test(f)).sort()
    const first = files.filter((f) => FIRST_HALF.includes(f))
    const groups = [first, files.filter((f) => !first.includes(f))].filter((g) => g.length > 0)
    const runs = await Promise.all(groups.map(async (group, i) => {
      const report = join(tempDir(), `pytest-${i}.jsonl`)
      const child = spawnCommand(PYTHON, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', ...group.map((f) => join(TESTS, f))], {
        cwd: ROOT, env: { ...process.env, LOGFUNNEL_PYTEST_REPORT: report, LOGFUNNEL_NODE: process.execPath }
      })
      await exitCode(child, 400_000)
      return { report, output: child.stdout().trim().split('\n').slice(-20).join('\n') + child.stderr() }
    }))
    run = runs.map((r) => r.output).join('\n')
    for (const { report } of runs) {
      if (!existsSync(report)) continue
      for (const line of readFileSync(report, 'utf8').trim().split('\n')) {
        const outcome = JSON.parse(line) as Outcome
        outcomes.set(outcome.id, [...(outcomes.get(outcome.id) ?? []), outcome])
      }
    }
  }, 420_000)

  for (const id of ids) {
    it(id, (ctx) => {
      const mine = outcomes.get(id) ?? []
      const failed = mine.filter((o) => o.outcome === 'failed')
      expect(failed.map((o) => `${o.when}: ${o.detail}`).join('\n'), 'pytest reported a failure').toBe('')
      if (mine.some((o) => o.outcome === 'skipped')) {
        ctx.skip()
        return
      }
      expect(mine.some((o) => o.when === 'call' && o.outcome === 'passed'), `no result for ${id}; pytest's output:\n${run}`).toBe(true)
    })
  }
})
