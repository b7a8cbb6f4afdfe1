/** One region of the ring: where it is, and the sink offset that frees it (undefined: in use). */
interface Region { start: number, end: number, until: number | undefined }

/**
 * One reused block of memory for the bodies of received frames. On this project's measuring
 * machine a kernel copy out of memory a process touches for the first time costs several times
 * the same copy out of memory it reuses (bench/README.md, "Fifth round"), and a zeromq.js
 * receive hands over a new allocation per message; so the writer's own reader puts bodies here.
 *
 * Regions are taken in order and freed in order: each is freed once the sink has confirmed
 * (written, and fsynced under `fsync: 'batch'`) the bytes it was appended with, because the
 * sink keeps written chunks to write them again into a new file if the old one was removed.
 * `hold()` gives a message's regions that offset (0 for one that was not written); `release()`
 * frees every region, oldest first, up to the first one still needed. When the ring has no
 * room, `take()` returns undefined and the caller uses fresh memory: the ring never blocks
 * receiving and never overwrites a region in use.
 */
export class FrameRing {
  readonly #buf: Buffer
  readonly #maxTake: number
  #regions: Region[] = []
  #first = 0
  readonly #byStart = new Map<number, Region>()

  /** Nothing is touched until used: the memory counts in RSS as the ring fills once. */
  constructor (bytes: number) {
    this.#buf = Buffer.allocUnsafeSlow(bytes)
    this.#maxTake = Math.floor(bytes / 4)
  }

  /** A region of `size` bytes, or undefined when there is no room (or it is over a quarter of the ring). */
  take (size: number): Buffer | undefined {
    if (size === 0 || size > this.#maxTake) return undefined
    let at = 0
    if (this.#first < this.#regions.length) {
      const first = this.#regions[this.#first] as Region
      const last = this.#regions[this.#regions.length - 1] as Region
      if (last.start >= first.start) {
        // Not wrapped: free after the last region, then before the first.
        if (last.end + size <= this.#buf.length) at = last.end
        else if (size <= first.start) at = 0
        else return undefined
      } else if (last.end + size <= first.start) {
        at = last.end
      } else {
        return undefined
      }
    }
    const region = { start: at, end: at + size, until: undefined }
    this.#regions.push(region)
    this.#byStart.set(at, region)
    return this.#buf.subarray(at, at + size)
  }

  /** The regions among `bufs` are freed once `release()` reaches `until`; other buffers are ignored. */
  hold (bufs: Buffer[], until: number): void {
    for (const buf of bufs) {
      if (buf.buffer !== this.#buf.buffer) continue
      const region = this.#byStart.get(buf.byteOffset - this.#buf.byteOffset)
      if (region !== undefined && region.end - region.start === buf.length) region.until = until
    }
  }

  /** The sink has confirmed every byte up to `confirmed`: frees the regions that waited for it. */
  release (confirmed: number): void {
    while (this.#first < this.#regions.length) {
      const region = this.#regions[this.#first] as Region
      if (region.until === undefined || region.until > confirmed) break
      this.#byStart.delete(region.start)
      this.#first++
    }
    if (this.#first === this.#regions.length) {
      this.#regions = []
      this.#first = 0
    } else if (this.#first > 1024) {
      this.#regions = this.#regions.slice(this.#first)
      this.#first = 0
    }
  }

  /** Regions taken and not yet freed. */
  get inUse (): number {
    return this.#regions.length - this.#first
  }
}
