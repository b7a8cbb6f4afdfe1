import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { exitCode, lineCount, ROOT, spawnNode, tempDir, waitFor } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'

/**
 * A preload given in NODE_OPTIONS (`--require`, `--import`) that sets up a funnel() logger, as a
 * logging bootstrap or an APM agent does. Node parses NODE_OPTIONS again for every worker thread,
 * from its env, so `execArgv: []` alone did not keep the preload out of the sender thread: it ran
 * there and set up a logger of its own, whose sender thread ran it again, without end (47 threads
 * in the first second, each logging the preload's record, by hand). The sender thread now starts
 * without NODE_OPTIONS in its env.
 */
describe('a NODE_OPTIONS preload that sets up a funnel() logger', () => {
  for (const flag of ['--require', '--import']) {
    it(`NODE_OPTIONS='${flag} <preload>': the preload runs in the main thread only; its record and the program's 1000 are in the file once`, async () => {
      const dir = tempDir()
      const writer = await startWriterChild(dir)
      const index = join(ROOT, 'dist', 'producer', 'index.js')
      const code = `
        import pino from 'pino'
        import { funnel } from ${JSON.stringify(index)}
        const dest = funnel({ endpoint: ${JSON.stringify(writer.endpoint)} })
        const log = pino(dest)
        for (let seq = 0; seq < 1000; seq++) log.info({ seq }, 'program')
        await dest.close()
        // Long enough for sender threads started from the preload (before: one more every few ms) to show.
        setTimeout(() => console.log(JSON.stringify({ event: 'done' })), 500)`
      const preload = join(ROOT, 'test', 'fixtures', 'preload-funnel-logger.cjs')
      const child = spawnNode(['--input-type=module', '-e', code], {
        cwd: ROOT,
        env: { ...process.env, NODE_OPTIONS: `${flag} ${preload}`, PRELOAD_LOGFUNNEL: index, PRELOAD_ENDPOINT: writer.endpoint }
      })
      await child.waitForLine((l) => l.event === 'done', 30_000)
      expect(await exitCode(child, 30_000), child.describe()).toBe(0)
      expect(child.stdout().split('\n').filter((l) => l.startsWith('preload ran')), child.describe()).toEqual(['preload ran in the main thread'])
      await waitFor(() => lineCount(writer.file) >= 1001, 15_000, () => `${lineCount(writer.file)} of 1001 lines in the file\n${child.describe()}`)
      expect((await writer.stop({ spoolTaken: true })).records).toBe(1001)
      expect(await verifyFile(writer.file)).toMatchObject({ lines: 1001, producers: 2, torn: 0, gaps: 0, duplicates: 0, reordered: 0 })
    })
  }
}, 90_000)
