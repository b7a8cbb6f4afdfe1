import { execFileSync } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exitCode, ROOT, spawnCommand, spawnNode, tempDir } from './helpers/children.js'

/**
 * As a new user would: the packed tarball installed into a fresh app with
 * `npm install --ignore-scripts` (no compiler needed: fs-ext stays unbuilt), then README.md's
 * Quick start run exactly as written there (each ```js block whose first line names a file).
 */

/** README code blocks that start with `// <name>.mjs` are files of the Quick start. */
function readmeFiles (): Map<string, string> {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const files = new Map<string, string>()
  for (const [, body] of readme.matchAll(/```js\n([\s\S]*?)```/g)) {
    const name = /^\/\/ (\S+\.mjs)/.exec(body as string)?.[1]
    if (name !== undefined) files.set(name, body as string)
  }
  return files
}

/** A program that logs and just ends: out within this long once the writer is up. */
const EXIT_MS = 5000

let app = ''
let env: NodeJS.ProcessEnv = {}
const bin = (): string => join(app, 'node_modules', '.bin', 'logfunnel')

beforeAll(() => {
  // Not tempDir(): that one is removed after each test, and the app serves them all.
  app = execFileSync('mktemp', ['-d', '/tmp/lf-app-XXXXXX'], { encoding: 'utf8' }).trim()
  const tarball = execFileSync('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', app], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').pop() as string
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'fresh-app', version: '1.0.0', type: 'module', private: true }))
  execFileSync('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', join(app, tarball), 'pino'], { cwd: app, stdio: 'pipe' })
  for (const [name, body] of readmeFiles()) writeFileSync(join(app, name), body)
  // Default endpoints live under os.tmpdir(): keep them in this app's own directory.
  env = { ...process.env, TMPDIR: app }
}, 180_000)

afterAll(() => {
  if (app !== '') rmSync(app, { recursive: true, force: true })
})

describe('the packed tarball in a fresh app, installed without running scripts', () => {
  it('README Quick start: the writer, a program that logs and ends, the transport, verify', async () => {
    expect([...readmeFiles().keys()]).toEqual(['app.mjs', 'transport.mjs', 'pool.mjs'])
    const writer = spawnCommand(bin(), ['writer', '--file', './logs/app.log'], { cwd: app, env })
    await writer.waitForLine((l) => l.event === 'ready')
    for (const script of ['app.mjs', 'transport.mjs']) {
      const run = spawnNode([script], { cwd: app, env })
      expect(await exitCode(run, EXIT_MS), run.describe()).toBe(0)
    }
    const stopped = writer.waitForLine((l) => l.event === 'stopped')
    writer.proc.kill('SIGTERM')
    expect(await stopped).toMatchObject({ records: 2, producers: 2 })
    expect(await exitCode(writer)).toBe(0)
    const lines = readFileSync(join(app, 'logs', 'app.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { msg: string })
    expect(lines.map((l) => l.msg).sort()).toEqual(['hello', 'through a transport'])
  })

  it('README pool: a cluster primary with startWriter() and 4 workers ends by itself; verify says ok', async () => {
    const pool = spawnNode(['pool.mjs'], { cwd: app, env })
    expect(await exitCode(pool, 30_000), pool.describe()).toBe(0)
    expect(pool.stdout()).toMatch(/records: 4000/)
    const verify = spawnCommand(bin(), ['verify', './logs/pool.log'], { cwd: app, env })
    expect(await exitCode(verify), verify.describe()).toBe(0)
  })

  it('the lock-based baseline says what to install without fs-ext; the rest never needs it', async () => {
    const probe = spawnNode(['--input-type=module', '-e', "import { ProcessLock } from 'logfunnel'; try { new ProcessLock('./x.lock') } catch (err) { console.log(JSON.stringify({ code: err.code, message: err.message })) }"], { cwd: app, env })
    const line = await probe.waitForLine(() => true)
    expect(line.code).toBe('LOGFUNNEL_ERR_MISSING_DEPENDENCY')
    expect(line.message).toMatch(/npm install fs-ext/)
    expect(await exitCode(probe)).toBe(0)
  })

  it('a sidecar writer started as a service would be: SIGTERM stops it with exit 0', async () => {
    const dir = tempDir()
    const writer = spawnCommand(bin(), ['writer', '--file', join(dir, 'side.log'), '--endpoint', `ipc://${join(dir, 'w.sock')}`], { cwd: app, env })
    await writer.waitForLine((l) => l.event === 'ready')
    writer.proc.kill('SIGTERM')
    expect(await exitCode(writer)).toBe(0)
    expect(writer.stdout()).toMatch(/"event":"stopped","reason":"SIGTERM"/)
  })
}, 60_000)
