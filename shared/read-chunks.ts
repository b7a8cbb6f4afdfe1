import { createReadStream } from 'node:fs'
import { createGunzip } from 'node:zlib'
import { LogfunnelError } from './errors.js'

/** Read size of `verify`: large reads keep a file of several hundred MB to few chunks. */
export const READ_CHUNK_BYTES = 1024 * 1024

/**
 * Chunks of the file, gunzipped when its name ends in `.gz`, from byte `start` of the file's
 * content (gunzipped content for `.gz`) on; a read failure (a corrupt or truncated gzip member
 * included) becomes `LOGFUNNEL_ERR_FILE`, the consumer's own errors do not.
 */
export async function * readChunks (path: string, start = 0): AsyncGenerator<Buffer> {
  const gz = path.endsWith('.gz')
  // No `start` unless needed: with one, the stream reads by position, which a pipe
  // (`verify /dev/stdin`, a shell's `<(...)`) refuses with ESPIPE.
  const source = createReadStream(path, { highWaterMark: READ_CHUNK_BYTES, ...(gz || start === 0 ? {} : { start }) })
  let stream: NodeJS.ReadableStream = source
  if (gz) {
    const gunzip = createGunzip({ chunkSize: READ_CHUNK_BYTES })
    source.on('error', (err) => gunzip.destroy(err))
    stream = source.pipe(gunzip)
  }
  let skip = gz ? start : 0
  try {
    for await (const chunk of stream) {
      const buf = chunk as Buffer
      if (skip >= buf.length) {
        skip -= buf.length
        continue
      }
      yield skip > 0 ? buf.subarray(skip) : buf
      skip = 0
    }
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err)
    throw new LogfunnelError('LOGFUNNEL_ERR_FILE', `cannot read log file ${path}: ${reason}`, { cause: err })
  } finally {
    source.destroy()
  }
}
