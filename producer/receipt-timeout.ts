import { debuglog } from 'node:util'
import type { SendWindow } from './send-window.js'
import type { WriterLink } from './writer-link.js'

const debug = debuglog('logfunnel')

/**
 * A BatchSender's receipt timeout (`receiptTimeoutMs`), judged at its periodic check, and what a
 * stall leads to: over tcp, a writer that answers no heartbeat has both connections dialed again
 * (WriterLink.redialIfSilent), and a second timeout in a row while it answers has its data
 * connection dialed again (WriterLink.redialData); otherwise the sender resends from its first
 * batch without a receipt (go-back-N). A receipt, a resend or a redial starts the timeout again.
 */
export class ReceiptTimeout {
  readonly #timeoutMs: number
  readonly #link: WriterLink
  readonly #window: SendWindow
  // The timeout, as every duration of the sender's (the writer's silence, a 'block' wait), uses the
  // monotonic clock: a wall clock stepped back (a VM restored, NTP at boot) must not stop it.
  #lastProgress = performance.now()
  /** Receipt timeouts in a row with no receipt between them (see expired()). */
  #stalledRewinds = 0

  constructor (timeoutMs: number, link: WriterLink, window: SendWindow) {
    this.#timeoutMs = timeoutMs
    this.#link = link
    this.#window = window
  }

  /** A receipt came: the timeout starts again, and so does the count of timeouts in a row. Returns when (`performance.now()`). */
  receipted (): number {
    this.#lastProgress = performance.now()
    this.#stalledRewinds = 0
    return this.#lastProgress
  }

  /** The sender went back to resend: the timeout starts again. */
  rewound (): void {
    this.#lastProgress = performance.now()
  }

  /** The periodic check: true when a batch in flight has waited `receiptTimeoutMs` for its receipt and the sender should resend. */
  expired (now: number): boolean {
    // A tcp connection the network dropped silently: dialed again (its 'reconnected' resends).
    if (this.#window.unreceipted > 0 && this.#link.redialIfSilent(now, this.#timeoutMs)) {
      debug('the writer answered no heartbeat for %d ms: dialing again', this.#timeoutMs)
      this.#lastProgress = now
      return false
    }
    if (!this.#window.inFlight || now - this.#lastProgress < this.#timeoutMs) return false
    // A second timeout in a row while the writer answers heartbeats: over tcp its data connection
    // alone may be dead (the network dropped it without a word); a new one takes the resend.
    if (++this.#stalledRewinds >= 2 && this.#link.redialData()) {
      debug('no receipt for %d receipt timeouts: the data connection is dialed again', this.#stalledRewinds)
      this.#stalledRewinds = 0
      this.#lastProgress = now
      return false
    }
    return true
  }
}
