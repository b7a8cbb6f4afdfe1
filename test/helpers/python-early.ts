import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestProject } from 'vitest/node'
import { PYTHON } from './programs.js'
import { startPytest } from './pytest-run.js'

declare module 'vitest' {
  export interface ProvidedContext {
    /** Where the pytest run started by the global setup writes (test/python.test.ts reads it). */
    pytestRun: { dir: string, groups: number } | null
  }
}

/**
 * Global setup: under `npm test` (the whole suite), the Python suite starts at once, beside the
 * Node test files, two at a time; test/python.test.ts then reports its outcomes. A
 * `vitest run` of chosen files starts nothing here: test/python.test.ts runs pytest itself.
 */
export default function setup (project: TestProject): (() => Promise<void>) | undefined {
  const havePytest = spawnSync(PYTHON, ['-m', 'pytest', '--version'], { stdio: 'ignore', timeout: 10_000 }).status === 0
  if (process.env.npm_lifecycle_event !== 'test' || !havePytest) {
    project.provide('pytestRun', null)
    return undefined
  }
  const dir = mkdtempSync(join(tmpdir(), 'logfunnel-pytest-'))
  // One process: it runs beside the Node files, which keep both cores busy.
  const run = startPytest(dir, 1)
  project.provide('pytestRun', { dir, groups: run.groups })
  return async () => {
    await run.stop(30_000)
    rmSync(dir, { recursive: true, force: true })
  }
}
