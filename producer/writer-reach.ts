/**
 * Whether a producer ever reached its writer, and if not, what its connections showed: for the
 * report a producer makes at its end when its records went to the spool and no writer was ever
 * there (unreached-report.ts). The sender's connections (writer-link.ts) keep it; funnel()'s
 * sender thread publishes it in one word of the control array, read by the logging thread at
 * close or exit, where it cannot wait for a message.
 */

/** Connect errors kept by name in the word (their index + 1); any other is kept as OTHER_REFUSAL. */
const REFUSALS = ['ENOENT', 'EACCES', 'ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPERM']
const OTHER_REFUSAL = 15
const REACHED_BIT = 1
const HANDSHAKE_FAILED_BIT = 2
const ACCEPTED_BIT = 4
const DIALED_BIT = 8
const REFUSAL_SHIFT = 4
/** The count of connections lost after their handshake, kept modulo LOST_MASK + 1 in the bits from LOST_SHIFT on. */
const LOST_SHIFT = 8
const LOST_MASK = 0x7fffff

export interface ReachFacts {
  /** A handshake with the writer completed at some time, on either connection. */
  reached: boolean
  /** The OS error of the last connect that failed (nothing accepted it): ENOENT, ECONNREFUSED, ... */
  refused: string | undefined
  /** A connection was accepted but ended before its handshake completed (CURVE refused, not a writer). */
  handshakeFailed: boolean
  /** A connection was accepted at some time (something listens there, answered or not). */
  accepted: boolean
  /** A connect was started (a sender thread slow to start on a loaded machine may not have yet). */
  dialed: boolean
  /**
   * Connections that ended after their handshake (the writer stopped or restarted), counted
   * modulo 2^23: a sender kept idle (funnel.ts) that lost one is not used again.
   */
  lost: number
}

export class WriterReach implements ReachFacts {
  reached = false
  refused: string | undefined
  handshakeFailed = false
  accepted = false
  dialed = false
  lost = 0
  readonly #onChange: (word: number) => void

  /** `onChange`: called with the new word (see `word`) on each change. */
  constructor (onChange: (word: number) => void = () => {}) {
    this.#onChange = onChange
  }

  /** A handshake completed, or the writer was heard from. */
  markReached (): void {
    if (this.reached) return
    this.reached = true
    this.#onChange(this.word)
  }

  /** The first connect starts. */
  markDialed (): void {
    if (this.dialed) return
    this.dialed = true
    this.#onChange(this.word)
  }

  /** A connection was accepted: its handshake starts. */
  markAccepted (): void {
    if (this.accepted) return
    this.accepted = true
    this.#onChange(this.word)
  }

  /** A connection ended: before its handshake, it says why the writer was not reached. */
  connectionEnded (err: (Error & { code?: string, syscall?: string }) | undefined, handshaken: boolean): void {
    if (handshaken) {
      this.lost = (this.lost + 1) & LOST_MASK
      this.#onChange(this.word)
      return
    }
    const before = this.word
    if (err?.syscall === 'connect' && typeof err.code === 'string') this.refused = err.code
    else this.handshakeFailed = true
    if (this.word !== before) this.#onChange(this.word)
  }

  /** The facts as one 32-bit word (an unlisted connect error is kept as "other"). */
  get word (): number {
    const refusal = this.refused === undefined ? 0 : REFUSALS.indexOf(this.refused) + 1 || OTHER_REFUSAL
    return (this.reached ? REACHED_BIT : 0) | (this.handshakeFailed ? HANDSHAKE_FAILED_BIT : 0) | (this.accepted ? ACCEPTED_BIT : 0) |
      (this.dialed ? DIALED_BIT : 0) | (refusal << REFUSAL_SHIFT) | (this.lost << LOST_SHIFT)
  }
}

/** `refused` of a word that kept an unlisted connect error. */
export const UNLISTED_REFUSAL = 'unlisted'

/** The facts a word holds. */
export function reachFromWord (word: number): ReachFacts {
  const refusal = (word >> REFUSAL_SHIFT) & 0xf
  return {
    reached: (word & REACHED_BIT) !== 0,
    handshakeFailed: (word & HANDSHAKE_FAILED_BIT) !== 0,
    accepted: (word & ACCEPTED_BIT) !== 0,
    dialed: (word & DIALED_BIT) !== 0,
    refused: refusal === 0 ? undefined : REFUSALS[refusal - 1] ?? UNLISTED_REFUSAL,
    lost: (word >>> LOST_SHIFT) & LOST_MASK
  }
}
