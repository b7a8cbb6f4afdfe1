import { expect } from 'vitest'
import { BIN, exitCode, fixture, spawnNode, type Child } from './children.js'

export interface StartedWriter {
  child: Child
  /** The writer's `{"event":"ready",...}` line. */
  ready: { endpoint: string, receiptEndpoint: string, file: string, pid: number, curvePublicKey?: string }
  /** SIGTERM; resolves with the `stopped` summary after asserting exit code 0. */
  stop: () => Promise<any>
}

/**
 * Starts `logfunnel writer <args>` (the caller picks endpoint and file) and waits for ready.
 * With `slowMs`, the writer pauses that long after each message (test/fixtures/slow-writer.ts).
 */
export async function startWriterWith (args: string[], env?: NodeJS.ProcessEnv, slowMs?: number): Promise<StartedWriter> {
  const command = slowMs === undefined ? [BIN, 'writer'] : [fixture('slow-writer'), String(slowMs)]
  const child = spawnNode([...command, ...args], env === undefined ? {} : { env: { ...process.env, ...env } })
  const ready = await child.waitForLine((l) => l.event === 'ready')
  return {
    child,
    ready,
    stop: async () => {
      const stopped = child.waitForLine((l) => l.event === 'stopped', 60_000)
      child.proc.kill('SIGTERM')
      const summary = await stopped
      expect(await exitCode(child), child.describe()).toBe(0)
      return summary
    }
  }
}

/** Runs `logfunnel writer <args>` expecting a refusal: exit `code`, one stderr line with `errorCode`, nothing on stdout. */
export async function expectWriterRefusal (args: string[], code: number, errorCode: string): Promise<Child> {
  const child = spawnNode([BIN, 'writer', ...args])
  expect(await exitCode(child), child.describe()).toBe(code)
  expect(child.stderr(), child.describe()).toMatch(new RegExp(`^logfunnel: ${errorCode}: `))
  expect(child.stdout()).toBe('')
  return child
}
