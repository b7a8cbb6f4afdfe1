/**
 * The destinations that share a sender channel (sender-channel.ts), held weakly: a logger made
 * per request and dropped must be collectable while the channel goes on for the others.
 */

/** What a channel needs of a destination: its events. */
export interface ChannelUser {
  listenerCount: (event: string) => number
  emit: (event: string, ...args: unknown[]) => boolean
}

/** Drops a collected destination's entry, so that a long-lived channel's set does not grow per request. */
const userGone = new FinalizationRegistry<{ users: Set<WeakRef<ChannelUser>>, ref: WeakRef<ChannelUser> }>(({ users, ref }) => {
  users.delete(ref)
})

export class ChannelUsers {
  readonly #users = new Set<WeakRef<ChannelUser>>()
  /** Each user's entry, to leave by. */
  readonly #refs = new WeakMap<ChannelUser, WeakRef<ChannelUser>>()

  add (user: ChannelUser): void {
    const ref = new WeakRef(user)
    this.#users.add(ref)
    this.#refs.set(user, ref)
    userGone.register(user, { users: this.#users, ref }, ref)
  }

  /** `user` closed: it gets no more of the channel's events. */
  leave (user: ChannelUser): void {
    const ref = this.#refs.get(user)
    if (ref === undefined) return
    this.#users.delete(ref)
    userGone.unregister(ref)
  }

  /**
   * Whether another user than `user` has neither closed nor been collected. One dropped and not yet
   * collected counts: it may still log.
   */
  othersOpen (user: ChannelUser): boolean {
    for (const ref of this.#users) {
      const other = ref.deref()
      if (other !== undefined && other !== user) return true
    }
    return false
  }

  /** Listeners for `event` over every user. */
  listenerCount (event: string): number {
    let count = 0
    for (const ref of this.#users) count += ref.deref()?.listenerCount(event) ?? 0
    return count
  }

  /** To every user that listens; true when one did. */
  emit (event: string, ...args: unknown[]): boolean {
    let heard = false
    for (const ref of [...this.#users]) {
      const user = ref.deref()
      if (user !== undefined && user.listenerCount(event) > 0) heard = user.emit(event, ...args) || heard
    }
    return heard
  }
}
