import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { exitCode, ROOT, spawnCommand, tempDir } from './helpers/children.js'
import { haveProgram, PYTHON } from './helpers/programs.js'

// The Python package's own tests (pytest, clients/python/tests) run once, against the real
// writer built in dist/; each pytest test is reported here as a test of its own, so the
// closing `N passed, N failed` line of `npm test` counts both runners.
const TESTS = join(ROOT, 'clients', 'python', 'tests')
const HAVE_PYTEST = haveProgram('python3-pytest', PYTHON, ['-m', 'pytest', '--version'])

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
    const report = join(tempDir(), 'pytest.jsonl')
    const child = spawnCommand(PYTHON, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', TESTS], {
      cwd: ROOT, env: { ...process.env, LOGFUNNEL_PYTEST_REPORT: report, LOGFUNNEL_NODE: process.execPath }
    })
    await exitCode(child, 400_000)
    run = child.stdout().trim().split('\n').slice(-20).join('\n') + child.stderr()
    if (existsSync(report)) {
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
