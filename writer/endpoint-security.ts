import { chmodSync, unlinkSync } from 'node:fs'
import { unsafeDirReason } from '../shared/dir-check.js'
import { dirname } from 'node:path'
import { lockPathFor, parseEndpoint } from '../shared/endpoint.js'
import { BindError, UnsafeEndpointError } from '../shared/errors.js'
import type { ResolvedWriterOptions } from '../shared/options.js'
import { makeDirsSync } from '../shared/make-dirs.js'
import { debuglog } from 'node:util'

const debug = debuglog('logfunnel')

/** A directory the writer creates: only its user may enter it. */
const PRIVATE_DIR_MODE = 0o700
/** ... or, when `socketMode` lets a group connect, that group may also pass through (search only). */
const GROUP_DIR_MODE = 0o710
const GROUP_BITS = 0o070

/**
 * Creates and checks the directories of the writer's ipc sockets and of their lock files, before
 * anything is bound in them. A directory the writer creates gets mode 0700 (0710 when
 * `socketMode` gives a group access, since connecting needs search permission on the directory).
 * An existing directory must be owned by the writer's user (or root) and not be writable by
 * others; writable by its group only when `socketMode` trusts a group.
 *
 * Why the directory and not only the socket file: the socket file gets its mode after bind,
 * and whoever can write the directory can replace the socket (and read what producers send).
 *
 * @throws UnsafeEndpointError (LOGFUNNEL_ERR_UNSAFE_ENDPOINT) for a directory that fails the check.
 * @throws BindError (LOGFUNNEL_ERR_BIND) when a directory cannot be created.
 */
export function prepareEndpointDirs (options: ResolvedWriterOptions): void {
  const { endpoint, receiptEndpoint, socketMode } = options
  const groupAccess = (socketMode & GROUP_BITS) !== 0
  const dirs = new Map<string, { endpoint: string, groupAccess: boolean }>()
  for (const ep of [endpoint, receiptEndpoint]) {
    const parsed = parseEndpoint(ep)
    if (parsed.transport === 'ipc') dirs.set(dirname(parsed.path), { endpoint: ep, groupAccess })
  }
  for (const ep of [endpoint, receiptEndpoint]) {
    const lockDir = dirname(lockPathFor(ep))
    if (!dirs.has(lockDir)) dirs.set(lockDir, { endpoint: ep, groupAccess: false })
  }
  for (const [dir, { endpoint: ep, groupAccess: group }] of dirs) secureDir(dir, ep, group)
}

function secureDir (dir: string, endpoint: string, groupAccess: boolean): void {
  const mode = groupAccess ? GROUP_DIR_MODE : PRIVATE_DIR_MODE
  let reason
  try {
    // mkdir's mode is filtered by the umask; chmod gives the directory the mode meant for it.
    if (makeDirsSync(dir, mode) !== undefined) chmodSync(dir, mode)
    reason = unsafeDirReason(dir, { groupWritable: groupAccess, otherOwnerInGroup: false })
  } catch (err) {
    throw new BindError(endpoint, { cause: err })
  }
  if (reason !== undefined) throw new UnsafeEndpointError(endpoint, reason)
}

/**
 * Gives a bound ipc socket file its `socketMode` (libzmq creates it under the umask).
 * @throws BindError (LOGFUNNEL_ERR_BIND) when the mode cannot be set.
 */
export function restrictSocketFile (endpoint: string, socketMode: number): void {
  const parsed = parseEndpoint(endpoint)
  if (parsed.transport !== 'ipc') return
  try {
    chmodSync(parsed.path, socketMode)
  } catch (err) {
    throw new BindError(endpoint, { cause: err })
  }
}

/**
 * Removes a bound ipc socket's file once its socket is closed. libzmq removes it only when its
 * context ends, which a writer's process does not wait for; called while the endpoint lock is
 * held, so the file is this writer's. Nothing to do for tcp, or when the file is gone.
 */
export function removeSocketFile (endpoint: string): void {
  const parsed = parseEndpoint(endpoint)
  if (parsed.transport !== 'ipc') return
  try {
    unlinkSync(parsed.path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') debug('removing the socket file %s failed: %o', parsed.path, err)
  }
}

/** 127.0.0.0/8, ::1 and `localhost`: the addresses only this machine can reach. */
export function isLoopbackHost (host: string): boolean {
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host)
}

/**
 * Refuses a tcp endpoint beyond loopback (`*`, `0.0.0.0`, a LAN address, a host name) unless
 * CURVE is on: without it, anyone who can reach the port could write to the log, and read the
 * receipts.
 *
 * @throws UnsafeEndpointError (LOGFUNNEL_ERR_UNSAFE_ENDPOINT)
 */
export function checkExposure (options: ResolvedWriterOptions): void {
  if (options.curveSecretKey !== null) return
  for (const ep of [options.endpoint, options.receiptEndpoint]) {
    const parsed = parseEndpoint(ep)
    if (parsed.transport === 'tcp' && !isLoopbackHost(parsed.host)) {
      throw new UnsafeEndpointError(ep, `${parsed.host} is not a loopback address; binding beyond loopback needs CURVE ` +
        '(curveSecretKey and curveAllowedKeys, see logfunnel keygen), or bind 127.0.0.1 for local producers')
    }
  }
}
