import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { startWriter as StartWriter } from '../producer/start-writer.js'
import { exitCode, lineCount, ROOT, spawnNode, tempDir } from './helpers/children.js'
import { runProducers, startWriterChild } from './helpers/cluster.js'

/*
 * The deadlines given to methods (flush(ms), close(ms), stop(ms)) and startWriter()'s
 * startTimeoutMs are checked as the options with the same meaning are: an integer number of ms
 * from 1 to an hour. Before, any value was taken: a value past setTimeout's 2^31 - 1 ms (a
 * caller meaning "wait long") fired at once with a TimeoutOverflowWarning, and so did -1, 0,
 * 1.5 or a string. stop('soon') SIGKILLed the writer a moment after its SIGTERM, mid-drain.
 */

const INVALID = 'LOGFUNNEL_ERR_INVALID_OPTION'
const BAD: unknown[] = [2 ** 31, -1, 0, 1.5, 'soon']
const shown = (value: unknown): string => String(value)
// The built module: startWriter() spawns the CLI found beside it (dist/cli/bin.js).
const { startWriter } = await import(join(ROOT, 'dist', 'producer', 'index.js')) as { startWriter: typeof StartWriter }

describe('deadline arguments are checked before anything is done with them', () => {
  it('startWriter().stop(bad) rejects with LOGFUNNEL_ERR_INVALID_OPTION and leaves the writer running; stop() then drains it as usual', async () => {
    const dir = tempDir()
    const writer = await startWriter({ file: join(dir, 'app.log'), endpoint: `ipc://${join(dir, 'w.sock')}` })
    try {
      for (const bad of BAD) {
        await expect(writer.stop(bad as number)).rejects.toMatchObject({ code: INVALID, message: `stop() deadlineMs must be an integer number of ms between 1 and 3600000, got ${shown(bad)}` })
      }
      // Still there, and still taking records.
      expect(() => process.kill(writer.pid, 0)).not.toThrow()
      const [done] = await runProducers(1, { endpoint: writer.endpoint, records: 300 })
      expect(done.stats).toMatchObject({ records: 300, spooledRecords: 0 })
    } finally {
      const summary = await writer.stop()
      expect(summary).toMatchObject({ event: 'stopped', reason: 'SIGTERM', records: 300 })
    }
    expect(lineCount(join(dir, 'app.log'))).toBe(300)
  })

  it('startWriter() rejects a startTimeoutMs past an hour, and options that are not an object, before spawning', async () => {
    await expect(startWriter({ startTimeoutMs: 2 ** 31 })).rejects.toMatchObject({ code: INVALID, message: 'startTimeoutMs must be an integer number of ms between 1 and 3600000, got 2147483648' })
    await expect(startWriter({ startTimeoutMs: -1 })).rejects.toMatchObject({ code: INVALID, message: 'startTimeoutMs must be an integer number of ms between 1 and 3600000, got -1' })
    await expect(startWriter(null as never)).rejects.toMatchObject({ code: INVALID, message: 'startWriter() options must be an object' })
    await expect(startWriter('ipc:///tmp/x.sock' as never)).rejects.toMatchObject({ code: INVALID, message: 'startWriter() options must be an object' })
  })

  it('funnel(): flush(bad) and close(bad) reject with LOGFUNNEL_ERR_INVALID_OPTION and leave the destination open; close() then writes every record, no report', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const code = `
      import pino from 'pino'
      import { funnel } from ${JSON.stringify(join(ROOT, 'dist', 'producer', 'index.js'))}
      const dest = funnel({ endpoint: ${JSON.stringify(writer.endpoint)} })
      const reports = []
      dest.on('error', (err) => reports.push(err.code))
      const log = pino(dest)
      for (let i = 0; i < 100; i++) log.info({ seq: i }, 'before')
      for (const bad of ${JSON.stringify(BAD)}) {
        for (const method of ['flush', 'close']) {
          const outcome = await dest[method](bad).then(() => ({ ok: true }), (err) => ({ code: err.code, message: err.message }))
          console.log(JSON.stringify({ event: 'call', method, bad, ...outcome }))
        }
      }
      for (let i = 100; i < 200; i++) log.info({ seq: i }, 'after')
      await dest.close()
      console.log(JSON.stringify({ event: 'closed', reports, records: dest.stats.records, dropped: dest.stats.dropped, spooledRecords: dest.stats.spooledRecords }))`
    const child = spawnNode(['--input-type=module', '-e', code], { cwd: ROOT })
    expect(await exitCode(child), child.describe()).toBe(0)
    const lines = child.stdout().trim().split('\n').map((l) => JSON.parse(l))
    expect(lines.filter((l) => l.event === 'call')).toEqual(BAD.flatMap((bad) => ['flush', 'close'].map((method) => ({
      event: 'call', method, bad, code: INVALID, message: `${method}() deadlineMs must be an integer number of ms between 1 and 3600000, got ${shown(bad)}`
    }))))
    expect(lines.at(-1)).toEqual({ event: 'closed', reports: [], records: 200, dropped: 0, spooledRecords: 0 })
    expect(await writer.stop()).toMatchObject({ records: 200 })
    expect(lineCount(writer.file)).toBe(200)
  })
})
