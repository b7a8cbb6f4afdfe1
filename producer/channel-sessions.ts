import { newSenderStats, statsSince, type SenderStats } from './sender-stats.js'

/** What the destinations of one session of a channel report as `stats`. */
export interface ChannelSession {
  stats: SenderStats | undefined
}

/**
 * The sessions of a sender channel (sender-channel.ts): one ends with the close() of its last
 * destination, the channel kept for the next destination (SenderChannel.closeKept); the next
 * destination begins the next. Each session's `stats` count from where the one before ended, as
 * a new sender's would (statsSince): a second request's close() reports its own records.
 */
export class ChannelSessions {
  #current: ChannelSession = { stats: undefined }
  /** The sender's counters as the last session ended. */
  #base: SenderStats = newSenderStats()

  /** The session a destination made now belongs to. */
  get current (): ChannelSession {
    return this.#current
  }

  /** The current session ends, the channel kept, with the sender's counters `now`: its stats; a new one begins. */
  end (now: SenderStats): SenderStats {
    const stats = this.closed(now)
    this.#base = now
    this.#current = { stats: undefined }
    return stats
  }

  /** The channel closed with the sender's counters `now`: the current session's stats. */
  closed (now: SenderStats): SenderStats {
    this.#current.stats = statsSince(now, this.#base)
    return this.#current.stats
  }
}
