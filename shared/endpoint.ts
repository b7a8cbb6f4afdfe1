import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { InvalidOptionError } from './errors.js'

/** Linux `sockaddr_un.sun_path` is 108 bytes including the terminating NUL. */
const MAX_IPC_PATH_BYTES = 107
const RECEIPT_SUFFIX = '.receipts'

/** The directory logfunnel keeps its default ipc sockets and lock files in. */
export function runtimeDir (): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'user'
  return join(tmpdir(), `logfunnel-${uid}`)
}

/** `ipc://<os.tmpdir()>/logfunnel-<uid>/writer.sock` */
export function defaultEndpoint (): string {
  return `ipc://${join(runtimeDir(), 'writer.sock')}`
}

export type ParsedEndpoint =
  | { transport: 'ipc', path: string }
  | { transport: 'tcp', host: string, port: number }

/** Parses and checks an endpoint; `name` is the option path used in the error. */
export function parseEndpoint (endpoint: string, name = 'endpoint'): ParsedEndpoint {
  if (typeof endpoint !== 'string') {
    throw new InvalidOptionError(`${name} must be a string like ipc:///path/to/writer.sock or tcp://127.0.0.1:5555`)
  }
  if (endpoint.startsWith('ipc://')) {
    const path = endpoint.slice('ipc://'.length)
    if (!path.startsWith('/')) {
      throw new InvalidOptionError(`${name} must use an absolute ipc path, got ${endpoint}`)
    }
    if (Buffer.byteLength(path) + RECEIPT_SUFFIX.length > MAX_IPC_PATH_BYTES) {
      throw new InvalidOptionError(
        `${name} ipc path must be at most ${MAX_IPC_PATH_BYTES - RECEIPT_SUFFIX.length} bytes (the OS limit for socket paths), got ${endpoint}`)
    }
    return { transport: 'ipc', path }
  }
  const tcp = /^tcp:\/\/([^:/]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(endpoint)
  if (tcp !== null) {
    const port = Number(tcp[2])
    if (port < 1 || port > 65534) {
      throw new InvalidOptionError(`${name} port must be between 1 and 65534 (the receipt socket takes port + 1), got ${endpoint}`)
    }
    return { transport: 'tcp', host: tcp[1] as string, port }
  }
  throw new InvalidOptionError(`${name} must be ipc:///absolute/path or tcp://host:port, got ${endpoint}`)
}

/** The receipt endpoint beside a data endpoint: `<ipc path>.receipts`, or tcp port + 1. */
export function receiptEndpointFor (endpoint: string): string {
  const parsed = parseEndpoint(endpoint)
  if (parsed.transport === 'ipc') return `ipc://${parsed.path}${RECEIPT_SUFFIX}`
  return `tcp://${parsed.host}:${parsed.port + 1}`
}

/** The lock file a writer holds while it serves an endpoint. */
export function lockPathFor (endpoint: string): string {
  const parsed = parseEndpoint(endpoint)
  if (parsed.transport === 'ipc') return `${parsed.path}.lock`
  return join(runtimeDir(), `tcp-${parsed.host.replace(/[^0-9A-Za-z.-]/g, '_')}-${parsed.port}.lock`)
}
