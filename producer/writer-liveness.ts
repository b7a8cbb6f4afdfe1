/**
 * Whether the writer answers at all, for `spoolAfterMs`: while batches wait for receipts the
 * sender sends a ZMTP PING on the receipt connection, and libzmq's I/O thread answers PONG however
 * busy the writer's JavaScript or its disk is. A PING unanswered for longer than the wait allowed
 * means a writer stopped, restarting or gone.
 *
 * The wait allowed adapts to the answers seen, as TCP's retransmission timeout does: at least
 * `spoolAfterMs`, and at least RTO_FACTOR times the smoothed round trip, so a machine so loaded
 * that answers take 50 ms does not look like an absent writer, while a writer that answered in
 * 1 ms and then stopped is noticed after `spoolAfterMs`.
 *
 * The silence is counted from the first PING still unanswered, never from the last answer: a
 * sender thread that could not run for a while (a machine with more busy threads than cores
 * stalls one for 100-900 ms at times) has heard nothing in that time because it did not ask, and
 * counting from the last answer judged the writer away at the first check after such a stall,
 * with the PING just sent (at 16 producers on 2 cores most producers copied their batches to the
 * spool while the writer answered within 25 ms, and the writer read 60% of its batches twice:
 * bench/README.md, "Sixth round").
 */

/** The allowed wait over the smoothed round trip (RFC 6298 uses 4 x the variance; this is simpler). */
const RTO_FACTOR = 4
/** Weight of a new round trip in the smoothed one (RFC 6298's alpha). */
const RTT_ALPHA = 0.125

export class WriterLiveness {
  readonly #afterMs: number
  readonly #ping: () => void
  readonly #checkMs: number
  #lastCheck = performance.now()
  /** Since when batches have waited without receipt progress. */
  #waitingSince = performance.now()
  /** When the outstanding PING went out (0: none outstanding). */
  #pingSentAt = 0
  /** When the first PING not yet answered went out (0: every PING answered). */
  #unansweredSince = 0
  #lastAnswer = 0
  #rttMs = 0

  /** `checkMs`: how often the sender calls `check()`. */
  constructor (afterMs: number, checkMs: number, ping: () => void) {
    this.#afterMs = afterMs
    this.#checkMs = checkMs
    this.#ping = ping
  }

  /** Batches start to wait (the first one sealed into an empty window), or a receipt came. */
  waitFrom (now: number): void {
    this.#waitingSince = now
  }

  /** How long batches have waited. */
  waitedMs (now: number): number {
    return now - this.#waitingSince
  }

  /**
   * The sender's periodic check (`waiting`: batches wait for receipts): false when this check
   * comes late (the sender's thread was busy, so the writer's answers may wait unread: nothing
   * is judged then) or nothing waits, else `away(now)`.
   */
  check (now: number, waiting: boolean): boolean {
    const late = now - this.#lastCheck > this.#checkMs * 2
    this.#lastCheck = now
    return !late && waiting && this.away(now)
  }

  /** A handshake completed: the writer's I/O thread runs. */
  alive (now: number): void {
    this.#lastAnswer = now
    this.#unansweredSince = 0
    this.#pingSentAt = 0
  }

  /** A PONG arrived. */
  pong (now: number): void {
    if (this.#pingSentAt > 0) {
      const rtt = now - this.#pingSentAt
      this.#rttMs = this.#rttMs === 0 ? rtt : (1 - RTT_ALPHA) * this.#rttMs + RTT_ALPHA * rtt
      this.#pingSentAt = 0
    }
    this.#unansweredSince = 0
    this.#lastAnswer = now
  }

  /** The longest an answer may take before the writer counts as away. */
  get allowedMs (): number {
    return Math.max(this.#afterMs, RTO_FACTOR * this.#rttMs)
  }

  /** How long the oldest PING still unanswered has gone unanswered (0: none outstanding). */
  silentMs (now: number): number {
    return this.#unansweredSince === 0 ? 0 : now - this.#unansweredSince
  }

  /** The connections were made again: PINGs on the old one are answered by nobody; ask afresh. */
  redialed (): void {
    this.#pingSentAt = 0
    this.#unansweredSince = 0
  }

  /** When the writer last answered (`performance.now()` ms; 0: never). */
  get lastAnswer (): number {
    return this.#lastAnswer
  }

  /**
   * Called while batches wait: sends a PING when none is outstanding (again when one has gone
   * unanswered for twice the wait allowed), and says whether the writer is away: the batches
   * waited `spoolAfterMs` and a PING has gone unanswered for `allowedMs`.
   */
  away (now: number): boolean {
    if (this.#afterMs === 0) return false
    if (this.#pingSentAt === 0 || now - this.#pingSentAt >= this.allowedMs * 2) {
      this.#pingSentAt = now
      if (this.#unansweredSince === 0) this.#unansweredSince = now
      this.#ping()
    }
    return now - this.#waitingSince >= this.#afterMs && now - this.#unansweredSince >= this.allowedMs
  }
}
