import { join } from 'node:path'
import type { FileError } from '../../shared/errors.js'
import { FileSink, type FileSinkOptions } from '../../writer/sink/file-sink.js'
import { nodeSinkFs, type SinkFs } from '../../writer/sink/sink-fs.js'
import { tempDir } from './children.js'

type Op = keyof SinkFs

interface Fault {
  code: string
  times: number
  /** For `write`: the first faulted call writes this many bytes (a short write), the rest fail. */
  partialBytes?: number
}

/**
 * A `SinkFs` over the real file system that fails chosen operations: `fail('write',
 * 'ENOSPC', 3)` makes the next three writes fail the way node's fs does (an Error with
 * `code`). Counts every call, and can hold fsyncs until the test releases them.
 */
export class FaultyFs implements SinkFs {
  readonly calls: Record<Op, number> = { open: 0, write: 0, fsync: 0, ftruncate: 0, fstat: 0, stat: 0, close: 0, mkdir: 0, rename: 0 }
  /** Bytes the real fs accepted through `write`. */
  bytesWritten = 0
  /** Date.now() at each fsync call. */
  readonly fsyncTimes: number[] = []
  #faults = new Map<Op, Fault>()
  #held: Array<() => void> | undefined

  fail (op: Op, code: string, times: number, partialBytes?: number): void {
    this.#faults.set(op, { code, times, partialBytes })
  }

  /** Ends a fault early (the disk has room again). */
  heal (op: Op): void {
    this.#faults.delete(op)
  }

  /** fsync calls wait until `releaseFsyncs()`. */
  holdFsyncs (): void {
    this.#held ??= []
  }

  releaseFsyncs (): void {
    const held = this.#held ?? []
    this.#held = undefined
    for (const release of held) release()
  }

  #check (op: Op): Fault | undefined {
    this.calls[op]++
    const fault = this.#faults.get(op)
    if (fault === undefined) return undefined
    if (--fault.times <= 0) this.#faults.delete(op)
    return fault
  }

  open = async (path: string): Promise<number> => {
    throwIf(this.#check('open'))
    return await nodeSinkFs.open(path)
  }

  write = async (fd: number, buf: Buffer, offset: number, length: number): Promise<number> => {
    const fault = this.#check('write')
    const partial = fault?.partialBytes
    if (fault !== undefined && partial !== undefined && partial > 0 && partial < length) {
      // A disk filling up mid-write: the first call writes part, the next ones fail.
      fault.partialBytes = undefined
      const n = await nodeSinkFs.write(fd, buf, offset, partial)
      this.bytesWritten += n
      return n
    }
    throwIf(fault)
    const n = await nodeSinkFs.write(fd, buf, offset, length)
    this.bytesWritten += n
    return n
  }

  fsync = async (fd: number): Promise<void> => {
    throwIf(this.#check('fsync'))
    this.fsyncTimes.push(Date.now())
    if (this.#held !== undefined) await new Promise<void>((resolve) => this.#held?.push(resolve))
    await nodeSinkFs.fsync(fd)
  }

  ftruncate = async (fd: number, length: number): Promise<void> => {
    throwIf(this.#check('ftruncate'))
    await nodeSinkFs.ftruncate(fd, length)
  }

  fstat = async (fd: number): ReturnType<SinkFs['fstat']> => {
    throwIf(this.#check('fstat'))
    return await nodeSinkFs.fstat(fd)
  }

  stat = async (path: string): ReturnType<SinkFs['stat']> => {
    throwIf(this.#check('stat'))
    return await nodeSinkFs.stat(path)
  }

  close = async (fd: number): Promise<void> => {
    throwIf(this.#check('close'))
    await nodeSinkFs.close(fd)
  }

  mkdir = async (path: string): Promise<void> => {
    throwIf(this.#check('mkdir'))
    await nodeSinkFs.mkdir(path)
  }

  rename = async (from: string, to: string): Promise<void> => {
    throwIf(this.#check('rename'))
    await nodeSinkFs.rename(from, to)
  }
}

function throwIf (fault: Fault | undefined): void {
  if (fault !== undefined) throw Object.assign(new Error(`${fault.code}: injected fault`), { code: fault.code })
}

/** `n` lines of `size` bytes each, numbered, as separate batches. */
export function batches (n: number, size = 1000): Buffer[] {
  return Array.from({ length: n }, (_, i) => Buffer.from(`${JSON.stringify({ seq: i, pad: 'x'.repeat(size) })}\n`))
}

export interface SinkHarness {
  sink: FileSink
  fs: FaultyFs
  file: string
  errors: FileError[]
  resumed: unknown[]
}

/** A FileSink on a FaultyFs in a fresh temp dir, collecting its errors and resumed events; started. */
export async function openSink (opts: FileSinkOptions = {}): Promise<SinkHarness> {
  const fs = new FaultyFs()
  const file = join(tempDir(), 'logs', 'app.log')
  const sink = new FileSink(file, { fs, ...opts })
  const errors: FileError[] = []
  const resumed: unknown[] = []
  sink.on('error', (err: FileError) => errors.push(err))
  sink.on('resumed', (info: unknown) => resumed.push(info))
  await sink.ready()
  return { sink, fs, file, errors, resumed }
}
