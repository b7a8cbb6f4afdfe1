import { EventEmitter, once } from 'node:events'
import { fsync, mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import sonicBoom, { type SonicBoom } from 'sonic-boom'
import { FileError } from '../shared/errors.js'

/**
 * sonic-boom's default chunk (16 KiB) suits pipes and TTYs; a regular file takes large writes
 * in one syscall, so batches from many producers go out together (one write, group commit).
 */
const MAX_WRITE_BYTES = 1024 * 1024

// sonic-boom is CommonJS whose module.exports is the class; its types describe an ES module.
const SonicBoomClass = sonicBoom as unknown as typeof SonicBoom

/**
 * The writer's file output: sonic-boom in append mode, asynchronous, with byte accounting so
 * the writer knows when a given batch has reached the file (the basis of receipts).
 *
 * Events: `'written'` (totalBytesWritten) after each completed write; `'error'` (FileError).
 */
export class FileSink extends EventEmitter {
  readonly file: string
  #sonic: SonicBoom
  #appended = 0
  #written = 0

  constructor (file: string) {
    super()
    this.file = file
    try {
      mkdirSync(dirname(file), { recursive: true })
    } catch (err) {
      throw new FileError(file, { cause: err })
    }
    this.#sonic = new SonicBoomClass({
      dest: file,
      append: true,
      sync: false,
      minLength: 0,
      maxWrite: MAX_WRITE_BYTES,
      contentMode: 'buffer'
    })
    this.#sonic.on('write', (n: number) => {
      this.#written += n
      this.emit('written', this.#written)
    })
    this.#sonic.on('error', (err: Error) => this.emit('error', new FileError(file, { cause: err })))
  }

  /** Resolves once the file is open; rejects with FileError when it cannot be opened. */
  async ready (): Promise<void> {
    if ((this.#sonic as unknown as { fd: number }).fd >= 0) return
    const [err] = await Promise.race([
      once(this.#sonic, 'ready').then(() => [undefined]),
      once(this.#sonic, 'error')
    ]) as [Error | undefined]
    if (err !== undefined) throw new FileError(this.file, { cause: err })
  }

  /** Appends whole lines; returns the byte offset (since start) at which they end. */
  append (buf: Buffer): number {
    this.#sonic.write(buf as unknown as string)
    this.#appended += buf.length
    return this.#appended
  }

  /** Bytes appended but not yet written to the file. */
  get pendingBytes (): number {
    return this.#appended - this.#written
  }

  get bytesWritten (): number {
    return this.#written
  }

  /** Resolves when no more than `maxPending` bytes wait to be written. */
  async waitBelow (maxPending: number): Promise<void> {
    while (this.pendingBytes > maxPending) {
      await once(this, 'written')
    }
  }

  /** Resolves once everything appended so far (not what comes later) is written and fsynced. */
  async sync (): Promise<void> {
    const target = this.#appended
    while (this.#written < target) await once(this, 'written')
    const fd = (this.#sonic as unknown as { fd: number }).fd
    await new Promise<void>((resolve, reject) => fsync(fd, (err) => err ? reject(new FileError(this.file, { cause: err })) : resolve()))
  }

  /** Reopens the file by path (logrotate `create` mode), after the write in flight. */
  reopen (): void {
    this.#sonic.reopen()
  }

  /** Writes what is buffered, fsyncs and closes. */
  async end (): Promise<void> {
    await this.waitBelow(0)
    const closed = once(this.#sonic, 'close')
    this.#sonic.end()
    await closed
  }
}
