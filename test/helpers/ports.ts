import { once } from 'node:events'
import { createServer } from 'node:net'

async function isFree (port: number, host: string): Promise<boolean> {
  const server = createServer()
  server.listen(port, host)
  // once() rejects on 'error': a port in use is "not free", never a thrown EADDRINUSE.
  const outcome = await once(server, 'listening').then(() => true, () => false)
  if (outcome) await new Promise((resolve) => server.close(resolve))
  return outcome
}

/**
 * A tcp port P such that P and P + 1 (the writer's receipt port) are free on `host` right now.
 * Another process may take them before the writer binds; the writer then fails with
 * LOGFUNNEL_ERR_BIND, which a test reports rather than retries.
 */
export async function freePortPair (host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 40_000)
    if (await isFree(port, host) && await isFree(port + 1, host)) return port
  }
  throw new Error(`no free pair of tcp ports found on ${host}`)
}
