import { expect } from 'vitest'
import type { Child } from './children.js'

/** The lines of `child`'s stderr that report the thread's failure or records lost. */
export function reports (child: Child): string[] {
  return child.stderr().split('\n').filter((l) => l.includes('no thread could be made') || l.includes('LOGFUNNEL_ERR_CLOSE_TIMEOUT'))
}

/** The one CLOSE_TIMEOUT report of `child` that says `why`: the records it put in the spool and those it says are lost. */
export function spooledAndLost (child: Child, why: string): { spooled: number, lost: number } {
  const said = reports(child).filter((l) => l.includes('LOGFUNNEL_ERR_CLOSE_TIMEOUT'))
  expect(said, child.describe()).toHaveLength(1)
  const m = /close: ([^:]+): (\d+) records without a receipt went to the spool in [^,]+, where the writer ingests them(?:; (\d+) records without a receipt are lost)?$/.exec(said[0] as string)
  expect(m?.[1], said[0]).toBe(why)
  const spooled = Number(m?.[2])
  // The ring holds ~1 MiB of lines: some went to the spool.
  expect(spooled, said[0]).toBeGreaterThan(0)
  return { spooled, lost: Number(m?.[3] ?? 0) }
}
