import { existsSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Worker, type MessagePort } from 'node:worker_threads'
import { LogfunnelError } from '../shared/errors.js'
import { moduleBase } from '../shared/module-base.js'
import { OWN_STDIO } from './stdio-lines.js'

/**
 * The key of `globalThis.__bundlerPathsOverrides` naming the sender thread's file: pino's own
 * convention for bundles (thread-stream reads `thread-stream-worker` there, pino `pino-worker`),
 * which bundler plugins such as esbuild-plugin-pino fill in.
 */
export const SENDER_THREAD_KEY = 'logfunnel-sender-thread'

/**
 * The sender thread's module: where `globalThis.__bundlerPathsOverrides` says, else
 * `sender-thread.js` beside this module (beside the bundle, in a bundle). Throws
 * LOGFUNNEL_ERR_MISSING_DEPENDENCY when there is no such file: a bundler that was not told to
 * emit it. Before, funnel() returned, the thread failed to start with a bare MODULE_NOT_FOUND
 * warning, and every record logged was lost at exit.
 */
export function senderThreadFile (importMetaUrl: string | undefined): URL {
  const overrides = (globalThis as { __bundlerPathsOverrides?: Record<string, unknown> }).__bundlerPathsOverrides
  const override = overrides?.[SENDER_THREAD_KEY]
  const file = typeof override === 'string'
    ? (override.startsWith('file:') ? new URL(override) : pathToFileURL(override))
    : new URL('./sender-thread.js', moduleBase(importMetaUrl))
  if (existsSync(file)) return file
  const where = typeof override === 'string' ? `globalThis.__bundlerPathsOverrides['${SENDER_THREAD_KEY}'] names` : 'funnel() looks for'
  throw new LogfunnelError('LOGFUNNEL_ERR_MISSING_DEPENDENCY',
    `funnel() cannot start its sender thread: ${where} ${fileURLToPath(file)}, and there is no such file. ` +
    'In an application bundled into one file, emit node_modules/logfunnel/dist/producer/sender-thread.js as an entry point of its own ' +
    `named sender-thread.js beside the bundle, or set globalThis.__bundlerPathsOverrides['${SENDER_THREAD_KEY}'] to its path, ` +
    'or leave logfunnel out of the bundle (external); see docs/producer.md#bundlers')
}

/** Starts the sender thread from `file`, handing it `port` (also in `workerData`; none for a hosted one). */
export function spawnSenderThread (file: URL, port: MessagePort | undefined, workerData: object): Worker {
  return new Worker(file, {
    // None of the application's options: inherited, `--input-type` (`node --input-type=module -e`)
    // keeps a worker from starting from a file, and `-r`/`--import` preloads (agents, loaders)
    // have no business in the sender. An empty list is always valid; a filtered copy of the
    // parent's is not (V8 flags such as --max-old-space-size are refused when listed).
    execArgv: [],
    // NODE_OPTIONS is parsed again for a worker, from its env: its `--require`/`--import` ran in
    // the sender too, and a preload that sets up a funnel() logger started a sender thread in
    // every sender thread, without end (47 threads in the first second, by hand).
    env: withoutNodeOptions(process.env),
    workerData,
    transferList: port === undefined ? [] : [port],
    ...OWN_STDIO // not piped into process.stdout/stderr: a broken stderr ended the process (stdio-lines.ts)
  })
}

/** The environment for the sender thread: the process's, without NODE_OPTIONS (see spawnSenderThread). */
function withoutNodeOptions (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env }
  delete copy.NODE_OPTIONS
  return copy
}
