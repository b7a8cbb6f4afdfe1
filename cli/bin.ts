#!/usr/bin/env node
import { existsSync, readFileSync } from 'node:fs'
import { LogfunnelError, UsageError } from '../shared/errors.js'
import { holdSignals } from './early-signals.js'

/** Subcommands: each module exports `main(argv): Promise<number>` (the exit code). */
const COMMANDS: Record<string, { summary: string, load: () => Promise<{ main: (argv: string[]) => Promise<number> }> }> = {
  writer: { summary: 'run the writer: receive log lines and write them to one file', load: async () => await import('./writer-command.js') },
  verify: { summary: 'check a log file: complete JSON lines, per-producer sequence without gaps', load: async () => await import('./verify-command.js') },
  keygen: { summary: 'print a CURVE key pair (JSON) for --curve-secret-key-file / --curve-allowed-keys', load: async () => await import('./keygen-command.js') },
  demo: { summary: 'start a writer and a pool of 4 producers, then verify the file (npm start)', load: async () => await import('./demo-command.js') },
  bench: { summary: 'compare logfunnel with flock, O_APPEND and pino transports; verify every file (from a clone)', load: loadBench }
}

/**
 * The bench needs the development packages (charts, histograms) and writes beside itself, so
 * the package does not ship it: it runs from a clone of the repository.
 */
async function loadBench (): Promise<{ main: (argv: string[]) => Promise<number> }> {
  const path = new URL('../bench/bench-command.js', import.meta.url)
  if (!existsSync(path)) throw new UsageError('logfunnel bench runs from a clone of the repository (npm ci && npm run bench); the installed package does not include it')
  return await import(path.href) as { main: (argv: string[]) => Promise<number> }
}

/**
 * Commands that load ZeroMQ's native addon, which Node's permission model refuses (and Node 20's
 * refuses fsync too). Before, the writer printed LOGFUNNEL_ERR_INTERNAL ("No compatible zeromq.js
 * addon found") and then crashed with the same error's stack trace.
 */
const NATIVE_COMMANDS = new Set(['writer', 'keygen', 'demo'])

function usage (): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`)
  return `usage: logfunnel <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nlogfunnel <command> --help shows the options of a command; logfunnel --version the version.\n`
}

function version (): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

/**
 * Test hook (test/writer-lifecycle.test.ts): LOGFUNNEL_TEST_LOAD_DELAY_MS makes the writer
 * command say `{"event":"loading"}` and take that long more to load, so a signal can be sent
 * while it loads; unset in any real use.
 */
function holdForTest (): void {
  const ms = Number(process.env.LOGFUNNEL_TEST_LOAD_DELAY_MS)
  if (!(ms > 0)) return
  process.stdout.write('{"event":"loading"}\n')
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

async function run (): Promise<number> {
  const [name, ...rest] = process.argv.slice(2)
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage())
    return name === undefined ? 2 : 0
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    process.stdout.write(version() + '\n')
    return 0
  }
  // Every command takes -h as --help.
  const argv = rest.map((arg) => arg === '-h' ? '--help' : arg)
  const command = COMMANDS[name]
  if (command === undefined) {
    process.stderr.write(`logfunnel: LOGFUNNEL_ERR_USAGE: unknown command '${name}'\n${usage()}`)
    return 2
  }
  if (NATIVE_COMMANDS.has(name) && (process as { permission?: unknown }).permission !== undefined) {
    throw new UsageError(`logfunnel ${name} cannot run under Node's permission model (--experimental-permission, --permission): ` +
      'it loads ZeroMQ\'s native addon, and the writer fsyncs its file, both of which the model refuses (Node 20 allows no fsync ' +
      'at all). Run it without those flags; producers (funnel(), the Python client) work under the model')
  }
  if (name === 'writer') {
    holdSignals()
    holdForTest()
  }
  const mod = await command.load()
  return await mod.main(argv)
}

run().then((code) => {
  process.exitCode = code
}, (err: unknown) => {
  const cwdGone = (err as NodeJS.ErrnoException | undefined)?.syscall === 'uv_cwd'
  const code = err instanceof LogfunnelError ? err.code : cwdGone ? 'LOGFUNNEL_ERR_FILE' : 'LOGFUNNEL_ERR_INTERNAL'
  // A relative path (--file, --state-file ...) resolved in a working directory removed under the process.
  const message = cwdGone
    ? 'a relative path cannot be resolved: the working directory of the process was removed; give absolute paths, or start in a directory that exists'
    : err instanceof Error ? err.message : String(err)
  process.stderr.write(`logfunnel: ${code}: ${message}\n`)
  process.exitCode = err instanceof LogfunnelError && err.code === 'LOGFUNNEL_ERR_USAGE' ? 2 : 1
})
