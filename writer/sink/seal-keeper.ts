import { open, rename } from 'node:fs/promises'
import { dirname } from 'node:path'
import { evolve, readSealKey, sealKeyText, withMac, type SealKey } from '../../shared/seal-key.js'

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
