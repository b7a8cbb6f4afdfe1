import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect } from 'vitest'
import { accepts, byteExactGlobal, MSG_ONLY_TEMPLATE, RSYSLOGD, rsyslogdArgs } from '../../bench/rsyslog.js'
import { exitCode, newlines, spawnCommand, waitFor, type Child } from './children.js'
import { freePortPair } from './ports.js'

/**
 * The shipper's config (docs/shipping.md): imfile follows the rotated files only, matched by a
 * glob that names them in chronological order (`sortFiles` reads them in that order), and
 * forwards each line over TCP with its original text as the message.
 */
export function shipperConfig (workDir: string, glob: string, port: number): string {
  return `${byteExactGlobal(workDir)}
module(load="imfile" sortFiles="on")
main_queue(queue.workerThreads="1")
input(type="imfile" file="${glob}" tag="app" ruleset="ship")
ruleset(name="ship" queue.type="linkedList" queue.workerThreads="1") {
    action(type="omfwd" target="127.0.0.1" port="${port}" protocol="tcp"
           template="RSYSLOG_SyslogProtocol23Format" action.resumeRetryCount="-1")
}
`
}

/** The central rsyslog's config: imtcp on loopback, every message's text into one file. */
export function centralConfig (workDir: string, port: number, file: string): string {
  return `${byteExactGlobal(workDir)}
module(load="imtcp")
${MSG_ONLY_TEMPLATE}
main_queue(queue.workerThreads="1")
input(type="imtcp" address="127.0.0.1" port="${port}" ruleset="central")
ruleset(name="central" queue.type="linkedList" queue.workerThreads="1") {
    action(type="omfile" file="${file}" template="msgOnly")
}
`
}

export interface RsyslogPair {
  /** The central file instance 2 writes. */
  central: string
  /** Lines in the central file now. */
  lines: () => number
  /** SIGTERM to the shipper, then to the central instance (each drains its queues); asserts exit 0. */
  stop: () => Promise<void>
}

function startRsyslogd (dir: string, name: string, config: string): Child {
  const workDir = join(dir, `${name}-work`)
  mkdirSync(workDir)
  const conf = join(dir, `${name}.conf`)
  writeFileSync(conf, config.replaceAll('@WORK@', workDir))
  // Foreground (a child we can stop), a pid file of its own.
  return spawnCommand(RSYSLOGD, rsyslogdArgs(conf, join(dir, `${name}.pid`)))
}

/**
 * Starts the central rsyslogd (imtcp on a free loopback port, writing `<dir>/central.log`), waits
 * until it accepts connections, then the shipper following `glob`. Both are non-daemon instances
 * with their own work directory and pid file, stopped after the test by the children helper.
 */
export async function startRsyslogPair (dir: string, glob: string): Promise<RsyslogPair> {
  const port = await freePortPair()
  const central = join(dir, 'central.log')
  const receiver = startRsyslogd(dir, 'central', centralConfig('@WORK@', port, central))
  await waitFor(async () => await accepts(port) || receiver.proc.exitCode !== null, 10_000, () => `central rsyslogd not listening on ${port}\n${receiver.describe()}`)
  expect(receiver.proc.exitCode, receiver.describe()).toBe(null)
  const shipper = startRsyslogd(dir, 'shipper', shipperConfig('@WORK@', glob, port))
  const lines = (): number => {
    try { return newlines(readFileSync(central)) } catch { return 0 }
  }
  return {
    central,
    lines,
    stop: async () => {
      for (const child of [shipper, receiver]) {
        child.proc.kill('SIGTERM')
        expect(await exitCode(child, 30_000), child.describe()).toBe(0)
      }
    }
  }
}
