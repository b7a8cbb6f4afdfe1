import { createHash } from 'node:crypto'
import { lookup } from 'node:dns/promises'
import { closeSync, openSync, realpathSync, unlinkSync } from 'node:fs'
import { connect, createServer, isIP, type Server } from 'node:net'
import { basename, dirname, join } from 'node:path'
import { debuglog } from 'node:util'
import { lockPathFor, parseEndpoint } from '../shared/endpoint.js'
import { EndpointInUseError, FileError, FileInUseError } from '../shared/errors.js'
import { makeDirs } from '../shared/make-dirs.js'
import { hasFlock, loadFlock } from '../shared/optional-flock.js'

/**
 * What keeps a second writer off an endpoint: binding an ipc path a second time silently takes
 * the socket from the first writer, so each writer holds a lock for as long as it runs, and the
 * kernel drops it when the process dies, however it dies. The same lock, named after the log
 * file, keeps a second writer (on another endpoint) off the file: two writers appending to one
 * file share its state file and rotate it under each other (a rename replaces the other's
 * rotated file: 1,800 of 40,000 receipted records were lost that way with `--rotate-size 64K`).
 * No native addon is needed:
 *
 * - Linux: a unix socket in the abstract namespace, named after the lock path (its directory
 *   resolved). bind(2) is atomic and the name vanishes with the process. The namespace is per
 *   network namespace, so for what is named by a path (the log file, an ipc endpoint) the
 *   writer also binds a socket file at the lock path, which any process that sees the file
 *   can connect to: two writers in two containers (two network namespaces) sharing a log
 *   volume are refused too. That second lock is replaced when stale, as on macOS below, and
 *   skipped when the file system cannot hold it (a path too long for a socket, EPERM).
 *   Node before 20.8 cannot bind an abstract name (abstractSocketsWork): there, as elsewhere.
 * - Elsewhere (macOS): flock(2) on the lock file through fs-ext when it is installed; without
 *   it, a unix socket file at the lock path. A socket file left by a dead writer refuses
 *   connections and is replaced; two writers that start on the same stale file within the
 *   same few microseconds could both succeed, which is why fs-ext is preferred there.
 *
 * `acquire()` rejects with EndpointInUseError (LOGFUNNEL_ERR_ENDPOINT_IN_USE) when another
 * writer holds the lock, `acquireFile()` with FileInUseError (LOGFUNNEL_ERR_FILE_IN_USE); both
 * with FileError (LOGFUNNEL_ERR_FILE) when the lock cannot be taken.
 */
export class EndpointLock {
  readonly path: string
  #release: () => void

  /** Use `EndpointLock.acquire()`. */
  constructor (path: string, release: () => void) {
    this.path = path
    this.#release = release
  }

  static async acquire (endpoint: string, path: string): Promise<EndpointLock> {
    return await lock(path, (cause) => new EndpointInUseError(endpoint, path, { cause }), parseEndpoint(endpoint).transport === 'ipc')
  }

  /** The lock of the log file `file`: `.<name>.logfunnel-lock` beside it, or beside the file a symlink there names (its directory is made first). */
  static async acquireFile (file: string): Promise<EndpointLock> {
    await makeDirs(dirname(file)).catch((err: unknown) => { throw new FileError(file, { cause: err, op: 'mkdir' }) })
    // A log path that is a symlink (the writer follows it) locks the file it names.
    const target = resolvedOrAsIs(file)
    const path = join(dirname(target), `.${basename(target)}.logfunnel-lock`)
    return await lock(path, (cause) => new FileInUseError(file, path, { cause }), true)
  }

  release (): void {
    this.#release()
    this.#release = () => {}
  }
}

/**
 * Every lock a writer holds while it runs: its data endpoint, its receipt endpoint and its log
 * file. Both endpoints take the lock named after the endpoint alone, so an endpoint is held once
 * whichever role it has in either writer (binding another writer's receipt endpoint would take
 * its receipts, and unlink its socket file on stop). A tcp host name is named by the address it
 * resolves to, the one the bind takes (see bindAddress()). Rejects with the first one's error
 * (LOGFUNNEL_ERR_ENDPOINT_IN_USE, LOGFUNNEL_ERR_FILE_IN_USE), holding none.
 */
export async function acquireWriterLocks (endpoint: string, receiptEndpoint: string, file: string): Promise<{ release: () => void }> {
  const held: EndpointLock[] = []
  const release = (): void => {
    for (const lock of held.splice(0).reverse()) lock.release()
  }
  try {
    held.push(await EndpointLock.acquire(endpoint, lockPathFor(await bindAddress(endpoint))))
    held.push(await EndpointLock.acquire(receiptEndpoint, lockPathFor(await bindAddress(receiptEndpoint))))
    held.push(await EndpointLock.acquireFile(file))
  } catch (err) {
    release()
    throw err
  }
  return { release }
}

type InUse = (cause: unknown) => Error

const debug = debuglog('logfunnel')

/**
 * A tcp endpoint with its host name replaced by the address the bind takes (dns.lookup's first,
 * as net.Server.listen() does), so that `tcp://localhost:P` and `tcp://127.0.0.1:P` are one lock.
 * Before, they were two: the second writer got past its lock and failed to bind
 * (LOGFUNNEL_ERR_BIND, EADDRINUSE) instead of being told the endpoint is served
 * (LOGFUNNEL_ERR_ENDPOINT_IN_USE). A name that does not resolve stays as it is (its bind fails).
 */
