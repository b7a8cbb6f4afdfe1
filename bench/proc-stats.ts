import { readFileSync } from 'node:fs'

/**
 * Clock ticks per second of /proc/<pid>/stat's utime and stime: USER_HZ, which Linux fixes
 * at 100 on every architecture it exports to user space (see proc(5), `sysconf(_SC_CLK_TCK)`).
 */
const USER_HZ = 100

/** Index of utime after the `(comm)` field of /proc/<pid>/stat (fields 14 and 15, state is 3). */
const UTIME_AFTER_COMM = 11

/**
 * CPU seconds (user + system, all threads) a running process has used so far, read from
 * /proc/<pid>/stat; 10 ms resolution. Throws when the process is gone or /proc is missing.
 */
export function cpuSeconds (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // comm may hold spaces and parentheses: the fields start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[UTIME_AFTER_COMM]) + Number(fields[UTIME_AFTER_COMM + 1])) / USER_HZ
}

/** Peak resident set size (VmHWM) of a running process, in MiB. */
export function peakRssMb (pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(status)
  if (match === null) throw new Error(`no VmHWM in /proc/${pid}/status`)
  return Number(match[1]) / 1024
}

/**
 * Busy CPU seconds of the whole machine so far, all cores summed (the `cpu` line of
 * /proc/stat: user, nice, system, irq, softirq and steal). Minus the benchmark's own
 * processes over the same window, it tells how much else was running.
 */
export function machineBusySeconds (): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? ''
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number)
  return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / USER_HZ
}
