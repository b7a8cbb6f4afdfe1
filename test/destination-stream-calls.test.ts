import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { verifyFile } from '../shared/verify.js'
import { exitCode, lineCount, ROOT, spawnNode, tempDir, waitFor } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'

/**
 * What pino and its users call on a destination besides write(line): pino.multistream()'s end()
 * calls end() on each of its streams, and sonic-boom (pino's own destination) takes a Buffer.
 * Before, multistream's end() threw "stream.end is not a function" at the funnel() destination
 * (the streams after it were not ended), and write(Buffer) threw "chunk.charCodeAt is not a
 * function" from inside the ring, losing the record.
 */
describe('a funnel() destination called as a stream', () => {
  it('pino.multistream([funnel(), pino.destination()]).end() closes both; a Buffer is written as its line; write(42) throws ERR_INVALID_ARG_TYPE; every record in each file once', async () => {
    const dir = tempDir()
    const writer = await startWriterChild(dir)
    const other = join(dir, 'other.log')
    const code = `
      import pino from 'pino'
      import { funnel } from ${JSON.stringify(join(ROOT, 'dist', 'producer', 'index.js'))}
      const dest = funnel({ endpoint: ${JSON.stringify(writer.endpoint)} })
      const streams = pino.multistream([{ stream: dest }, { stream: pino.destination({ dest: ${JSON.stringify(other)}, sync: true }) }])
      const log = pino({}, streams)
      for (let seq = 0; seq < 1000; seq++) log.info({ seq }, 'through multistream')
      // Not through pino: a line handed over as a Buffer (the other stream does not get it).
      dest.write(Buffer.from(JSON.stringify({ level: 30, pid: process.pid, seq: 1000, msg: 'a Buffer' }) + '\\n'))
      let thrown = null
      try { dest.write(42) } catch (err) { thrown = { code: err.code, name: err.name } }
      for (let seq = 1001; seq < 1100; seq++) log.info({ seq }, 'through multistream')
      let endError = null
      try { streams.end() } catch (err) { endError = err.message }
      console.log(JSON.stringify({ event: 'ended', thrown, endError, writable: dest.writable }))`
    const child = spawnNode(['--input-type=module', '-e', code], { cwd: ROOT })
    const ended = await child.waitForLine((l) => l.event === 'ended', 30_000)
    expect(ended, child.describe()).toEqual({ event: 'ended', thrown: { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' }, endError: null, writable: false })
    // end() began the close: the process ends by itself, with nothing reported on stderr but,
    // on a machine so loaded that the writer was judged away, close()'s own report of the spool.
    expect(await exitCode(child, 30_000), child.describe()).toBe(0)
    const said = child.stderr().split('\n').filter((l) => l !== '' && !l.includes('LOGFUNNEL_ERR_CLOSE_TIMEOUT') && !l.includes('--trace-warnings'))
    expect(said, child.describe()).toEqual([])
    await waitFor(() => lineCount(writer.file) >= 1100, 15_000, () => `${lineCount(writer.file)} of 1100 lines in the file\n${child.describe()}`)
    expect((await writer.stop({ spoolTaken: true })).records).toBe(1100)
    expect(await verifyFile(writer.file)).toMatchObject({ lines: 1100, producers: 1, torn: 0, gaps: 0, duplicates: 0, reordered: 0 })
    expect(readFileSync(writer.file, 'utf8').split('\n').filter((l) => l.includes('"msg":"a Buffer"'))).toHaveLength(1)
    expect(lineCount(other)).toBe(1099)
  })
}, 60_000)
