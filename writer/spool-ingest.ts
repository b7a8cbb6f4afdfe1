import { EventEmitter } from 'node:events'
import { appendFile, readdir, readFile, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { debuglog } from 'node:util'
import { parseSpool, parseSpoolName, type SpoolName } from '../shared/spool.js'

const debug = debuglog('logfunnel')

/** What the ingester needs from the writer. */
export interface SpoolSink {
  /** Handles one entry exactly as a two-frame network message. */
  handle: (frames: Buffer[]) => void
  /** Resolves when what was handed over so far is in the file (as durable as a receipt). */
  sync: () => Promise<void>
  /** Resolves when the write queue has room again. */
  backpressure: () => Promise<void>
}

/**
 * Ingests producers' spool files: complete `.spool` files, and `.spool.tmp` files whose
 * process is gone (it died while spooling). Files go in order of producer and segment; each
 * entry passes the writer's usual checks and sequence logic, so batches already written are
 * skipped. A file is removed once what it held is in the log file. A torn tail (cut short, or a header
 * that does not decode) is appended to `<name>.torn` and reported, never written.
 *
 * Events: `'torn'` ({ file, tornBytes, movedTo }), `'error'` (an fs error; the scan retries).
 */
export class SpoolIngester extends EventEmitter {
  readonly dir: string
  #maxFrameBytes: number
  #pollMs: number
  #sink: SpoolSink
  #stopped = false
  #loop: Promise<void> | undefined
  #wake: AbortController | undefined
  /** Files ingested, entries handed over, torn tails moved aside. */
  readonly counts = { files: 0, entries: 0, torn: 0 }

  constructor (dir: string, maxFrameBytes: number, pollMs: number, sink: SpoolSink) {
    super()
    this.dir = dir
    this.#maxFrameBytes = maxFrameBytes
    this.#pollMs = pollMs
    this.#sink = sink
  }

  start (): void {
    this.#loop ??= this.#run()
  }

  /**
   * Stops scanning; a file in progress stops between entries and stays for the next start
   * (what was already written from it is skipped then as duplicates).
   */
  async stop (): Promise<void> {
    this.#stopped = true
    this.#wake?.abort()
    await this.#loop
  }

  /** One scan: ingests every file that is ready, in order. */
  async scan (): Promise<void> {
    let names: string[]
    try {
      names = await readdir(this.dir)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.emit('error', err)
      return
    }
    const files = names
      .map((name) => ({ name, parsed: parseSpoolName(name) }))
      .filter((f): f is { name: string, parsed: SpoolName } => f.parsed !== undefined && (f.parsed.complete || !alive(f.parsed.pid)))
      .sort((a, b) => a.parsed.producerIdHex.localeCompare(b.parsed.producerIdHex) || a.parsed.segment - b.parsed.segment)
    for (const { name } of files) {
      if (this.#stopped) return
      try {
        await this.#ingest(name)
      } catch (err) {
        this.emit('error', err)
        return
      }
    }
  }

  async #run (): Promise<void> {
    while (!this.#stopped) {
      await this.scan()
      this.#wake = new AbortController()
      await delay(this.#pollMs, undefined, { signal: this.#wake.signal }).catch(() => {})
    }
  }

  async #ingest (name: string): Promise<void> {
    const path = join(this.dir, name)
    const buf = await readFile(path)
    const parsed = parseSpool(buf, this.#maxFrameBytes)
    for (const entry of parsed.entries) {
      if (this.#stopped) return
      this.#sink.handle([entry.headerFrame, entry.payload])
      this.counts.entries++
      await this.#sink.backpressure()
    }
    if (parsed.torn !== undefined) {
      const movedTo = `${path}.torn`
      await appendFile(movedTo, buf.subarray(parsed.wholeBytes))
      this.counts.torn++
      this.emit('torn', { file: path, tornBytes: buf.length - parsed.wholeBytes, reason: parsed.torn, movedTo })
    }
    await this.#sink.sync()
    await unlink(path)
    this.counts.files++
    debug('ingested spool file %s: %d entries', name, parsed.entries.length)
  }
}

/** True while a process with this pid exists (signal 0 only checks). */
function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
