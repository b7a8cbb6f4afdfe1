import { spawnSync } from 'node:child_process'

/**
 * Whether a program the interop tests need is here (`check` exits 0). Under CI (`CI` set) a
 * missing one throws, so the test file fails loudly instead of skipping: `.ci/run` installs
 * the Debian packages. Elsewhere it warns and the caller skips.
 *
 * @example
 * ```ts
 * const HAVE_PYZMQ = haveProgram('python3-zmq', PYTHON, ['-c', 'import zmq'])
 * describe.runIf(HAVE_PYZMQ)('Python client', () => { ... })
 * ```
 */
export function haveProgram (debianPackage: string, command: string, check: string[]): boolean {
  const result = spawnSync(command, check, { stdio: 'pipe', timeout: 10_000 })
  if (result.status === 0) return true
  const why = `${command} ${check.join(' ')} failed (${result.error?.message ?? String(result.stderr).trim().split('\n').at(-1)}): install the Debian package ${debianPackage}`
  if (process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false') throw new Error(`CI: ${why}`)
  console.warn(`skipping: ${why}`)
  return false
}

/** Debian's interpreter, with python3-zmq: not the python3 first on PATH, which may lack pyzmq. */
export const PYTHON = '/usr/bin/python3'
export const LOGROTATE = '/usr/sbin/logrotate'
export { RSYSLOGD } from '../../bench/rsyslog.js'
