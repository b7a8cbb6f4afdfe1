import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { exitCode, ROOT, spawnNode, tempDir } from './helpers/children.js'

/**
 * The package's types as an application's strict tsconfig sees them: `logfunnel`,
 * `logfunnel/transport` and `logfunnel/writer` imported the way the README uses them, compiled by
 * tsc against dist/*.d.ts (skipLibCheck off) with `exactOptionalPropertyTypes` on, as in
 * @tsconfig/strictest. Before, the README's own `funnel({ endpoint: process.env.LOGFUNNEL_ENDPOINT })`
 * failed there (TS2379: 'string | undefined' is not assignable to 'string'), though undefined
 * means the default at run time; the options now say `| undefined`.
 */
const APP = `
import pino from 'pino'
import { funnel, startWriter, LogfunnelError, type ProducerOptions, type FunnelDestination } from 'logfunnel'
import { FunnelStream } from 'logfunnel/transport'
import { Writer } from 'logfunnel/writer'

export async function main (): Promise<void> {
  const writer = await startWriter({ file: './logs/app.log', endpoint: process.env.LOGFUNNEL_ENDPOINT, rotateSizeBytes: undefined })
  const dest: FunnelDestination = funnel({ endpoint: process.env.LOGFUNNEL_ENDPOINT, onFull: 'spool', spoolDir: process.env.SPOOL })
  const log = pino(dest)
  log.child({ reqId: 1 }).info({ seq: 0 }, 'typed')
  await dest.flush(5000)
  dest.end()
  const t = pino.transport<ProducerOptions>({ target: 'logfunnel/transport', options: { endpoint: writer.endpoint, linger: undefined } })
  pino(t).info('through the transport')
  // @ts-expect-error not an onFull policy
  funnel({ onFull: 'wait' })
  // @ts-expect-error not an option
  funnel({ sync: true })
  const resolved: number = dest.options.maxFrameBytes
  const summary = await writer.stop()
  console.log(resolved, summary.records, typeof Writer, typeof FunnelStream, new LogfunnelError('LOGFUNNEL_ERR_INTERNAL', 'x').code)
}
`

const SETTINGS = [
  { name: 'ESM, module node16', type: 'module', module: 'node16', moduleResolution: 'node16' },
  { name: 'ESM, module nodenext', type: 'module', module: 'nodenext', moduleResolution: 'nodenext' },
  { name: 'ESM, module esnext, moduleResolution bundler', type: 'module', module: 'esnext', moduleResolution: 'bundler' },
  { name: 'CommonJS, module nodenext (require() of ES modules)', type: 'commonjs', module: 'nodenext', moduleResolution: 'nodenext' }
]

describe('the package\'s types in a strict application (exactOptionalPropertyTypes on)', () => {
  for (const s of SETTINGS) {
    it(`${s.name}: the README's uses compile, a wrong option does not`, async () => {
      const dir = tempDir()
      mkdirSync(join(dir, 'node_modules', '@types'), { recursive: true })
      symlinkSync(ROOT, join(dir, 'node_modules', 'logfunnel'))
      symlinkSync(join(ROOT, 'node_modules', 'pino'), join(dir, 'node_modules', 'pino'))
      symlinkSync(join(ROOT, 'node_modules', '@types', 'node'), join(dir, 'node_modules', '@types', 'node'))
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'app', type: s.type }))
      writeFileSync(join(dir, 'app.ts'), APP)
      writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
        compilerOptions: {
          strict: true,
          exactOptionalPropertyTypes: true,
          noUncheckedIndexedAccess: true,
          skipLibCheck: false,
          esModuleInterop: true,
          module: s.module,
          moduleResolution: s.moduleResolution,
          target: 'es2022',
          types: ['node'],
          noEmit: true
        },
        files: ['app.ts']
      }))
      const tsc = spawnNode([join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { cwd: dir })
      expect(await exitCode(tsc, 60_000), tsc.describe()).toBe(0)
      expect(tsc.stdout(), tsc.describe()).toBe('')
    })
  }
}, 120_000)