async function bindAddress (endpoint: string): Promise<string> {
  const parsed = parseEndpoint(endpoint)
  if (parsed.transport !== 'tcp' || parsed.host === '*' || parsed.host.startsWith('[') || isIP(parsed.host) !== 0) return endpoint
  try {
    const { address, family } = await lookup(parsed.host)
    return `tcp://${family === 6 ? `[${address}]` : address}:${parsed.port}`
  } catch {
    return endpoint
  }
}

function resolvedOrAsIs (file: string): string {
  try {
    return realpathSync(file)
  } catch {
    return file
  }
}

/** `byPath`: what the lock guards is named by a path (seen from other network namespaces too). */
async function lock (path: string, inUse: InUse, byPath: boolean): Promise<EndpointLock> {
  if (process.platform === 'linux' && await abstractSocketsWork()) {
    const abstract = await abstractSocketLock(path, inUse)
    if (!byPath) return abstract
    const file = await socketFileLock(path, inUse).catch((err: unknown) => {
      if (!(err instanceof FileError)) {
        abstract.release()
        throw err
      }
      debug('no socket file lock at %s (the abstract one alone holds): %o', path, err)
      return undefined
    })
    return new EndpointLock(path, () => {
      file?.release()
      abstract.release()
    })
  }
  if (hasFlock()) return flockLock(path, inUse)
  return await socketFileLock(path, inUse)
}

let abstractProbe: Promise<boolean> | undefined

/**
 * Whether this Node binds abstract socket names as given. Node before 20.8 (nodejs/node#49667,
 * libuv's uv_pipe_bind2) passed the name through strlen(), so every `\0name` bound the same
 * empty name: a writer's second lock (its receipt endpoint's) found it taken, and the writer
 * never started on Node 20.0 to 20.7 (LOGFUNNEL_ERR_ENDPOINT_IN_USE naming its own receipt
 * endpoint), nor did a second writer on another endpoint anywhere on the host. Probed once, by
 * binding two names: where both cannot be held, the locks are socket files (or flock) as on macOS.
 */
async function abstractSocketsWork (): Promise<boolean> {
  abstractProbe ??= (async () => {
    const name = `\0logfunnel-probe-${process.pid}-${createHash('sha256').update(String(Math.random())).digest('hex').slice(0, 16)}`
    const held: Server[] = []
    try {
      held.push(await listen(`${name}-a`))
      held.push(await listen(`${name}-b`))
      return true
    } catch (err) {
      debug('abstract socket names are not bound as given (Node before 20.8?): the locks are socket files: %o', err)
      return false
    } finally {
      for (const server of held) server.close()
    }
  })()
  return await abstractProbe
}

async function abstractSocketLock (path: string, inUse: InUse): Promise<EndpointLock> {
  let resolved: string
  try {
    resolved = join(realpathSync(dirname(path)), basename(path))
  } catch (err) {
    throw new FileError(path, { cause: err })
  }
  const name = '\0logfunnel-lock-' + createHash('sha256').update(resolved).digest('hex')
  const server = await listen(name).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EADDRINUSE') throw inUse(err)
    throw new FileError(path, { cause: err })
  })
  return lockOf(path, server, () => {})
}

function flockLock (path: string, inUse: InUse): EndpointLock {
  const flockSync = loadFlock('the endpoint lock')
  let fd: number
  try {
    fd = openSync(path, 'a', 0o600)
  } catch (err) {
    throw new FileError(path, { cause: err })
  }
  try {
    flockSync(fd, 'exnb')
  } catch (err) {
    closeSync(fd)
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EAGAIN' || code === 'EWOULDBLOCK') throw inUse(err)
    throw new FileError(path, { cause: err })
  }
  return new EndpointLock(path, () => closeSync(fd))
}

/** Exported for tests: the lock where there is neither an abstract namespace nor fs-ext. */
export async function socketFileLock (path: string, inUse: InUse): Promise<EndpointLock> {
  const refused = (err: unknown): Error => (err as NodeJS.ErrnoException).code === 'EADDRINUSE'
    ? inUse(err)
    : new FileError(path, { cause: err })
  const server = await listen(path).catch(async (err: unknown) => {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || await answers(path)) throw refused(err)
    // A dead writer's socket file refuses connections: replace it, once.
    try {
      unlinkSync(path)
    } catch (unlinkErr) {
      if ((unlinkErr as NodeJS.ErrnoException).code !== 'ENOENT') throw new FileError(path, { cause: unlinkErr })
    }
    return await listen(path).catch((again: unknown) => { throw refused(again) })
  })
  return lockOf(path, server, () => unlinkSync(path))
}

function lockOf (path: string, server: Server, cleanup: () => void): EndpointLock {
  // The lock must not keep the process alive by itself.
  server.unref()
  return new EndpointLock(path, () => {
    server.close()
    try { cleanup() } catch {}
  })
}

async function listen (name: string): Promise<Server> {
  const server = createServer((socket) => socket.destroy())
  return await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(name, () => {
      server.off('error', reject)
      resolve(server)
    })
  })
}

/** Whether a live process listens on the socket file (a dead writer's file refuses). */
async function answers (path: string): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect(path)
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}
