/**
 * One writer-ingest pusher process: `node ingest-pusher.js <json PusherParams>`.
 *
 * Builds `frames` plain frames of `frameBytes` bytes, each made of complete
 * `{"pid","seq","pad"}` lines of `lineBytes` bytes (so the file can be verified), connects a
 * raw ZeroMQ PUSH socket, prints `{"event":"ready"}`, and on `go` (stdin) sends every frame as
 * fast as the socket takes them (ZMQ_SNDHWM 1000), then prints `{"event":"sent"}`. It keeps
 * the socket open until `exit` (or stdin closes), so libzmq can deliver what it still queues.
 */
import { createInterface } from 'node:readline'
import * as zmq from 'zeromq'
import { benchError } from './child.js'

/** The JSON argument of the pusher process. */
export interface PusherParams {
  endpoint: string
  frames: number
  frameBytes: number
  lineBytes: number
}

const params = JSON.parse(process.argv[2] ?? '{}') as PusherParams
const frames = buildFrames(params)
const push = new zmq.Push({ linger: 0 })
push.connect(params.endpoint)
const input = createInterface({ input: process.stdin })
const commands = input[Symbol.asyncIterator]()

process.stdout.write(`${JSON.stringify({ event: 'ready', pid: process.pid })}\n`)
const go = await commands.next()
if (go.done === true || go.value.trim() !== 'go') throw benchError(`expected "go" on stdin, got ${JSON.stringify(go.value)}`)
const t0 = performance.now()
for (const frame of frames) await push.send(frame)
process.stdout.write(`${JSON.stringify({ event: 'sent', frames: frames.length, ms: performance.now() - t0 })}\n`)
await commands.next()
push.close()
input.close()

function buildFrames ({ frames: count, frameBytes, lineBytes }: PusherParams): Buffer[] {
  const linesPerFrame = Math.floor(frameBytes / lineBytes)
  const all = Buffer.alloc(count * linesPerFrame * lineBytes, 'x')
  let seq = 0
  for (let offset = 0; offset < all.length; offset += lineBytes) {
    const head = `{"pid":${process.pid},"seq":${seq++},"pad":"`
    all.write(head, offset)
    all.write('"}\n', offset + lineBytes - 3)
  }
  const result: Buffer[] = []
  for (let i = 0; i < count; i++) result.push(all.subarray(i * linesPerFrame * lineBytes, (i + 1) * linesPerFrame * lineBytes))
  return result
}
