import { closeSync, fstatSync, ftruncateSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { checkSpoolDir } from '../shared/dir-check.js'
import { encodeSpoolEntry, encodeSpoolPreamble, endpointKey, processStartTime, producerMade, SPOOL_SEGMENT_BYTES, SPOOL_SUFFIX, SPOOL_TMP_SUFFIX, spoolFileName } from '../shared/spool.js'
import { makeDirsSync } from '../shared/make-dirs.js'
import { debuglog } from 'node:util'

const debug = debuglog('logfunnel')

/**
 * A segment is handed to the writer (renamed) once it holds SPOOL_SEGMENT_BYTES, or this long
 * after its first entry, so the writer can start on it while spooling lasts. (Test hook: a
 * positive LOGFUNNEL_TEST_SEGMENT_MAX_AGE_MS replaces it, so that test/worker-terminate.test.ts
 * can terminate a thread with its segment open.)
 */
const SEGMENT_MAX_AGE_MS = Number(process.env.LOGFUNNEL_TEST_SEGMENT_MAX_AGE_MS) > 0 ? Number(process.env.LOGFUNNEL_TEST_SEGMENT_MAX_AGE_MS) : 100

/**
 * The producer's side of the spool: appends entries synchronously (it must work inside a
 * process 'exit' handler) to a `.spool.tmp` segment of its own, so no lock is needed, and
 * renames the segment to `.spool` when it is complete: the writer never sees a half-written
 * file from a live producer. Errors of a segment handed over by its timer go to `onError`.
 * Each segment starts with a preamble naming the endpoint it is for and this process (pid and
 * start time), so only that endpoint's writer ingests it, and never while this process lives,
 * and when the producer was made (`made`, SpoolPreamble), so the writer takes this process's
 * producers in the order they were made.
 */
export class SpoolWriter {
  readonly dir: string
  #idHex: string
  #segment = 0
  #fd = -1
  #tmpPath = ''
  #bytes = 0
  #timer: NodeJS.Timeout | undefined
  #onError: (err: unknown) => void
  #preamble: Buffer
  /** Complete segments whose rename failed (EACCES on the directory): tried again at each seal. */
  #unrenamed: string[] = []

  /** `made`: when the producer was made (producerMade() as it made its id); now by default, for a producer made here. */
  constructor (dir: string, producerIdHex: string, endpoint: string, onError: (err: unknown) => void = () => {}, firstSegment = 0, made = producerMade()) {
    this.dir = dir
    this.#segment = firstSegment
    this.#idHex = producerIdHex
    this.#preamble = encodeSpoolPreamble({ endpoint: endpointKey(endpoint), pid: process.pid, start: processStartTime(process.pid) ?? null, made })
    this.#onError = onError
  }

  /** The number the next segment opened gets (another writer for the same producer goes on from it). */
  get nextSegment (): number {
    return this.#fd === -1 ? this.#segment : this.#segment + 1
  }

  /** True while a segment is open (has entries not yet handed over). */
  get open (): boolean {
    return this.#fd !== -1
  }

  /** Appends one entry; throws the fs error (ENOSPC, EACCES), or LOGFUNNEL_ERR_UNSAFE_ENDPOINT, to the caller. */
  append (header: Buffer, payload: Buffer): void {
    if (this.#fd === -1) {
      // Not into a directory others control (a squatted socket directory): LOGFUNNEL_ERR_UNSAFE_ENDPOINT.
      checkSpoolDir(this.dir)
      makeDirsSync(this.dir, 0o700)
      this.#tmpPath = join(this.dir, spoolFileName(this.#idHex, process.pid, this.#segment))
      this.#fd = openSync(this.#tmpPath, 'a', 0o600)
      try {
        this.#writeAll(this.#preamble)
      } catch (err) {
        this.#dropSegment()
        throw err
      }
      this.#timer = setTimeout(() => {
        try {
          this.seal()
        } catch (err) {
          this.#onError(err)
        }
      }, SEGMENT_MAX_AGE_MS)
      this.#timer.unref()
    }
    const buf = Buffer.concat(encodeSpoolEntry(header, payload))
    let written = 0
    try {
      while (written < buf.length) written += writeSync(this.#fd, buf, written)
    } catch (err) {
      this.#abandonEntry(written)
      throw err
    }
    this.#bytes += buf.length
    if (this.#bytes >= SPOOL_SEGMENT_BYTES) this.seal()
  }

  #writeAll (buf: Buffer): void {
    let offset = 0
    while (offset < buf.length) offset += writeSync(this.#fd, buf, offset)
  }

  /**
   * Closes the open segment and hands it to the writer. The segment is done with even when the
   * rename fails (the error is thrown): the next entry goes to a new segment, never after this
   * one's end (its preamble again in the middle of a file made the writer set the rest aside as
   * torn), and the rename is tried again at the next seal. A segment never renamed is ingested
   * as `.spool.tmp` once this process has ended.
   */
  seal (): void {
    if (this.#fd !== -1) this.#endSegment()
    const pending = this.#unrenamed
    this.#unrenamed = []
    let failure: unknown
    for (const tmp of pending) {
      try {
        renameSync(tmp, tmp.slice(0, -SPOOL_TMP_SUFFIX.length) + SPOOL_SUFFIX)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue
        this.#unrenamed.push(tmp)
        failure ??= err
      }
    }
    if (failure !== undefined) throw failure
  }

  /**
   * After an entry failed with `written` of its bytes in the file (ENOSPC, EIO, EFBIG part-way):
   * its caller has the error and keeps the batch, so those bytes are cut off again; handed over,
   * they were a torn tail the writer set aside and reported as a crash's, even when the batch
   * later reached the file. A segment left with no entry is removed (see #dropSegment), one with
   * entries is handed over; the next entry starts a segment of its own. Should the cut fail, the
   * segment goes as it is: the writer writes its whole entries and sets the torn tail aside.
   */
  #abandonEntry (written: number): void {
    let cut = written === 0
    if (!cut) {
      try {
        // The size less what was written: O_APPEND put this entry at the file's end, wherever that was.
        ftruncateSync(this.#fd, fstatSync(this.#fd).size - written)
        cut = true
      } catch (err) {
        debug('cutting a failed spool entry off %s failed: %o', this.#tmpPath, err)
      }
    }
    if (cut && this.#bytes === 0) {
      this.#dropSegment()
      return
    }
    this.#endSegment()
    try { this.seal() } catch {}
  }

  /**
   * Closes and removes a segment whose preamble could not be written (ENOSPC): it holds no
   * entry, and handed over it would be one more empty file for each entry tried while the disk
   * is full (160 in 3 s from 4 producers). Should the unlink fail, the segment number still
   * moves on, so no entry follows a partial preamble.
   */
  #dropSegment (): void {
    const path = this.#closeSegment()
    try {
      unlinkSync(path)
    } catch (err) {
      debug('removing the spool segment %s failed: %o', path, err)
    }
  }

  /** Closes the open segment; it waits in #unrenamed for seal() to hand it over. */
  #endSegment (): void {
    this.#unrenamed.push(this.#closeSegment())
  }

  /** Closes the open segment and moves the segment number on; returns the segment's path. */
  #closeSegment (): string {
    clearTimeout(this.#timer)
    try {
      closeSync(this.#fd)
    } catch {}
    this.#fd = -1
    this.#segment++
    this.#bytes = 0
    return this.#tmpPath
  }
}
