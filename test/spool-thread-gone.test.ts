import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import { currentThread, processStartTime, type SpoolThread } from '../shared/spool.js'
import { tempDir, waitFor } from './helpers/children.js'
import { startWriterChild } from './helpers/cluster.js'
import { craftSpool } from './helpers/spool-files.js'

/**
 * A `.spool.tmp` of a live process that names the thread writing it (a worker thread's early
 * segment, producer/early-spool.ts): the writer takes it, and removes it, once that thread is
 * gone, the process living on; while the thread lives it leaves it alone (its sender thread
 * reads it back). Before, it wrote such a file once it had not changed for a second and kept
 * it until the process ended, then read it again.
 */

/** A thread of this process that has ended, as currentThread() named it while it ran. */
async function endedThread (): Promise<SpoolThread> {
  const worker = new Worker(`const { parentPort } = require('node:worker_threads'); const { readFileSync, readlinkSync } = require('node:fs')
    const tid = Number(readlinkSync('/proc/thread-self').split('/').at(-1))
    const stat = readFileSync('/proc/self/task/' + tid + '/stat', 'utf8')
    parentPort.postMessage({ tid, start: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] })`, { eval: true })
  const [thread] = await Promise.all([new Promise<SpoolThread>((resolve) => worker.once('message', resolve)), new Promise((resolve) => worker.once('exit', resolve))])
  return thread
}

describe.runIf(currentThread() !== undefined)('a live process\'s spool segment that names its thread', () => {
  it('the segment of a thread that has ended is taken and removed, the process living on; that of a live thread is left unread by the running writer and by its stop', async () => {
    const dir = tempDir()
    const spoolDir = join(dir, 'w.sock.spool')
    mkdirSync(spoolDir, { mode: 0o700 })
    const endpoint = `ipc://${join(dir, 'w.sock')}`
    const start = processStartTime(process.pid) ?? null
    const gone = craftSpool({ endpoint, records: 300, pid: process.pid, start, thread: await endedThread(), tag: 'gone' })
    const live = craftSpool({ endpoint, records: 200, pid: process.pid, start, thread: currentThread(), tag: 'live' })
    const gonePath = join(spoolDir, gone.name(0, true))
    const livePath = join(spoolDir, live.name(0, true))
    writeFileSync(gonePath, gone.bytes)
    writeFileSync(livePath, live.bytes)
    const writer = await startWriterChild(dir)
    await waitFor(() => !existsSync(gonePath), 20_000, () => `the ended thread's segment is still there\n${writer.child.describe()}`)
    const stopped = await writer.stop()
    expect(stopped).toMatchObject({ records: 300, duplicates: 0, spool: { files: 1, entries: 30, torn: 0 } })
    expect(existsSync(livePath), 'the live thread\'s segment is left').toBe(true)
    expect(readFileSync(writer.file, 'utf8').split('\n').filter((l) => l.includes('"tag":"live"'))).toEqual([])
  })
})
