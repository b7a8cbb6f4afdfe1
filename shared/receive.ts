import { setImmediate as nextTurn } from 'node:timers/promises'
import { debuglog } from 'node:util'

const debug = debuglog('logfunnel')

/** A zeromq.js socket that receives: Pull, Subscriber, XPublisher, Router. */
export interface ReceivingSocket {
  readonly closed: boolean
  receive: () => Promise<Buffer[]>
}

/**
 * One message, or undefined once the socket is closed. Other errors are thrown.
 *
 * zeromq.js rejects a receive with EAGAIN when libzmq reported a message ready (ZMQ_EVENTS) that
 * was gone when it read it; seen on a CURVE writer while handshakes fail. Without a receive
 * timeout EAGAIN only means "not now", so it is retried on the next turn of the event loop
 * rather than ending the receive loop (which, for the writer's PULL, crashed the writer).
 */
export async function receiveMessage (socket: ReceivingSocket): Promise<Buffer[] | undefined> {
  for (;;) {
    try {
      return await socket.receive()
    } catch (err) {
      if (socket.closed) return undefined
      if ((err as { code?: unknown }).code !== 'EAGAIN') throw err
      debug('receive: spurious EAGAIN, retrying')
      await nextTurn()
    }
  }
}

/** The messages of a socket until it is closed (a `for await` that survives spurious EAGAIN). */
export async function * messages (socket: ReceivingSocket): AsyncGenerator<Buffer[]> {
  for (;;) {
    const msg = await receiveMessage(socket)
    if (msg === undefined) return
    yield msg
  }
}
