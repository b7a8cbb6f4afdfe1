import { readdirSync } from 'node:fs'
import { expect } from 'vitest'
import { defaultSpoolDir, parseSpoolName } from '../../shared/spool.js'
import { BIN, exitCode, fixture, spawnNode, waitFor, type Child } from './children.js'

/**
 * How long a stop with `spoolTaken` waits at most for the writer to take the spool: what a
 * test's producers leave there takes a second or two; within the usual 60 s test deadline, so
 * the failure names the files left. A test with a spool of many MB passes a longer one.
 */
export const SPOOL_TAKEN_DEADLINE_MS = 30_000

export interface StopOptions {
  /**
   * First wait until no spool file waits in the writer's spool directory (the writer has taken
   * each: it removes one once what it held is in the file), failing after `spoolDeadlineMs`
   * with the files left. For a stop after producers' close(): close() may end while the writer
   * is away (stopped, restarting, or judged away by the `spoolAfterMs` rule), with the rest in
   * the spool. The stop's drain takes those files itself (test/stop-takes-spool.test.ts); the
   * wait stays, so that these tests also check the running writer takes them, whatever a stop does.
   */
  spoolTaken?: boolean
  /** Deadline of that wait (default SPOOL_TAKEN_DEADLINE_MS). */
  spoolDeadlineMs?: number
}

export interface StartedWriter {
  child: Child
  /** The writer's `{"event":"ready",...}` line. */
  ready: { endpoint: string, receiptEndpoint: string, file: string, pid: number, curvePublicKey?: string }
  /** The spool directory it ingests (`--spool-dir`, else `<ipc path>.spool`; none for tcp without one). */
  spoolDir: string | undefined
  /** SIGTERM (with `spoolTaken`, once the spool is taken); resolves with the `stopped` summary after asserting exit code 0. */
  stop: (opts?: StopOptions) => Promise<any>
}

/** Spool files in `dir` the writer has still to take (`.spool`, and `.spool.tmp` of producers gone); none when `dir` does not exist. */
export function spoolFilesWaiting (dir: string): string[] {
  try {
    return readdirSync(dir).filter((name) => parseSpoolName(name) !== undefined).sort()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
}

/**
 * Waits until no spool file waits in `dir` (see spoolFilesWaiting), at most `deadlineMs`;
 * fails naming the files left and, with `writer`, its output.
 */
export async function waitSpoolTaken (dir: string, deadlineMs = SPOOL_TAKEN_DEADLINE_MS, writer?: Child): Promise<void> {
  await waitFor(() => spoolFilesWaiting(dir).length === 0, deadlineMs,
    () => `the writer has not taken the spool: still waiting in ${dir}: ${spoolFilesWaiting(dir).join(', ')}${writer === undefined ? '' : `\n${writer.describe()}`}`)
}

/** The value of `--name <value>` or `--name=<value>` in `args`. */
function flagValue (args: string[], name: string): string | undefined {
  const at = args.indexOf(name)
  if (at !== -1) return args[at + 1]
  return args.find((arg) => arg.startsWith(`${name}=`))?.slice(name.length + 1)
}

/**
 * Starts `logfunnel writer <args>` (the caller picks endpoint and file) and waits for ready.
 * With `slowMs`, the writer pauses that long after each message (test/fixtures/slow-writer.ts).
 */
export async function startWriterWith (args: string[], env?: NodeJS.ProcessEnv, slowMs?: number): Promise<StartedWriter> {
  const command = slowMs === undefined ? [BIN, 'writer'] : [fixture('slow-writer'), String(slowMs)]
  const child = spawnNode([...command, ...args], env === undefined ? {} : { env: { ...process.env, ...env } })
  const ready = await child.waitForLine((l) => l.event === 'ready')
  const spoolDir = flagValue(args, '--spool-dir') ?? defaultSpoolDir(ready.endpoint)
  return {
    child,
    ready,
    spoolDir,
    stop: async (opts = {}) => {
      if (opts.spoolTaken === true) {
        if (spoolDir === undefined) throw new Error(`stop({ spoolTaken }): the writer has no spool directory (tcp endpoint ${ready.endpoint} without --spool-dir)`)
        await waitSpoolTaken(spoolDir, opts.spoolDeadlineMs, child)
      }
      const stopped = child.waitForLine((l) => l.event === 'stopped', 60_000)
      child.proc.kill('SIGTERM')
      const summary = await stopped
      expect(await exitCode(child), child.describe()).toBe(0)
      return summary
    }
  }
}

/** Runs `logfunnel writer <args>` (with `env` added) expecting a refusal: exit `code`, one stderr line with `errorCode`, nothing on stdout. */
export async function expectWriterRefusal (args: string[], code: number, errorCode: string, env?: NodeJS.ProcessEnv): Promise<Child> {
  const child = spawnNode([BIN, 'writer', ...args], env === undefined ? {} : { env: { ...process.env, ...env } })
  expect(await exitCode(child), child.describe()).toBe(code)
  expect(child.stderr(), child.describe()).toMatch(new RegExp(`^logfunnel: ${errorCode}: `))
  expect(child.stdout()).toBe('')
  return child
}
