import { EventEmitter } from 'node:events'
import type { Stats } from 'node:fs'
import { lstat, readdir, rename, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { debuglog } from 'node:util'
import { unsafeDirReason } from '../shared/dir-check.js'
import { MAX_FRAME_BYTES } from '../shared/options.js'
import { parseSpool, parseSpoolName, parseSpoolPreamble, type SpoolName, type SpoolThread } from '../shared/spool.js'
import { StopRequest, type Wait } from './cancellable-waits.js'
import { appendNoFollow } from './side-files.js'
import { isAlive, isThreadAlive, readSpoolFile, Refusal, spoolFilesReady, versionOf } from './spool-files.js'
import type { SpoolEntryHandling, SpoolIngesterOptions, SpoolSink } from './spool-ingest-options.js'
import { SpoolOrder } from './spool-order.js'
import { SpoolWatch } from './spool-watch.js'

const debug = debuglog('logfunnel')

/** A `.spool.tmp` file whose producer is alive but has not touched it for this long is reported once. */
const STALE_TMP_MS = 60 * 60 * 1000
/**
 * A live process's `.spool.tmp` unchanged for this long is read. One that names the thread
 * writing it (a worker thread's early phase, producer/early-spool.ts) is taken, and removed,
 * once that thread is gone, and left alone while it lives. Any other is written (and kept):
 * its producer hands a segment over 100 ms after its first entry, so this one's thread ended
 * without doing so (a worker thread terminated while it spooled, the process logging on).
 */
export const SETTLED_TMP_MS = 1000
/** Suffix given to a spool entry set aside: no longer a spool name, so never scanned again. */
export const REJECTED_SUFFIX = '.rejected'

/**
 * Ingests producers' spool files: complete `.spool` files, and `.spool.tmp` files whose
 * process is gone (it died while spooling; the process is told by pid and start time, not the
 * pid alone). Files go in order of process, producer (as made) and segment; each entry passes
 * the writer's usual checks and sequence logic, so batches already written are skipped. A file
 * is removed once what it held is in the log file. A torn tail (cut short, or a header that
 * does not decode) is appended to `<name>.torn` and reported, never written.
 *
 * One bad entry never stops the others: anything that is not a regular file (a FIFO, a
 * symlink, a directory), a file owned by a user who may not write the directory, larger than a
 * producer ever writes, unreadable or with a bad preamble, is never followed or read whole: it
 * is renamed `<name>.rejected` and reported once. A file recorded for another endpoint is left
 * where it is (its own writer may ingest it) and reported once.
 *
 * A scan runs at start, when a complete file lands (SpoolWatch) and every `pollMs`: the poll is
 * the fallback (a watch can miss events or be refused) and finds `.spool.tmp` files whose process
 * ended. Files go by process, and a process's producers in the order it made them (SpoolOrder):
 * each file's preamble is read once for that, when it is first listed. The receive loop starts
 * on live messages once the first scan is through (`firstPass`). A wake never starts a scan
 * beside one in progress (the loop scans again after it) and changes nothing of what a scan
 * reads: a producer renames a segment only once it has closed it, and a `.spool.tmp` is read
 * only as before. (Before, a segment waited for the next poll, up to `spoolPollMs`: past its
 * `highWaterMark` a fast producer kept going through the spool.)
 *
 * A stop's drain calls `takeReady()` and waits for `idle`: every file ready at that moment, or
 * landing during the drain, is taken before the writer stops receiving (see Writer.stop()).
 *
 * Events: `'torn'` ({ file, tornBytes, reason, movedTo }); `'rejected'` ({ file, reason,
 * movedTo }), `'foreign'` ({ file, endpoint }), `'stale'` ({ file, pid, ageMs }), each once per
 * file; `'error'` (an fs error of the directory or the sink; the scan retries).
 */
export class SpoolIngester extends EventEmitter {
  readonly dir: string
  #opts: SpoolIngesterOptions
  #sink: SpoolSink
  #stopped = false
  readonly #stop = new StopRequest()
  #loop: Promise<void> | undefined
  #wake: AbortController | undefined
  /** A file landed (or the directory appeared) since the current scan started: scan again at once. */
  #woken = false
  /** The last scan went through every file and nothing woke the ingester since: nothing is left to take. */
  #idle = false
  readonly #idleWaiters = new Set<() => void>()
  #firstPassDone: () => void = () => {}
  /** Settles once the first scan has gone through the files there at start (or the ingester stopped). */
  readonly firstPass = new Promise<void>((resolve) => { this.#firstPassDone = resolve })
  readonly #watch: SpoolWatch
  /** The order files are taken in: by process, then by when each producer was made (see SpoolOrder). */
  readonly #order: SpoolOrder
  /** Names reported once and left in place (foreign, not movable). */
  #reported = new Set<string>()
  /** Files kept for entries that skip ahead, reported once (see #ingest). */
  #gapReported = new Set<string>()
  /** `.spool.tmp` files of live processes reported as stale (see STALE_TMP_MS). */
  #staleReported = new Set<string>()
  /** Settled `.spool.tmp` files of live processes already written, by name: their size and mtime then. */
  #settled = new Map<string, string>()
  /** `.spool.tmp` files of live processes whose thread (SpoolPreamble.thread) was alive when read: checked, not read, again. */
  #threads = new Map<string, SpoolThread>()
  #dirReported = false
  /**
   * Files ingested, entries handed over, torn tails moved aside, files set aside, foreign files
   * left; at stop, the files left that a scan would have taken (see spoolFilesReady).
   */
  readonly counts = { files: 0, entries: 0, torn: 0, rejected: 0, foreign: 0, leftAtStop: 0 }

  constructor (opts: SpoolIngesterOptions, sink: SpoolSink) {
    super()
    this.dir = opts.dir
    this.#opts = opts
    this.#sink = sink
    this.#watch = new SpoolWatch(opts.dir, () => this.#wakeUp())
    this.#order = new SpoolOrder(opts.dir)
  }

  start (): void {
    this.#loop ??= this.#run()
  }

  /**
   * Stops scanning; a file in progress stops between entries and stays for the next start
   * (what was already written from it is skipped then as duplicates). No entry is handed over
   * once this is called, and a wait for room in the write queue ends at once: a file the
   * writer gives up at its stop never makes room again (the stop waited for ever).
   */
  async stop (): Promise<void> {
    this.#stopped = true
    this.#stop.request()
    this.#wake?.abort()
    await this.#loop
    this.counts.leftAtStop = spoolFilesReady(this.dir, this.#reported)
  }

  /**
   * For a stop's drain: scans at once, or again after the scan in progress (it may have listed
   * the directory before the files now there landed), so that once `idle` is true again every
   * file ready at this call has been taken (or set aside, or found to be left by the usual
   * rules: a live producer's `.spool.tmp`, entries that skip ahead of a live producer).
   */
  takeReady (): void {
    this.#wakeUp()
  }

  /**
   * Nothing is left to take: the last scan went through every file (none cut short by an error:
   * the scan after the next `pollMs` retries it) and no file landed since. True when not running.
   */
  get idle (): boolean {
    return this.#idle || this.#stopped || this.#loop === undefined
  }

  /** Settles once `idle` is true (at once if it is). */
  whenIdle (): Wait {
    let settle: () => void = () => {}
    const promise = new Promise<void>((resolve) => { settle = resolve })
    if (this.idle) settle()
    else this.#idleWaiters.add(settle)
    return { promise, cancel: () => this.#idleWaiters.delete(settle) }
  }

  /**
   * One scan: ingests every file that is ready, in order. Resolves false when an error (or a
   * stop) cut it short: the files from there on are left for the next scan.
   */
  async scan (): Promise<boolean> {
    let names: string[]
    let dirStat: Stats
    try {
      const unsafe = unsafeDirReason(this.dir, { groupWritable: true, otherOwnerInGroup: true })
      if (unsafe !== undefined) {
        if (!this.#dirReported) this.emit('error', new Error(`spool directory not used: ${unsafe}`))
        this.#dirReported = true
        return true
      }
      dirStat = await stat(this.dir)
      names = await readdir(this.dir)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.emit('error', err)
        return false
      }
      return true
    }
    // What is remembered about a file goes with it, whoever removed it (its producer hands a
    // settled or stale `.spool.tmp` over itself): a writer that runs for months keeps no trail.
    const listed = new Set(names)
    for (const known of [this.#threads, this.#settled, this.#reported, this.#gapReported, this.#staleReported]) {
      for (const name of known.keys()) if (!listed.has(name)) known.delete(name)
    }
    this.#order.forget(listed)
    const files = await this.#order.sort(names
      .map((name) => ({ name, parsed: parseSpoolName(name) }))
      .filter((f): f is { name: string, parsed: SpoolName } => f.parsed !== undefined && !this.#reported.has(f.name)))
    for (const { name, parsed } of files) {
      if (this.#stopped) return false
      try {
        await this.#ingest(name, parsed, dirStat)
      } catch (err) {
        if (err instanceof Refusal) {
          await this.#refuse(name, err)
          continue
        }
        this.emit('error', err)
        return false
      }
    }
    return !this.#stopped
  }

  async #run (): Promise<void> {
    try {
      while (!this.#stopped) {
        this.#woken = false
        // A poll's scan may find a `.spool.tmp` whose process has ended since.
        this.#idle = false
        // Watched before the scan: a file that lands after the scan has read the directory wakes it.
        this.#watch.refresh()
        const complete = await this.scan()
        this.#firstPassDone()
        // A stop during the scan found no wait to end: it must not start one (a whole pollMs).
        if (this.#woken || this.#stopped) continue
        if (complete) this.#becomeIdle()
        this.#wake = new AbortController()
        await delay(this.#opts.pollMs, undefined, { signal: this.#wake.signal }).catch(() => {})
        this.#wake = undefined
      }
    } finally {
      this.#watch.close()
      this.#firstPassDone()
      this.#becomeIdle()
    }
  }

  /** Ends the wait between scans now (a file landed), or has the scan in progress followed by another. */
  #wakeUp (): void {
    this.#woken = true
    this.#idle = false
    this.#wake?.abort()
  }

  #becomeIdle (): void {
    this.#idle = true
    for (const settle of this.#idleWaiters) settle()
    this.#idleWaiters.clear()
  }

  async #refuse (name: string, refusal: Refusal): Promise<void> {
    const file = join(this.dir, name)
    if (!refusal.setAside) return
    let movedTo: string | null = file + REJECTED_SUFFIX
    try {
      await rename(file, movedTo)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      movedTo = null
      this.#reported.add(name)
    }
    this.counts.rejected++
    this.emit('rejected', { file, reason: refusal.reason, movedTo })
  }

  /**
   * A live process's `.spool.tmp` that is not worth reading now: changed within SETTLED_TMP_MS,
   * or settled and already written as it is. Only the pid is checked here; #ingest checks the
   * start time (a reused pid) once it has read the file.
   */
  async #unsettled (name: string, path: string, pid: number): Promise<boolean> {
    if (!isAlive(pid, null)) return false
    const thread = this.#threads.get(name)
    if (thread !== undefined) return isThreadAlive(pid, thread)
    let st: Stats
    try {
      st = await lstat(path)
    } catch {
      return false
    }
    return Date.now() - st.mtimeMs < SETTLED_TMP_MS || this.#settled.get(name) === versionOf(st)
  }

  async #ingest (name: string, parsedName: SpoolName, dirStat: Stats): Promise<void> {
    const path = join(this.dir, name)
    if (!parsedName.complete && await this.#unsettled(name, path, parsedName.pid)) return
    const read = await readSpoolFile(path, dirStat)
    if (read === undefined) return
    const { buf } = read
    const preamble = parseSpoolPreamble(buf)
    if (preamble === 'bad') throw new Refusal('bad preamble', true)
    // A live process's segment that has settled (see SETTLED_TMP_MS) is written but kept: its
    // process may still add to it or hand it over (what was written is skipped then), and
    // removes it only by ending, after which it is ingested as usual.
    let settled = false
    /** The thread that wrote it is gone, its process living on: taken as a dead process's is. */
    let threadGone = false
    if (!parsedName.complete) {
      const start = typeof preamble === 'object' ? preamble.preamble.start : null
      const thread = typeof preamble === 'object' ? preamble.preamble.thread : undefined
      if (thread !== undefined && isAlive(parsedName.pid, start)) {
        if (isThreadAlive(parsedName.pid, thread)) {
          this.#threads.set(name, thread)
          return
        }
        threadGone = true
      } else if (isAlive(parsedName.pid, start)) {
        const ageMs = Date.now() - read.mtimeMs
        if (ageMs < SETTLED_TMP_MS) return
        if (ageMs > STALE_TMP_MS && !this.#staleReported.has(name)) {
          this.#staleReported.add(name)
          this.emit('stale', { file: path, pid: parsedName.pid, ageMs: Math.round(ageMs) })
        }
        settled = true
      }
    }
    if (typeof preamble === 'object' && !this.#opts.endpointKeys.has(preamble.preamble.endpoint)) {
      this.#reported.add(name)
      this.counts.foreign++
      this.emit('foreign', { file: path, endpoint: preamble.preamble.endpoint, hint: foreignHint(preamble.preamble.endpoint) })
      return
    }
    const parsed = parseSpool(buf, MAX_FRAME_BYTES, typeof preamble === 'object' ? preamble.bytes : 0)
    // Entries that skip ahead of what the writer has of their producer: a live producer still
    // holds the batches before them (it resends them; the file waits for the next scan), an
    // ended one never will: then they are written past the gap, which is reported.
    const ended = threadGone || !isAlive(parsedName.pid, typeof preamble === 'object' ? preamble.preamble.start : null)
    let gapped: { expected: number, seq: number } | undefined
    for (const entry of parsed.entries) {
      if (this.#stopped) return
      const handled: SpoolEntryHandling = { acceptGap: ended }
      this.#sink.handle([entry.headerFrame, entry.payload], handled)
      if (handled.gapped !== undefined) {
        gapped ??= handled.gapped
        continue
      }
      if (handled.skipped !== undefined) {
        this.emit('gap', { file: path, producerId: parsedName.producerIdHex, expected: handled.skipped.expected, seq: handled.skipped.seq, kept: false })
      }
      this.counts.entries++
      const stop = this.#stop.wait()
      await Promise.race([this.#sink.backpressure(), stop.promise])
      stop.cancel()
    }
    if (gapped !== undefined) {
      if (!this.#gapReported.has(name)) {
        this.#gapReported.add(name)
        this.emit('gap', { file: path, producerId: parsedName.producerIdHex, expected: gapped.expected, seq: gapped.seq, kept: true })
      }
      await this.#sink.sync()
      return
    }
    if (settled) {
      // Its tail may be an entry being written: never set aside while the process lives.
      await this.#sink.sync()
      this.#settled.set(name, read.version)
      debug('wrote settled spool file %s of live pid %d: %d entries', name, parsedName.pid, parsed.entries.length)
      return
    }
    if (parsed.torn !== undefined) {
      const movedTo = `${path}.torn`
      await appendNoFollow(movedTo, buf.subarray(parsed.wholeBytes), this.#opts.tornMode)
      this.counts.torn++
      this.emit('torn', { file: path, tornBytes: buf.length - parsed.wholeBytes, reason: parsed.torn, movedTo })
    }
    await this.#sink.sync()
    try {
      await unlink(path)
    } catch (err) {
      // Left in place it would be ingested again every poll (skipped as duplicates): report it once.
      this.#reported.add(name)
      throw err
    }
    this.counts.files++
    this.#gapReported.delete(name)
    this.#settled.delete(name)
    this.#threads.delete(name)
    this.#staleReported.delete(name)
    debug('ingested spool file %s: %d entries', name, parsed.entries.length)
  }
}

/**
 * What to do about a file of another endpoint: for tcp, most often this writer's own producers
 * dialing it through another port (NAT, `docker -p`, a port forward), whose files would otherwise
 * stay for good.
 */
function foreignHint (key: string): string {
  const port = /^tcp:(\d+)$/.exec(key)?.[1]
  const endpoint = port === undefined ? key : `tcp://*:${port}`
  return `recorded for ${endpoint}; if its producers reach this writer through that address (NAT, docker -p, a port forward), ` +
    `start the writer with --spool-endpoint ${endpoint} (spoolEndpoints) to take it; else the writer of that endpoint takes it`
}
