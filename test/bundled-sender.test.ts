import { cpSync, rmSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { exitCode, lineCount, ROOT, spawnNode, tempDir, waitFor } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'

/**
 * funnel() loaded from a place with no sender-thread.js beside it, as from an application bundled
 * into one file (esbuild, webpack, ncc: the sender thread's module is found from the bundle's own
 * URL, and a bundler does not emit it unless told). Modelled without a bundler: a copy of
 * dist/producer and dist/shared without producer/sender-thread.js. Before, funnel() returned as
 * usual, its thread failed to start (a MODULE_NOT_FOUND process warning naming no cause), and every
 * record logged was lost at exit; pino's own convention for bundles,
 * `globalThis.__bundlerPathsOverrides`, was not read.
 */
function bundleWithoutSenderThread (): string {
  const dir = tempDir()
  for (const part of ['producer', 'shared']) cpSync(join(ROOT, 'dist', part), join(dir, part), { recursive: true })
  rmSync(join(dir, 'producer', 'sender-thread.js'))
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'))
  return join(dir, 'producer', 'index.js')
}

describe('funnel() without its sender thread\'s module beside it (a bundle)', () => {
  it('throws LOGFUNNEL_ERR_MISSING_DEPENDENCY at once, naming the file looked for and what to do', async () => {
    const index = bundleWithoutSenderThread()
    const code = `
      import { funnel } from ${JSON.stringify(index)}
      try {
        funnel({ endpoint: 'ipc://${join(tempDir(), 'w.sock')}' })
        console.log(JSON.stringify({ event: 'made' }))
      } catch (err) {
        console.log(JSON.stringify({ event: 'threw', code: err.code, message: err.message }))
      }`
    const child = spawnNode(['--input-type=module', '-e', code], { cwd: ROOT })
    const line = await child.waitForLine((l) => l.event === 'made' || l.event === 'threw', 20_000)
    expect(line, child.describe()).toMatchObject({ event: 'threw', code: 'LOGFUNNEL_ERR_MISSING_DEPENDENCY' })
    expect(line.message).toContain(join(index, '..', 'sender-thread.js'))
    expect(line.message).toContain("__bundlerPathsOverrides['logfunnel-sender-thread']")
    expect(await exitCode(child, 20_000), child.describe()).toBe(0)
  })

  it('with globalThis.__bundlerPathsOverrides[\'logfunnel-sender-thread\'] naming the file, all 1000 records reach the writer once', async () => {
    const index = bundleWithoutSenderThread()
    const writer = await startWriterChild(tempDir())
    const code = `
      import pino from 'pino'
      globalThis.__bundlerPathsOverrides = { 'logfunnel-sender-thread': ${JSON.stringify(join(ROOT, 'dist', 'producer', 'sender-thread.js'))} }
      const { funnel } = await import(${JSON.stringify(index)})
      const dest = funnel({ endpoint: ${JSON.stringify(writer.endpoint)} })
      let seq = 0
      const log = pino({ mixin: () => ({ seq: seq++ }) }, dest)
      for (let i = 0; i < 1000; i++) log.info({ i }, 'bundled')
      await dest.close()
      console.log(JSON.stringify({ event: 'closed', stats: dest.stats }))`
    const child = spawnNode(['--input-type=module', '-e', code], { cwd: ROOT })
    expect(await exitCode(child, 30_000), child.describe()).toBe(0)
    await waitFor(() => lineCount(writer.file) >= 1000, 10_000, () => `${lineCount(writer.file)} of 1000 lines in the file\n${child.describe()}`)
    expect((await writer.stop()).records).toBe(1000)
    expect(await verifyFile(writer.file)).toMatchObject({ lines: 1000, producers: 1, gaps: 0, duplicates: 0, torn: 0 })
  })
}, 60_000)
