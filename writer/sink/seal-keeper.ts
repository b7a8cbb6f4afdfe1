import { open, rename } from 'node:fs/promises'
import { dirname } from 'node:path'
import { InvalidOptionError } from '../../shared/errors.js'
import { evolve, readSealKey, sealKeyText, sealMac, splitMac, withMac, type SealKey } from '../../shared/seal-key.js'

/**
 * The writer's one current sealing key. After each sealed checkpoint the next key replaces it
 * in the key file (written beside, fsynced, renamed over, directory fsynced), so from then on
 * the machine holds no key that could re-seal a checkpoint already written.
 */
export class SealKeeper {
  #key: SealKey
  readonly #file: string

  constructor (file: string) {
    this.#file = file
    this.#key = readSealKey(file)
  }

  /** Index of the key the next checkpoint is sealed with. */
  get index (): number {
    return this.#key.i
  }

  /** Seals a checkpoint body with the current key: the text to write, with `mac`. */
  seal (body: string): string {
    return withMac(this.#key, body)
  }

  /**
   * At a restart, before sealing on after the chain's last checkpoint `line`, sealed with key
   * `used`: a key file at or before that index must be the key that sealed it. Another chain's key
   * (a fresh `keygen --seal`, another machine's file) would seal every checkpoint from here on
   * with MACs that the chain's initial key rejects, while the writer said nothing. A key already
   * past `used` cannot be checked: the one that sealed `line` is gone, as it should be.
   * Throws LOGFUNNEL_ERR_INVALID_OPTION; evolves the key past `used` otherwise.
   */
  async resumeAfter (used: number, line: string): Promise<void> {
    if (this.#key.i <= used) {
      let k = this.#key
      while (k.i < used) k = evolve(k)
      const parts = splitMac(line)
      if (parts === undefined || sealMac(k, parts.body) !== parts.mac) {
        throw new InvalidOptionError(`sealKeyFile ${this.#file} (key ${this.#key.i}) did not seal the chain's last checkpoint (sealed with key ${used}): it is another chain's key. Give the writer this chain's key file, or start a new chain: move the log file and its .<file name>.logfunnel-chain away`)
      }
    }
    await this.evolvePast(used)
  }

  /**
   * Evolves the key until its index is past `used` (after a checkpoint sealed with `used`; after
   * a crash between a checkpoint and the evolution, the restart catches up) and saves it.
   */
  async evolvePast (used: number): Promise<void> {
    if (this.#key.i > used) return
    let k = this.#key
    while (k.i <= used) k = evolve(k)
    await this.#save(k)
    this.#key.key.fill(0)
    this.#key = k
  }

  async #save (k: SealKey): Promise<void> {
    const tmp = `${this.#file}.next`
    const fh = await open(tmp, 'w', 0o600)
    try {
      await fh.writeFile(sealKeyText(k))
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, this.#file)
    const dir = await open(dirname(this.#file), 'r')
    try { await dir.sync() } finally { await dir.close() }
  }
}
