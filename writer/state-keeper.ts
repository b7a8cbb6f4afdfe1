import { dirname } from 'node:path'
import { LogfunnelError } from '../shared/errors.js'
import { makeDirs } from '../shared/make-dirs.js'
import { withReserveSync } from './fd-reserve.js'
import { saveProducerStates } from './producer-state.js'
import type { ProducerTable } from './producer-table.js'

/**
 * Saves the producer table to the state file: only what is in the log file (a snapshot taken
 * before the wait for the file), unless nothing changed since the last save.
 */
export class StateKeeper {
  readonly #producers: ProducerTable
  readonly #file: string
  /** Forgets producers gone for long (see ProducerTable.prune); run before each save. */
  readonly #prune: () => void
  readonly #warn: (event: object) => void
  /** Mode of the state file: the log file's, never wider (known once the log is open). */
  mode = 0o600
  /** Longest save so far (ms). */
  maxSaveMs = 0

  constructor (producers: ProducerTable, file: string, prune: () => void, warn: (event: object) => void) {
    this.#producers = producers
    this.#file = file
    this.#prune = prune
    this.#warn = warn
  }

  /**
   * Saves the table as it is now, once `flushed()` says what it covers is in the file. The
   * writer does so every `statePersistMs`, and after each spool file is ingested, before it is
   * removed: a writer killed between the two otherwise ingested the whole file again after its
   * restart (up to a 4 MiB segment of duplicates, past the documented bound). Rejects when the
   * file cannot be written; a failed save is a warning.
   */
  async persistWritten (flushed: () => Promise<void>): Promise<void> {
    this.#prune()
    const snapshot = this.#producers.snapshot()
    await flushed()
    try {
      this.#save(snapshot, false)
    } catch (err) {
      this.#warn({ event: 'state-not-saved', message: (err as Error).message })
    }
  }

  /** Saves the table now: at stop, everything handled is written and fsynced. */
  saveNow (force: boolean): void {
    try {
      this.#prune()
      this.#save(this.#producers.snapshot(), force)
    } catch (err) {
      this.#warn({ event: 'state-not-saved', message: (err as Error).message })
    }
  }

  /** Saves a snapshot unless nothing changed since the last save (`force`: save anyway). Throws the fs error. */
  #save (snapshot: ReturnType<ProducerTable['snapshot']>, force: boolean): void {
    if (!force && !this.#producers.isNew(snapshot)) return
    const started = performance.now()
    withReserveSync(() => saveProducerStates(this.#file, snapshot.states, this.mode))
    this.maxSaveMs = Math.max(this.maxSaveMs, performance.now() - started)
    this.#producers.saved(snapshot)
  }
}

/**
 * Creates the state file's directory at start, as the log file's is. Without it, a state file
 * in a directory that did not exist was never saved, and said so on stderr every
 * `statePersistMs` for as long as the writer ran. Rejects with LOGFUNNEL_ERR_FILE.
 */
export async function makeStateDir (stateFile: string): Promise<void> {
  const dir = dirname(stateFile)
  try {
    await makeDirs(dir)
  } catch (err) {
    throw new LogfunnelError('LOGFUNNEL_ERR_FILE', `cannot create the state file's directory ${dir}: ${(err as Error).message}`, { cause: err })
  }
}
