import { spawnSync } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { ROOT, tempDir, waitFor } from './helpers/children.js'
import { haveProgram, PYTHON } from './helpers/programs.js'
import { PYTEST_TESTS, pytestEnded, pytestResults, startPytest, type PytestRun } from './helpers/pytest-run.js'

// The Python package's own tests (pytest, clients/python/tests) run once, against the real
// writer built in dist/; each pytest test is reported here as a test of its own, so the
// closing `N passed, N failed` line of `npm test` counts both runners. Under `npm test` the
// global setup (helpers/python-early.ts) started them beside the Node files; otherwise this
// file starts them.
const HAVE_PYTEST = haveProgram('python3-pytest', PYTHON, ['-m', 'pytest', '--version'])
/** The whole Python suite, when this file waits for it (or runs it). */
const PYTEST_DEADLINE_MS = 400_000

function collect (): string[] {
  const out = spawnSync(PYTHON, ['-m', 'pytest', '--collect-only', '-q', '-p', 'no:cacheprovider', PYTEST_TESTS], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })
  const ids = out.stdout.split('\n').filter((line) => line.includes('::'))
  if (out.status !== 0 || ids.length === 0) throw new Error(`pytest --collect-only failed (${String(out.status)}):\n${out.stdout}${out.stderr}`)
  return ids
}

interface Outcome { id: string, when: string, outcome: 'passed' | 'failed' | 'skipped', detail: string }

describe.runIf(HAVE_PYTEST)('Python package (pytest clients/python/tests)', () => {
  const ids = HAVE_PYTEST ? collect() : []
  const outcomes = new Map<string, Outcome[]>()
  let output = ''
  let own: PytestRun | undefined

  beforeAll(async () => {
    const early = inject('pytestRun')
    const run = early ?? (own = startPytest(tempDir(), 2))
    await waitFor(() => pytestEnded(run.dir, run.groups), PYTEST_DEADLINE_MS, () => pytestResults(run.dir, run.groups).output)
    const results = pytestResults(run.dir, run.groups)
    output = results.output
    for (const line of results.lines) {
      const outcome = JSON.parse(line) as Outcome
      outcomes.set(outcome.id, [...(outcomes.get(outcome.id) ?? []), outcome])
    }
  }, PYTEST_DEADLINE_MS + 20_000)

  afterAll(async () => { await own?.stop(30_000) }, 40_000)

  for (const id of ids) {
    it(id, (ctx) => {
      const mine = outcomes.get(id) ?? []
      const failed = mine.filter((o) => o.outcome === 'failed')
      expect(failed.map((o) => `${o.when}: ${o.detail}`).join('\n'), 'pytest reported a failure').toBe('')
      if (mine.some((o) => o.outcome === 'skipped')) {
        ctx.skip()
        return
      }
      expect(mine.some((o) => o.when === 'call' && o.outcome === 'passed'), `no result for ${id}; pytest's output:\n${output}`).toBe(true)
    })
  }
})
