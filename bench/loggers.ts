import { once } from 'node:events'
import pino, { type Logger } from 'pino'
import { benchError } from './child.js'
import type { Strategy } from './strategies.js'

/** Where a producer's logger writes: `file` for the file strategies, `endpoint` for logfunnel, `port` (TCP on 127.0.0.1) for rsyslog. */
export interface LoggerTarget {
  file?: string
  endpoint?: string
  port?: number
}

/** A strategy's pino logger in one producer process. */
export interface BenchLogger {
  log: Logger
  /** Resolves once the logger can take records without waiting for a worker to start. */
  ready: () => Promise<void>
  /** Resolves once every record logged is in the file (for logfunnel: has a receipt). */
  finish: () => Promise<void>
  /**
   * Releases what is left after `finish()` (funnel: its sender thread and sockets), outside
   * the measured window: tearing a logger down is not per-record work.
   */
  close?: () => Promise<void>
}

/**
 * Builds the pino logger of `strategy`. Each strategy loads only its own modules, so that a
 * producer starts (and the benchmark turns over processes) as fast as it can. Rejects with
 * `LOGFUNNEL_ERR_INVALID_OPTION` (from the destination) for a missing file or endpoint.
 *
 * @example
 * ```ts
 * const { log, ready, finish } = await openLogger('flock', { file: '/tmp/x.log' })
 * await ready(); log.info({ seq: 0 }, 'hello'); await finish()
 * ```
 */
export async function openLogger (strategy: Strategy, target: LoggerTarget): Promise<BenchLogger> {
  switch (strategy) {
    case 'funnel':
    case 'funnel-nofsync':
    case 'funnel-checkpoints': {
      const { funnel } = await import('../producer/funnel.js')
      const dest = funnel({ endpoint: target.endpoint })
      // flush() with nothing written waits for the sender's worker thread to be up.
      return { log: pino(dest), ready: async () => await dest.flush(), finish: async () => await dest.flush(), close: async () => await dest.close() }
    }
    case 'funnel-transport':
      return transportLogger({ target: 'logfunnel/transport', options: { endpoint: target.endpoint } })
    case 'pino-transport':
      return transportLogger({ target: 'pino/file', options: { destination: target.file, append: true } })
    case 'flock': {
      const { flockDestination } = await import('../producer/flock-destination.js')
      const dest = flockDestination({ file: required(target.file) })
      return { log: pino(dest), ready: async () => {}, finish: async () => dest.end() }
    }
    case 'rsyslog':
      return await tcpLinesLogger(target.port)
    case 'append':
      return syncFileLogger(required(target.file))
    case 'null':
      return syncFileLogger('/dev/null')
    case 'noop':
      // An object with write() is a destination to pino; this one drops the line it is given.
      return { log: pino({}, { write: (_line: string) => true }), ready: async () => {}, finish: async () => {} }
  }
}

function syncFileLogger (dest: string): BenchLogger {
  const sonic = pino.destination({ dest, sync: true, append: true })
  return {
    log: pino(sonic),
    ready: async () => {},
    finish: async () => {
      sonic.flushSync()
      sonic.end()
    }
  }
}

/**
 * pino's lines, newline-framed, over one TCP connection to 127.0.0.1:port (rsyslog's imtcp).
 * The socket is pino's destination as it is: a write the kernel cannot take at once waits in
 * the socket's own buffer in this process, and `finish()` (end()) resolves once all of it has
 * been handed to the kernel; the harness then waits for the bytes in rsyslog's file.
 */
async function tcpLinesLogger (port: number | undefined): Promise<BenchLogger> {
  if (port === undefined) throw benchError('the rsyslog strategy needs a port')
  const { connect } = await import('node:net')
  const socket = connect({ port, host: '127.0.0.1' })
  const connected = once(socket, 'connect')
  // Before the connection is up pino would still write into the socket's buffer; ready() waits for it.
  return {
    log: pino(socket),
    ready: async () => { await connected },
    finish: async () => {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject)
        socket.end(() => resolve())
      })
    },
    close: async () => {
      if (!socket.closed) await once(socket, 'close')
    }
  }
}

/** pino's transport stream, with thread-stream's `ref()` that its bundled types leave out. */
type Transport = ReturnType<typeof pino.transport> & { ref: () => void }

function transportLogger (options: { target: string, options: Record<string, unknown> }): BenchLogger {
  const transport = pino.transport(options) as Transport
  const log = pino(transport)
  const flush = async (): Promise<void> => {
    await new Promise<void>((resolve, reject) => log.flush((err) => err === undefined || err === null ? resolve() : reject(err)))
  }
  return {
    log,
    // A flush waits for the transport's worker to be ready, and finds nothing to send.
    ready: flush,
    finish: async () => {
      await flush()
      const closed = once(transport, 'close')
      // pino unrefs the transport's worker: without ref() the event loop can empty before
      // 'close' (the process then exits 13, an unsettled top-level await).
      transport.ref()
      transport.end()
      await closed
    }
  }
}

function required (file: string | undefined): string {
  // The destinations check their options; an empty string makes them fail with their own code.
  return file ?? ''
}
