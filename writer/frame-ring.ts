/**
 * One region of the ring: where it is, the sink offset that frees it (undefined: in use), and
 * while its message is still being received, how its owner gives it back.
 */
interface Region { start: number, end: number, until: number | undefined, buf: Buffer, evict: Evict | undefined }

/** Moves what `region` holds into fresh memory and returns true, or returns false when the region is no longer the caller's to move. */
export type Evict = (region: Buffer) => boolean

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
 *
 * A region taken for a message still being received would stop every later region from being
 * freed for as long as its peer stalls (a producer stopped mid-message), so that one peer would
 * send everybody's bodies to fresh memory. When the ring is full and its oldest region is such
 * a one, `take()` asks the region's owner to move it out (the `evict` given to `take()`), frees
 * it, and goes on.
 */
export class FrameRing {
  readonly #buf: Buffer
  readonly #maxTake: number
  #regions: Region[] = []
  #first = 0
  readonly #byStart = new Map<number, Region>()
  #confirmed = 0

  /** Nothing is touched until used: the memory counts in RSS as the ring fills once. */
  constructor (bytes: number) {
    this.#buf = Buffer.allocUnsafeSlow(bytes)
    this.#maxTake = Math.floor(bytes / 4)
  }

  /**
   * A region of `size` bytes, or undefined when there is no room (or it is over a quarter of the
   * ring). `evict` is how the caller gives the region back while it has not held it yet.
   */
  take (size: number, evict?: Evict): Buffer | undefined {
    if (size === 0 || size > this.#maxTake) return undefined
    let at = this.#room(size)
    while (at === undefined && this.#evictOldest()) at = this.#room(size)
    if (at === undefined) return undefined
    const buf = this.#buf.subarray(at, at + size)
    const region = { start: at, end: at + size, until: undefined, buf, evict }
    this.#regions.push(region)
    this.#byStart.set(at, region)
    return buf
  }

  /** Where `size` bytes fit, if they do. */
  #room (size: number): number | undefined {
    if (this.#first === this.#regions.length) return 0
    const first = this.#regions[this.#first] as Region
    const last = this.#regions[this.#regions.length - 1] as Region
    if (last.start >= first.start) {
      // Not wrapped: free after the last region, then before the first.
      if (last.end + size <= this.#buf.length) return last.end
      return size <= first.start ? 0 : undefined
    }
    return last.end + size <= first.start ? last.end : undefined
  }

  /** Frees the oldest region if its message is still being received and its owner moves it out. */
  #evictOldest (): boolean {
    const oldest = this.#regions[this.#first]
    if (oldest === undefined || oldest.until !== undefined || oldest.evict === undefined) return false
    if (!oldest.evict(oldest.buf)) return false
    oldest.until = 0
    this.release(this.#confirmed)
    return true
  }

  /** Whether `buf` is memory of this ring. */
  owns (buf: Buffer): boolean {
    return buf.buffer === this.#buf.buffer
  }

  /** The regions among `bufs` are freed once `release()` reaches `until`; other buffers are ignored. */
  hold (bufs: Buffer[], until: number): void {
    for (const buf of bufs) {
      if (!this.owns(buf)) continue
      const region = this.#byStart.get(buf.byteOffset - this.#buf.byteOffset)
      if (region !== undefined && region.end - region.start === buf.length) {
        region.until = until
        region.evict = undefined
      }
    }
  }

  /** The sink has confirmed every byte up to `confirmed`: frees the regions that waited for it. */
  release (confirmed: number): void {
    if (confirmed > this.#confirmed) this.#confirmed = confirmed
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
