import { once } from 'node:events'
import { createServer, connect, type Server, type Socket } from 'node:net'

/**
 * A tcp proxy in the test process between producers and a writer: listens on `port` and
 * `port + 1` (data and receipts) and forwards each connection to `target` and `target + 1`.
 * `blackhole()` stops forwarding on every connection open at that moment, in both directions,
 * without closing it (no FIN, no RST): what a NAT or firewall that forgot the connection does.
 * Connections made afterwards are forwarded as usual.
 */
export class TcpProxy {
  readonly #servers: Server[] = []
  readonly #pairs = new Map<[Socket, Socket], number>()
  /** Every socket, forwarded or black-holed, for close(). */
  readonly #sockets = new Set<Socket>()
  /** Connections accepted, per port offset (0: data, 1: receipts). */
  readonly accepted = [0, 0]

  private constructor (readonly port: number) {}

  static async start (port: number, target: number, host = '127.0.0.1'): Promise<TcpProxy> {
    const proxy = new TcpProxy(port)
    for (const offset of [0, 1]) {
      const server = createServer((client) => {
        proxy.accepted[offset]!++
        const upstream = connect(target + offset, host)
        const pair: [Socket, Socket] = [client, upstream]
        proxy.#pairs.set(pair, offset)
        for (const socket of pair) {
          proxy.#sockets.add(socket)
          socket.on('close', () => proxy.#sockets.delete(socket))
        }
        client.pipe(upstream)
        upstream.pipe(client)
        const end = (): void => {
          proxy.#pairs.delete(pair)
          client.destroy()
          upstream.destroy()
        }
        for (const socket of pair) socket.on('error', end).on('close', end)
      })
      server.listen(port + offset, host)
      await once(server, 'listening')
      proxy.#servers.push(server)
    }
    return proxy
  }

  /** Connections being forwarded now. */
  get open (): number {
    return this.#pairs.size
  }

  /** Stops forwarding on every open connection to the ports at `offsets` (0: data, 1: receipts), and leaves them open. */
  blackhole (offsets = [0, 1]): void {
    for (const [pair, offset] of this.#pairs) {
      if (!offsets.includes(offset)) continue
      this.#pairs.delete(pair)
      for (const socket of pair) {
        socket.unpipe()
        socket.pause()
        // Bytes are kept from now on: neither read nor answered (the kernel's buffers fill).
        socket.removeAllListeners('data')
      }
    }
  }

  /** Closes the listeners and every connection, forwarded or black-holed. */
  async close (): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    await Promise.all(this.#servers.map(async (server) => await new Promise((resolve) => server.close(resolve))))
  }
}
