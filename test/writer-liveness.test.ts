import { describe, expect, it } from 'vitest'
import { WriterLiveness } from '../producer/writer-liveness.js'

/**
 * When a producer judges its writer away (and copies its batches to the spool): only once a
 * PING has gone unanswered for the wait allowed, however long ago the last answer was. Time is
 * given, not read: each case is a timeline of the sender's checks (every 50 ms, spoolAfterMs 100).
 */
describe('WriterLiveness', () => {
  /** A WriterLiveness whose PINGs are recorded at the time `at()` last set. */
  function liveness (): { live: WriterLiveness, pings: number[], at: (t: number) => number } {
    const pings: number[] = []
    let now = 0
    const live = new WriterLiveness(100, 50, () => pings.push(now))
    const at = (t: number): number => {
      now = t
      return t
    }
    return { live, pings, at }
  }

  it('a writer that stops answering is judged away once a PING has waited 100 ms, not before', () => {
    const { live, pings, at } = liveness()
    live.waitFrom(at(0))
    expect(live.check(at(50), true)).toBe(false)        // PING at 50
    expect(live.check(at(100), true)).toBe(false)       // 50 ms unanswered
    expect(live.check(at(150), true)).toBe(true)        // 100 ms unanswered
    expect(pings).toEqual([50])
  })

  it('a writer that answers every PING is never judged away, however long the batches wait', () => {
    const { live, pings, at } = liveness()
    live.waitFrom(at(0))
    for (let t = 50; t <= 2000; t += 50) {
      expect(live.check(at(t), true), `at ${t} ms`).toBe(false)
      live.pong(at(t + 20))
    }
    expect(pings).toHaveLength(40)
  })

  it('after the sender thread itself stalled 600 ms, the first check sends a PING and waits for it: no verdict from the old answer', () => {
    const { live, pings, at } = liveness()
    live.waitFrom(at(0))
    expect(live.check(at(50), true)).toBe(false)
    live.pong(at(52))
    expect(live.check(at(650), true)).toBe(false)       // late: this thread did not run; nothing judged
    expect(live.check(at(700), true)).toBe(false)       // the last answer is 648 ms old, but the PING just went out
    expect(pings).toEqual([50, 700])
    live.pong(at(703))
    expect(live.check(at(750), true)).toBe(false)
    expect(live.check(at(800), true)).toBe(false)
    expect(live.check(at(850), true)).toBe(true)        // the PING of 750 unanswered for 100 ms
  })

  it('one answer later than the wait allowed is enough (a stopped writer is noticed after spoolAfterMs); answers slow throughout widen the wait to 4 x their smoothed round trip', () => {
    const { live, pings, at } = liveness()
    live.waitFrom(at(0))
    expect(live.check(at(50), true)).toBe(false)        // PING at 50
    expect(live.check(at(100), true)).toBe(false)
    expect(live.check(at(150), true)).toBe(true)        // unanswered for 100 ms: away, stopped or not run
    live.pong(at(170))                                  // a 120 ms round trip
    expect(live.allowedMs).toBe(480)
    for (let t = 200; t < 2000; t += 150) {
      expect(live.check(at(t), true), `at ${t} ms`).toBe(false)              // PING at t
      expect(live.check(at(t + 50), true), `at ${t + 50} ms`).toBe(false)
      expect(live.check(at(t + 100), true), `at ${t + 100} ms`).toBe(false)  // 100 ms unanswered: within 480
      live.pong(at(t + 120))
    }
    expect(live.allowedMs).toBe(480)
    expect(pings).toHaveLength(13)
  })

  it('a PING resent after twice the wait allowed keeps the silence counted from the first one', () => {
    const { live, pings, at } = liveness()
    live.waitFrom(at(0))
    live.check(at(50), true)
    expect(live.away(at(260))).toBe(true)               // resent at 260; unanswered since 50
    expect(pings).toEqual([50, 260])
    live.alive(at(300))                                  // a new connection: the count starts again
    expect(live.away(at(320))).toBe(false)
    expect(pings).toEqual([50, 260, 320])
  })
})
