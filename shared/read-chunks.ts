import { closeSync, fstatSync, openSync, read, readSync } from 'node:fs'
import { Readable } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { LogfunnelError } from './errors.js'

/** Read size of `verify`: large reads keep a file of several hundred MB to few chunks. */
export const READ_CHUNK_BYTES = 1024 * 1024
/** gzip's magic bytes (RFC 1952, 2.3.1: ID1 ID2). */
const GZIP_MAGIC = [0x1f, 0x8b]

/** A file of a set, opened before any of the set is read (see `holdFiles`). */
export interface HeldFile {
  path: string
  fd: number
  /** A regular file: read by position, so it can be read more than once. A pipe cannot. */
  seekable: boolean
}

function fileError (path: string, err: unknown): LogfunnelError {
  const reason = err instanceof Error ? err.message : String(err)
  return new LogfunnelError('LOGFUNNEL_ERR_FILE', `cannot read log file ${path}: ${reason}`, { cause: err })
}

/**
 * Opens every file of a set before any is read, so a set still being written and rotated is
 * read as it was when `verify` began: the current file renamed away meanwhile (a rotation), or
 * a rotated file gzipped and removed, is still read whole through its descriptor. Read by name
 * one after another, a rotation during the read left that file's records unread, reported as
 * gaps. Throws `LOGFUNNEL_ERR_FILE` (nothing left open) when one cannot be opened.
 */
export function holdFiles (paths: string[]): HeldFile[] {
  const held: HeldFile[] = []
  let current = ''
  try {
    for (const path of paths) {
      current = path
      const fd = openSync(path, 'r')
      held.push({ path, fd, seekable: false })
      const st = fstatSync(fd)
      if (st.isDirectory()) throw Object.assign(new Error(`EISDIR: illegal operation on a directory, read '${path}'`), { code: 'EISDIR' })
      held[held.length - 1].seekable = st.isFile()
    }
  } catch (err) {
    releaseFiles(held)
    throw fileError(current, err)
  }
  return held
}

/** Closes what `holdFiles` opened. */
export function releaseFiles (held: HeldFile[]): void {
  for (const f of held.splice(0)) {
    try { closeSync(f.fd) } catch {}
  }
}

function startsWithGzipMagic (buf: Buffer): boolean {
  return buf.length >= GZIP_MAGIC.length && buf[0] === GZIP_MAGIC[0] && buf[1] === GZIP_MAGIC[1]
}

/** The first bytes of a regular file, read by position (the descriptor's offset is left alone). */
function peek (fd: number): Buffer {
  const buf = Buffer.alloc(GZIP_MAGIC.length)
  return buf.subarray(0, readSync(fd, buf, 0, buf.length, 0))
}

/** Reads of `fd` from `position` on (`null`: where the descriptor stands, for a pipe), up to its end. */
async function * rawChunks (fd: number, position: number | null): AsyncGenerator<Buffer> {
  for (;;) {
    const buf = Buffer.allocUnsafe(READ_CHUNK_BYTES)
    const n = await new Promise<number>((resolve, reject) => read(fd, buf, 0, buf.length, position, (err, bytes) => err === null ? resolve(bytes) : reject(err)))
    if (n === 0) return
    if (position !== null) position += n
    yield buf.subarray(0, n)
  }
}

/**
 * Chunks of the file, gunzipped when its name ends in `.gz` or its content starts with gzip's
 * magic bytes (`verify /dev/stdin < app.log.3.gz`, a pipe from `cat`), from byte `start` of the
 * file's content (gunzipped content for gzip) on; a read failure (a corrupt or truncated gzip
 * member included) becomes `LOGFUNNEL_ERR_FILE`, the consumer's own errors do not. A `HeldFile`
 * is read through its descriptor, which stays open; a path is opened and closed here.
 */
export async function * readChunks (file: string | HeldFile, start = 0): AsyncGenerator<Buffer> {
  const held = typeof file === 'string' ? holdFiles([file]) : [file]
  const { path, fd, seekable } = held[0]
  const streams: Array<{ destroy: () => void }> = []
  let raw: AsyncGenerator<Buffer> | undefined
  try {
    // A regular file is read by position, and from 0 too (its descriptor may have been read
    // before); a pipe (`verify /dev/stdin`, a shell's `<(...)`) by no position, which it would
    // refuse with ESPIPE: its first chunk tells whether it is gzip.
    let gz = path.endsWith('.gz') || (seekable && startsWithGzipMagic(peek(fd)))
    raw = rawChunks(fd, seekable ? (gz ? 0 : start) : null)
    const chunks = raw
    let head: Buffer[] = []
    if (!seekable && !gz) {
      let bytes = 0
      while (bytes < GZIP_MAGIC.length) {
        const next = await chunks.next()
        if (next.done === true) break
        head.push(next.value)
        bytes += next.value.length
      }
      gz = startsWithGzipMagic(Buffer.concat(head))
    }
    async function * rest (): AsyncGenerator<Buffer> {
      yield * head
      head = []
      for (let next = await chunks.next(); next.done !== true; next = await chunks.next()) yield next.value
    }
    let content: AsyncIterable<Buffer> = rest()
    if (gz) {
      const gunzip = createGunzip({ chunkSize: READ_CHUNK_BYTES })
      const input = Readable.from(rest(), { objectMode: false })
      streams.push(gunzip, input)
      input.on('error', (err) => gunzip.destroy(err))
      content = input.pipe(gunzip)
    }
    let skip = gz || !seekable ? start : 0
    for await (const buf of content) {
      if (skip >= buf.length) {
        skip -= buf.length
        continue
      }
      yield skip > 0 ? buf.subarray(skip) : buf
      skip = 0
    }
  } catch (err) {
    throw err instanceof LogfunnelError ? err : fileError(path, err)
  } finally {
    for (const s of streams) s.destroy()
    await raw?.return(undefined)
    if (typeof file === 'string') releaseFiles(held)
  }
}
