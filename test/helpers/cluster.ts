import { join } from 'node:path'
import { expect } from 'vitest'
import { exitCode, fixture, spawnNode, type Child } from './children.js'
import { startWriterWith, type StopOptions } from './writer-cli.js'
import type { ProducerParams } from '../fixtures/producer-logs.js'

export interface WriterChild {
  child: Child
  endpoint: string
  file: string
  /** The spool directory it ingests (`<dir>/w.sock.spool` unless `--spool-dir` says otherwise). */
  spoolDir: string
  /**
   * SIGTERM; resolves with the `stopped` summary after asserting exit code 0. With `spoolTaken`,
   * first waits until the writer has taken every spool file (see StopOptions).
   */
  stop: (opts?: StopOptions) => Promise<any>
}

/**
 * Starts `logfunnel writer` on an ipc endpoint in `dir` and waits for its ready line; with
 * `slowMs`, a writer that pauses that long after each message.
 */
export async function startWriterChild (dir: string, args: string[] = [], file = join(dir, 'app.log'), slowMs?: number): Promise<WriterChild> {
  const endpoint = `ipc://${join(dir, 'w.sock')}`
  const { child, spoolDir, stop } = await startWriterWith(['--file', file, '--endpoint', endpoint, ...args], undefined, slowMs)
  return { child, endpoint, file, spoolDir: spoolDir as string, stop }
}

export type { ProducerParams }

/** Spawns a producer-logs fixture. */
export function spawnProducer (params: ProducerParams): Child {
  return spawnNode([fixture('producer-logs'), JSON.stringify(params)])
}

/** Runs `n` producers to completion; asserts each exits 0 and returns their `done` lines. */
export async function runProducers (n: number, params: ProducerParams, deadlineMs = 120_000): Promise<any[]> {
  const children = Array.from({ length: n }, () => spawnProducer(params))
  return await Promise.all(children.map(async (child) => {
    const done = await child.waitForLine((l) => l.event === 'done', deadlineMs)
    expect(await exitCode(child), child.describe()).toBe(0)
    expect(done.closeError ?? null, child.describe()).toBe(null)
    return done
  }))
}
