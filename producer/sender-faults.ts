import { DESTROY_TIMEOUT_MS } from './sender-requests.js'

/**
 * Test hooks of test/sender-fault.test.ts, set through LOGFUNNEL_TEST_SENDER_FAULT; unset in
 * any real use, and then neither does anything.
 */
const FAULT = process.env.LOGFUNNEL_TEST_SENDER_FAULT

/** `<n>`: the first sender of a thread throws at the end of a tick once it has sealed n batches, as a bug would. */
const FAULT_AT_BATCH = Number(FAULT ?? 0)
let faultFired = false

/** Throws once, as a bug would, when the hook is set and `batches` have been sealed (see FAULT_AT_BATCH). */
export function faultAfterBatches (batches: number): void {
  // `always`: every sender throws at its first batch, as a bug that keeps coming back would.
  if (FAULT === 'always' && batches >= 1) throw new Error('test fault, always')
  if (FAULT_AT_BATCH > 0 && batches >= FAULT_AT_BATCH && !faultFired) {
    faultFired = true
    throw new Error(`test fault after batch ${FAULT_AT_BATCH}`)
  }
}

/** `stall-exit`: the sender thread answers the exit request only after the logging thread stopped waiting, as a hung disk would. */
export function stallAtExit (): void {
  if (FAULT === 'stall-exit') Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, DESTROY_TIMEOUT_MS + 1000)
}

/** `stall-close`: the sender thread never answers the close request and never yields again, as a loop that never ends would. */
export function stallAtClose (): void {
  if (FAULT === 'stall-close') for (;;) {}
}

/** `stuck`: the sender thread never yields again once it is about to take its first slot, as a loop that never ends would. */
export function stuckAtTake (): void {
  if (FAULT === 'stuck') for (;;) {}
}
