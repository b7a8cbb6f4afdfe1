import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { resolveWriterOptions } from '../shared/options.js'
import { exitCode, ROOT, spawnNode, tempDir } from './helpers/children.js'
import { expectWriterRefusal, startWriterWith } from './helpers/writer-cli.js'

describe('--pid-file', () => {
  it('holds the pid once the writer is ready, with no temp file beside it, and is removed at stop', async () => {
    const dir = tempDir()
    const pidFile = join(dir, 'run', 'app.pid')
    mkdirSync(join(dir, 'run'))
    const writer = await startWriterWith(['--file', join(dir, 'app.log'), '--endpoint', `ipc://${join(dir, 'w.sock')}`, '--pid-file', pidFile])
    expect(readFileSync(pidFile, 'utf8')).toBe(`${writer.ready.pid}\n`)
    expect(readdirSync(join(dir, 'run'))).toEqual(['app.pid'])
    const summary = await writer.stop()
    expect(summary.event).toBe('stopped')
    expect(existsSync(pidFile)).toBe(false)
  })

  it('is refused at start (exit 1, LOGFUNNEL_ERR_FILE, one stderr line, nothing bound or written) when its directory does not exist', async () => {
    // Before, the writer started, found the directory missing once ready, stopped again and
    // printed its final stats line before the error.
    const dir = tempDir()
    const child = await expectWriterRefusal(['--file', join(dir, 'app.log'), '--endpoint', `ipc://${join(dir, 'w.sock')}`, '--pid-file', join(dir, 'missing', 'app.pid')], 1, 'LOGFUNNEL_ERR_FILE')
    expect(child.stderr()).toBe(`logfunnel: LOGFUNNEL_ERR_FILE: cannot write pid file ${join(dir, 'missing', 'app.pid')}: its directory ${join(dir, 'missing')} does not exist\n`)
    expect(readdirSync(dir)).toEqual([])
  })

  it('is passed through by startWriter({ pidFile })', async () => {
    const dir = tempDir()
    const pidFile = join(dir, 'app.pid')
    // startWriter spawns the compiled writer, so the script runs from dist/ as a user's would.
    const script = `import { readFileSync, existsSync } from 'node:fs'
      import { startWriter } from ${JSON.stringify(join(ROOT, 'dist', 'producer', 'index.js'))}
      const writer = await startWriter({ file: ${JSON.stringify(join(dir, 'app.log'))}, endpoint: ${JSON.stringify(`ipc://${join(dir, 'w.sock')}`)}, pidFile: ${JSON.stringify(pidFile)} })
      const content = readFileSync(${JSON.stringify(pidFile)}, 'utf8')
      await writer.stop()
      console.log(JSON.stringify({ event: 'done', pid: writer.pid, content, after: existsSync(${JSON.stringify(pidFile)}) }))`
    const child = spawnNode(['--input-type=module', '-e', script])
    const done = await child.waitForLine((l) => l.event === 'done')
    expect(await exitCode(child), child.describe()).toBe(0)
    expect(done).toEqual({ event: 'done', pid: done.pid, content: `${done.pid}\n`, after: false })
  })

  it('rejects a relative pidFile option with LOGFUNNEL_ERR_INVALID_OPTION', () => {
    expect(() => resolveWriterOptions({ pidFile: 'app.pid' })).toThrow(expect.objectContaining({ code: 'LOGFUNNEL_ERR_INVALID_OPTION' }))
  })
})
