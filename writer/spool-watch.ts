import { existsSync, statSync, watch, type FSWatcher, type Stats } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { debuglog } from 'node:util'
import { parseSpoolName } from '../shared/spool.js'

const debug = debuglog('logfunnel')

/**
 * Tells the spool ingester at once when a complete `.spool` file lands in its directory, so it
 * need not wait for its next poll (`fs.watch`: inotify on Linux). While the directory does not
 * exist yet (producers make it when they first spool), its parent is watched for its creation.
 *
 * Only a hint: a watch can miss events or be refused (no inotify watches left, a filesystem
 * without them), so the ingester polls as well. Nothing here ever throws or emits 'error': a
 * failed watch is dropped (`NODE_DEBUG=logfunnel` says so) and tried again at the next
 * `refresh()` (the ingester's next poll): inotify refuses a watch while the user's watches or
 * instances are used up (ENOSPC, EMFILE), which ends when other programs let theirs go.
 */
export class SpoolWatch {
  readonly #dir: string
  readonly #landed: () => void
  #watcher: FSWatcher | undefined
  /** What #watcher watches: the directory or its parent, with its identity (device, inode, path). */
  #watched: string | undefined
  #closed = false

  /** `landed` is called for each complete spool file renamed into `dir`, and when `dir` itself is made or goes. */
  constructor (dir: string, landed: () => void) {
    this.#dir = dir
    this.#landed = landed
  }

  /**
   * Watches the directory, or its parent while it does not exist, unless that one is watched
   * already. A directory made between the look for it and the parent's watch sends the parent
   * no event: once the parent is watched, the directory is looked for again.
   */
  refresh (): void {
    if (this.#closed) return
    if (this.#watchFirstThere() !== this.#dir && existsSync(this.#dir)) this.#watchFirstThere()
  }

  /** Watches the directory, else its parent; returns which (undefined: neither exists). */
  #watchFirstThere (): string | undefined {
    let path = this.#dir
    let st: Stats
    try {
      st = statSync(path)
    } catch {
      path = dirname(this.#dir)
      try {
        st = statSync(path)
      } catch {
        this.#unwatch()
        return undefined
      }
    }
    const id = `${st.dev}:${st.ino}:${path}`
    if (this.#watched === id) return path
    this.#unwatch()
    let watcher: FSWatcher
    try {
      watcher = watch(path, { persistent: false }, (type, name) => this.#onEvent(path, type, name))
    } catch (err) {
      debug('cannot watch %s, the spool is only polled: %o', path, err)
      return path
    }
    // A watch that fails later must never end the writer.
    watcher.on('error', (err) => {
      debug('watching %s failed, the spool is only polled: %o', path, err)
      if (this.#watcher === watcher) this.#unwatch()
    })
    // Node ends a watch by itself when its directory goes.
    watcher.on('close', () => {
      if (this.#watcher !== watcher) return
      this.#watcher = undefined
      this.#watched = undefined
    })
    this.#watcher = watcher
    this.#watched = id
    return path
  }

  /** Stops watching for good. */
  close (): void {
    this.#closed = true
    this.#unwatch()
  }

  #onEvent (path: string, type: string, name: string | Buffer | null): void {
    if (this.#closed) return
    const file = name === null ? null : name.toString()
    if (path !== this.#dir) {
      // The parent: only the directory's own creation matters.
      if (file === null || file === basename(this.#dir)) this.#landed()
      return
    }
    if (file === null || file === basename(this.#dir)) {
      // No name, or the directory itself went (moved, removed): the next refresh() watches anew.
      if (file !== null) this.#unwatch()
      this.#landed()
      return
    }
    // A complete file renamed into place; not the ingester's own removals and renames aside
    // (that name no longer exists), nor a `.spool.tmp` being written ('change').
    if (type === 'rename' && parseSpoolName(file)?.complete === true && existsSync(join(this.#dir, file))) this.#landed()
  }

  #unwatch (): void {
    this.#watcher?.close()
    this.#watcher = undefined
    this.#watched = undefined
  }
}
