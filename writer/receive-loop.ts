import { setImmediate as nextTurn, setTimeout as delay } from 'node:timers/promises'
import type { ResolvedWriterOptions } from '../shared/options.js'
import { receiveMessage } from '../shared/receive.js'
import type { StopRequest } from './cancellable-waits.js'
import type { DataSocket } from './data-socket.js'
import { messageBytes } from './message-check.js'
import type { FileSink } from './sink/file-sink.js'
import type { SpoolIngester } from './spool-ingest.js'
import { spoolFileWaits } from './spool-files.js'
import { StopDrain } from './stop-drain.js'
import { ZmtpPull } from './zmtp-pull.js'

/** Above this many bytes waiting for the file, the receive loop pauses (bounds writer memory). */
export const WRITE_QUEUE_BYTES = 8 * 1024 * 1024

/**
 * Bytes received after which the receive loop lets the event loop turn. zeromq.js resolves up
 * to 512 receives in a row without a turn (max_sync_operations in its socket.cc) when messages
 * are queued; meanwhile the file's write and fsync completions wait, and the file idles.
 */
const TURN_EVERY_BYTES = 1024 * 1024

/**
 * Live messages wait at most this long for the spool's first pass at start; past it they are
 * read beside the rest of it. A writer started on a large spool (a long outage) must not hold its
 * live producers for as long as it takes to read it (about 100 MB a second here): their windows
 * fill in well under a second at full speed, and then their log calls wait (`onFull: 'block'`).
 * (Test hook: LOGFUNNEL_TEST_FIRST_PASS_WAIT_MS replaces it.)
 */
export const FIRST_PASS_WAIT_MS = Number(process.env.LOGFUNNEL_TEST_FIRST_PASS_WAIT_MS ?? 1000)

/** What the receive loop works with: the writer's parts, and what it calls for each message. */
export interface ReceiveLoopParts {
  pull: DataSocket
  sink: FileSink
  options: Pick<ResolvedWriterOptions, 'drainIdleMs' | 'drainTimeoutMs' | 'spoolDir'>
  stop: StopRequest
  /** The spool ingester, if any: its first pass comes before the first message, and the stop's drain waits for it. */
  ingester: () => SpoolIngester | undefined
  /** Handles one message; returns the sink offset its payload ends at when it was written. */
  handle: (frames: Buffer[]) => number | undefined
  /** Called for each message received, good or bad. */
  received: () => void
  /** Awaited after each message (WriterHooks.afterMessage). */
  afterMessage: (() => Promise<void>) | undefined
}

/**
 * The writer's receive loop: hands each message of the data socket to `handle` until the stop
 * is requested and drained (StopDrain; at once when nothing is in flight), then closes the
 * socket. With more than WRITE_QUEUE_BYTES waiting for the file it pauses, so that producers
 * see backpressure; once asked to stop, it waits `drainTimeoutMs` at most and then stops
 * receiving.
 */
export async function receiveLoop (parts: ReceiveLoopParts): Promise<void> {
  const { pull, sink, options, stop: stopRequest, ingester, handle, received, afterMessage } = parts
  const ring = pull instanceof ZmtpPull ? pull.ring : undefined
  const TIMEOUT = Symbol('timeout')
  let drain: StopDrain | undefined
  // The spool at start before live messages: a process whose earlier producer spooled while the
  // writer was away and whose later one sends live now has their lines in the order logged
  // (before, a producer reconnecting during a spool of a few MB had its lines among the
  // spooled ones). Heartbeats are answered meanwhile (zmtp-pull.ts); messages wait in the socket,
  // for at most FIRST_PASS_WAIT_MS.
  const firstPass = ingester()?.firstPass
  if (firstPass !== undefined) {
    const stop = stopRequest.wait()
    const bound = new AbortController()
    await Promise.race([firstPass, stop.promise, delay(FIRST_PASS_WAIT_MS, undefined, { signal: bound.signal }).catch(() => {})])
    bound.abort()
    stop.cancel()
  }
  let pending = receiveMessage(pull)
  let sinceTurn = 0
  for (;;) {
    const wait = drain?.wait() ?? stopRequest.wait()
    const frames = await Promise.race([pending, wait.promise.then(() => TIMEOUT)])
    wait.cancel()
    if (frames === TIMEOUT) {
      if (drain !== undefined) {
        if (drain.timedOut()) break
        continue
      }
      // No producer connected, nothing received waits, no spool file waits: nothing is in flight.
      const quiet = ring !== undefined && (pull as ZmtpPull).drained
      if (quiet && !spoolFileWaits(options.spoolDir)) break
      drain = new StopDrain(options, ingester(), quiet)
      continue
    }
    if (frames === undefined) break
    drain?.received()
    received()
    const end = handle(frames as Buffer[])
    if (ring !== undefined) {
      ring.hold(frames as Buffer[], end ?? 0)
      if (end === undefined) ring.release(sink.bytesWritten)
    }
    sinceTurn += messageBytes(frames as Buffer[])
    if (sinceTurn >= TURN_EVERY_BYTES) {
      sinceTurn = 0
      await nextTurn()
    }
    pending = receiveMessage(pull)
    if (sink.pendingBytes > WRITE_QUEUE_BYTES) {
      // While the file fails the loop waits here, so producers see backpressure; once asked
      // to stop, it waits drainTimeoutMs at most and then stops receiving.
      const stop = stopRequest.wait()
      const stopThenDrain = stop.promise.then(async () => await delay(options.drainTimeoutMs, undefined, { ref: false }))
      await Promise.race([sink.waitBelow(WRITE_QUEUE_BYTES), stopThenDrain])
      stop.cancel()
      if (sink.pendingBytes > WRITE_QUEUE_BYTES) break
      sinceTurn = 0
    }
    if (afterMessage !== undefined) await afterMessage()
    if (drain?.expired === true) break
  }
  pull.close()
  await pending
}
