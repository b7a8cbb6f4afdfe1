import * as zmq from 'zeromq'
import { BindError } from '../shared/errors.js'
import { MAX_MESSAGE_SIZE_FACTOR, type ResolvedWriterOptions } from '../shared/options.js'
import { HEADER_BYTES } from '../shared/protocol.js'
import { restrictSocketFile } from './endpoint-security.js'
import type { CurveServer } from './zap-handler.js'
import { ZmtpPull } from './zmtp-pull.js'
import { dataConnectionCap, openFilesLimit } from './descriptor-limit.js'

/**
 * Reused memory for received bodies (FrameRing): room for the write queue, the write and the
 * commit round in flight, with headroom. Larger was slower on the measuring machine (a 128 MiB
 * ring cost more than fresh buffers: bench/README.md, "Fifth round"); when full, bodies take
 * fresh memory.
 */
const RING_BYTES = 32 * 1024 * 1024

/** The writer's data socket: its own ZMTP reader, or a zeromq.js Pull. */
export type DataSocket = ZmtpPull | zmq.Pull

/**
 * Opens and binds the data socket. Without CURVE the writer reads ZMTP itself, into reused
 * memory (zmtp-pull.ts); with CURVE, libzmq opens the boxes (a zeromq.js Pull with the ZAP
 * handler's options; `watchCurve` is given its monitor events before the bind). Rejects with
 * LOGFUNNEL_ERR_BIND.
 */
export async function openDataSocket (options: ResolvedWriterOptions, curve: CurveServer, watchCurve?: (events: zmq.Pull['events']) => void): Promise<DataSocket> {
  const { endpoint, maxFrameBytes, receiveHighWaterMark, socketMode } = options
  const maxMessageBytes = maxFrameBytes * MAX_MESSAGE_SIZE_FACTOR + HEADER_BYTES
  // Opens /proc/self/limits while descriptors are free: the cap is asked for when they are not.
  openFilesLimit()
  if (options.curveSecretKey === null) {
    const pull = new ZmtpPull({ maxMessageBytes, highWaterMark: receiveHighWaterMark, ringBytes: RING_BYTES, maxConnections: () => dataConnectionCap() })
    await bound(endpoint, socketMode, async () => await pull.bind(endpoint), () => pull.close())
    return pull
  }
  const pull = new zmq.Pull({ receiveHighWaterMark, maxMessageSize: maxMessageBytes, linger: 0, ...curve.dataSocketOptions })
  // Before the bind, so that the monitor sees every connection (producers may be dialling already).
  watchCurve?.(pull.events)
  await bind(pull, endpoint, socketMode)
  return pull
}

/** Binds in a directory prepareEndpointDirs() has checked, then gives an ipc socket its mode. */
export async function bind (socket: zmq.Socket, endpoint: string, socketMode: number): Promise<void> {
  await bound(endpoint, socketMode, async () => await socket.bind(endpoint), () => socket.close())
}

async function bound (endpoint: string, socketMode: number, bindIt: () => Promise<void>, close: () => void): Promise<void> {
  try {
    await bindIt()
  } catch (err) {
    close()
    throw new BindError(endpoint, { cause: err })
  }
  restrictSocketFile(endpoint, socketMode)
}
