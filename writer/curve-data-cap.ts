import { dataConnectionCap } from './descriptor-limit.js'

/** The monitor events of a zeromq.js socket this counts (its `events`). */
interface SocketEvents {
  on: (event: 'handshake' | 'handshake:error:protocol' | 'handshake:error:auth' | 'handshake:error:other' | 'disconnect', fn: () => void) => unknown
}

/**
 * The connection cap (descriptor-limit.ts) for a CURVE writer's data socket, whose connections
 * libzmq accepts itself: the writer's ZAP handler asks `admit()` for each listed key, and past
 * the cap answers 500 (libzmq sends the producer ERROR "500" and closes the connection), counted
 * and said as a refusal (`refused`, the plain path's `connections-refused`).
 *
 * The connections counted are the ones admitted and still open, from the socket's monitor:
 * each connection libzmq accepts ends its handshake with `handshake` (admitted) or one of the
 * `handshake:error:*` events, then `disconnect` when it closes; so the admitted ones open are
 * those granted here less the disconnects that followed no handshake error. Counting at the
 * grant (not at the `handshake` event, which comes later) keeps a burst of handshakes from all
 * being admitted before the first is counted. (A connection whose handshake fails after its
 * grant would stay counted; libzmq has nothing left to fail there but the peer's close.)
 */
export class CurveDataCap {
  readonly #maxConnections: () => number
  readonly #onRefused: (open: number) => void
  #granted = 0
  #failed = 0
  #disconnected = 0
  /** The last answer of `#maxConnections`, asked again when the count reaches it (prlimit may raise the limit). */
  #cap = 0

  constructor (onRefused: (open: number) => void, maxConnections: () => number = () => dataConnectionCap()) {
    this.#onRefused = onRefused
    this.#maxConnections = maxConnections
  }

  /** Admitted data connections still open. */
  get open (): number {
    return this.#granted - (this.#disconnected - this.#failed)
  }

  /** Follows the data socket's connections. */
  watch (events: SocketEvents): void {
    for (const event of ['handshake:error:protocol', 'handshake:error:auth', 'handshake:error:other'] as const) {
      events.on(event, () => { this.#failed++ })
    }
    events.on('disconnect', () => { this.#disconnected++ })
  }

  /** For the ZAP handler, a listed key: whether there is room for its connection. */
  admit (): boolean {
    const open = this.open
    if (open >= this.#cap && open >= (this.#cap = this.#maxConnections())) {
      this.#onRefused(open)
      return false
    }
    this.#granted++
    return true
  }
}
