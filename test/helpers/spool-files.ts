import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { encodeHeader } from '../../shared/protocol.js'
import { encodeSpoolEntry, encodeSpoolPreamble, endpointKey } from '../../shared/spool.js'

export interface CraftedSpool {
  /** The endpoint recorded in the preamble; none: a file without preamble. */
  endpoint?: string
  records: number
  /** Records per entry (batch). */
  perBatch?: number
  producerId?: Buffer
  pid?: number
  /** The process start time recorded in the preamble. */
  start?: string | null
  /** Marks each line, so the test can tell whose records reached the file. */
  tag?: string
}

/** A spool file's bytes as a producer writes them: preamble, then entries of `perBatch` lines. */
export function craftSpool (spec: CraftedSpool): { bytes: Buffer, producerId: Buffer, name: (segment: number, tmp?: boolean) => string } {
  const producerId = spec.producerId ?? randomBytes(16)
  const perBatch = spec.perBatch ?? 10
  const pid = spec.pid ?? 1
  const parts: Buffer[] = []
  if (spec.endpoint !== undefined) parts.push(encodeSpoolPreamble({ endpoint: endpointKey(spec.endpoint), pid, start: spec.start ?? null }))
  for (let first = 0, seq = 0; first < spec.records; first += perBatch, seq++) {
    const n = Math.min(perBatch, spec.records - first)
    const lines = Array.from({ length: n }, (_, i) => JSON.stringify({ tag: spec.tag ?? 'spool', seq: first + i }) + '\n').join('')
    parts.push(...encodeSpoolEntry(encodeHeader({ records: n, seq, base: 0, producerId }), Buffer.from(lines)))
  }
  const idHex = producerId.toString('hex')
  return {
    bytes: Buffer.concat(parts),
    producerId,
    name: (segment, tmp = false) => `${idHex}-${pid}-${String(segment).padStart(10, '0')}.spool${tmp ? '.tmp' : ''}`
  }
}

/** Writes a crafted spool file into `dir`; returns its name. */
export function writeSpool (dir: string, spec: CraftedSpool & { tmp?: boolean, segment?: number }): string {
  const spool = craftSpool(spec)
  const name = spool.name(spec.segment ?? 0, spec.tmp)
  writeFileSync(`${dir}/${name}`, spool.bytes, { mode: 0o600 })
  return name
}
