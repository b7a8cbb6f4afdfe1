import * as zmq from 'zeromq'

const sockets: zmq.Socket[] = []

/** Closes every socket rawPush() made; test/helpers/cleanup.ts calls it after each test. */
export function closeRawPushes (): void {
  for (const s of sockets.splice(0)) s.close()
}

/** A plain ZeroMQ PUSH client connected to `endpoint`, closed after the test. */
export function rawPush (endpoint: string, linger = 0): zmq.Push {
  const push = new zmq.Push({ linger })
  sockets.push(push)
  push.connect(endpoint)
  return push
}
