import { cpSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { BIN, exitCode, ROOT, spawnNode, tempDir } from './helpers/children.js'

/**
 * startWriter() loaded from a place with no CLI at ../cli/bin.js, as from an application bundled
 * into one file (esbuild: the CLI is looked for from the bundle's own URL, one directory up).
 * Modelled without a bundler: a copy of dist/producer and dist/shared without dist/cli. Before,
 * the child node failed with `Cannot find module '<dir>/cli/bin.js'` and startWriter() rejected
 * with LOGFUNNEL_ERR_WRITER_START "writer exited with code 1 before it was ready", naming
 * neither the bundle nor what to do (by hand, an esbuild bundle: `Cannot find module '/tmp/tf/cli/bin.js'`).
 */
function bundleWithoutCli (): string {
  const dir = tempDir()
  for (const part of ['producer', 'shared']) cpSync(join(ROOT, 'dist', part), join(dir, part), { recursive: true })
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'))
  return join(dir, 'producer', 'index.js')
}

/** A script that calls startWriter() (after `setup`), logs `records` through funnel() and prints what became of it. */
function script (index: string, dir: string, setup: string, records: number): string {
  return `
    import pino from 'pino'
    ${setup}
    const { funnel, startWriter } = await import(${JSON.stringify(index)})
    try {
      const writer = await startWriter({ file: ${JSON.stringify(join(dir, 'app.log'))}, endpoint: 'ipc://${join(dir, 'w.sock')}' })
      const dest = funnel({ endpoint: writer.endpoint })
      const log = pino(dest)
      for (let seq = 0; seq < ${records}; seq++) log.info({ seq }, 'bundled')
      await dest.close()
      console.log(JSON.stringify({ event: 'stopped', summary: await writer.stop() }))
    } catch (err) {
      console.log(JSON.stringify({ event: 'rejected', code: err.code, message: err.message }))
    }`
}

describe('startWriter() without the CLI beside it (a bundle)', () => {
  it('rejects with LOGFUNNEL_ERR_MISSING_DEPENDENCY, spawning nothing, naming the file looked for and what to do', async () => {
    const index = bundleWithoutCli()
    const dir = tempDir()
    const child = spawnNode(['--input-type=module', '-e', script(index, dir, '', 10)], { cwd: ROOT })
    const line = await child.waitForLine((l) => l.event === 'stopped' || l.event === 'rejected', 20_000)
    expect(line, child.describe()).toMatchObject({ event: 'rejected', code: 'LOGFUNNEL_ERR_MISSING_DEPENDENCY' })
    expect(line.message).toContain(join(index, '..', '..', 'cli', 'bin.js'))
    expect(line.message).toContain("__bundlerPathsOverrides['logfunnel-cli']")
    expect(await exitCode(child, 20_000), child.describe()).toBe(0)
  })

  it('with globalThis.__bundlerPathsOverrides[\'logfunnel-cli\'] naming the installed CLI, the writer starts and all 1000 records reach it once', async () => {
    const index = bundleWithoutCli()
    const dir = tempDir()
    const setup = `globalThis.__bundlerPathsOverrides = { 'logfunnel-cli': ${JSON.stringify(BIN)} }`
    const child = spawnNode(['--input-type=module', '-e', script(index, dir, setup, 1000)], { cwd: ROOT })
    const line = await child.waitForLine((l) => l.event === 'stopped' || l.event === 'rejected', 30_000)
    expect(line, child.describe()).toMatchObject({ event: 'stopped', summary: { records: 1000 } })
    expect(await exitCode(child, 20_000), child.describe()).toBe(0)
    expect(await verifyFile(join(dir, 'app.log'), { expectTotal: 1000 })).toMatchObject({ ok: true, lines: 1000, producers: 1, gaps: 0, duplicates: 0, torn: 0 })
  })
}, 60_000)
