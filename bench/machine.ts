import { readFileSync, realpathSync } from 'node:fs'
import { availableParallelism, cpus, loadavg, release, totalmem, type as osType } from 'node:os'

/** The machine a benchmark ran on, printed above its table. */
export interface Machine {
  cpuModel: string
  cores: number
  memoryGiB: number
  node: string
  os: string
  kernel: string
  /** Where the runs' files were written. */
  tempDir: string
  /** The filesystem holding `tempDir`, from /proc/mounts. */
  filesystem: { type: string, device: string, mountPoint: string }
  /** 1-minute load average when the run started and when it ended: others' load shows here. */
  loadAverage: { start: number, end: number }
}

/**
 * Describes this machine and the filesystem of `tempDir` (the longest mount point in
 * /proc/mounts that contains it). `loadAtStart` is `os.loadavg()[0]` taken when the run
 * started. Fields it cannot learn read `'unknown'`; never throws.
 */
export function describeMachine (tempDir: string, loadAtStart: number): Machine {
  return {
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30 * 10) / 10,
    node: process.version,
    os: osName(),
    kernel: `${osType()} ${release()}`,
    tempDir,
    filesystem: filesystemOf(tempDir),
    loadAverage: { start: loadAtStart, end: loadavg()[0] ?? 0 }
  }
}

/**
 * One line: `Intel Xeon @ 2.80GHz, 2 cores, 23.5 GiB RAM, Node v20.20.2, Debian 12 (Linux 6.1),
 * files in /tmp on ext4 (/dev/vda at /), load average 0.4 -> 2.1`.
 */
export function formatMachine (m: Machine): string {
  return `${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, Node ${m.node}, ${m.os} (${m.kernel}), ` +
    `files in ${m.tempDir} on ${m.filesystem.type} (${m.filesystem.device} at ${m.filesystem.mountPoint}), ` +
    `load average ${m.loadAverage.start.toFixed(1)} at start, ${m.loadAverage.end.toFixed(1)} at end`
}

function osName (): string {
  try {
    const match = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))
    return match?.[1] ?? 'unknown'
  } catch {
    return 'unknown'
  }
}

function filesystemOf (dir: string): Machine['filesystem'] {
  const unknown = { type: 'unknown', device: 'unknown', mountPoint: 'unknown' }
  let path: string
  let mounts: string
  try {
    path = realpathSync(dir)
    mounts = readFileSync('/proc/mounts', 'utf8')
  } catch {
    return unknown
  }
  let best = unknown
  for (const line of mounts.split('\n')) {
    const [device, rawMount, type] = line.split(' ')
    if (device === undefined || rawMount === undefined || type === undefined) continue
    // /proc/mounts escapes space, tab, newline and backslash as octal (\040 ...).
    const mountPoint = rawMount.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)))
    const inside = mountPoint === '/' || path === mountPoint || path.startsWith(`${mountPoint}/`)
    if (inside && (best.mountPoint === 'unknown' || mountPoint.length >= best.mountPoint.length)) {
      best = { type, device, mountPoint }
    }
  }
  return best
}
