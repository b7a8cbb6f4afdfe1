import type { ThreadFailure } from './thread-errors.js'

/**
 * What a logging thread, the thread that made it (its host, sender-host.ts) and a sender thread
 * the host started for it (sender-thread.ts) share: the host's environment data and the names of
 * their channels. BroadcastChannels, because the three threads have no port in common: a host
 * knows its worker threads only from the `'worker'` event, and a pool's worker listens on its
 * parent port for the pool's own messages.
 */

/** The host's entry in `worker_threads` environment data, which every thread it makes inherits. */
export const HOST_KEY = 'logfunnel:sender-host:1'

/** How many live threads a host keeps count of; a thread past that starts its own sender. */
export const MAX_HOSTED_THREADS = 4096

export interface HostData {
  /** The name of the host's channel for start requests (hostChannel). */
  name: string
  /** The thread ids of the host's live worker threads, 0 for a free place (MAX_HOSTED_THREADS). */
  threads: Int32Array
}

export function hostChannel (host: HostData): string {
  return `logfunnel:host:${host.name}`
}

/** A hosted sender's channels: its requests and replies, and the lines too large for a slot. */
export function hostedChannels (name: string): { messages: string, lines: string } {
  return { messages: `logfunnel:sender:${name}`, lines: `logfunnel:lines:${name}` }
}

/** A logging thread asks its host to start its sender thread (sender-host.ts). */
export interface StartRequest {
  code: 'start'
  /** The name of the sender's channels (hostedChannels). */
  name: string
  threadId: number
  /** The sender thread's file, the logging thread's own (the host may have loaded another copy of logfunnel). */
  file: string
  workerData: { control: Int32Array, [key: string]: unknown }
}

/** A logging thread's request passed on by the host to the sender's port (at an exit, before the sender listens). */
export interface RelayRequest {
  code: 'relay'
  name: string
  msg: unknown
}

/**
 * What a hosted sender's logging thread hears besides the sender's replies: the sender listens
 * for lines too large for a slot; it closed and ends now; the host saw it fail or exit.
 */
export type HostedReply =
  | { code: 'listening' }
  | { code: 'closed' }
  | { code: 'host-error', err: ThreadFailure }
  | { code: 'host-exit', exitCode: number }

/** The logging thread asks the host to terminate the sender thread. */
export interface TerminateRequest { code: 'host-terminate' }

/** True when `threads` holds `threadId`. */
export function hostKnows (threads: Int32Array, threadId: number): boolean {
  for (let i = 0; i < threads.length; i++) {
    if (Atomics.load(threads, i) === threadId) return true
  }
  return false
}
