/** 4096 sequence numbers (512 bytes) per bitset page: 1M records of one producer cost 128 KiB. */
const PAGE_BITS = 4096
const PAGE_BYTES = PAGE_BITS / 8

/** The sequence numbers one producer wrote, as a sparse bitset of fixed-size pages. */
export class SeqSet {
  readonly #pages = new Map<number, Uint8Array>()
  #size = 0

  get size (): number {
    return this.#size
  }

  /** Adds `seq`; false when it was already there. */
  add (seq: number): boolean {
    // Division, not `>>>`: a sequence number may pass 2^32.
    const index = Math.floor(seq / PAGE_BITS)
    let page = this.#pages.get(index)
    if (page === undefined) {
      page = new Uint8Array(PAGE_BYTES)
      this.#pages.set(index, page)
    }
    const bit = seq - index * PAGE_BITS
    const mask = 1 << (bit & 7)
    if ((page[bit >>> 3] & mask) !== 0) return false
    page[bit >>> 3] |= mask
    this.#size++
    return true
  }

  /** The lowest number in `[from, end)` not in the set, or -1. Stops at the first absent page. */
  firstMissing (end: number, from = 0): number {
    for (let index = Math.floor(from / PAGE_BITS); index * PAGE_BITS < end; index++) {
      const page = this.#pages.get(index)
      if (page === undefined) return Math.max(index * PAGE_BITS, from)
      for (let i = 0; i < PAGE_BYTES; i++) {
        if (page[i] === 0xff) continue
        for (let bit = 0; bit < 8; bit++) {
          const seq = index * PAGE_BITS + i * 8 + bit
          if (seq >= from && (page[i] & (1 << bit)) === 0) return seq < end ? seq : -1
        }
      }
    }
    return -1
  }
}
