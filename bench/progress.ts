/** Width of the bar in characters. */
const BAR_WIDTH = 24

/**
 * Progress of a bench run on stderr: a bar redrawn in place on a TTY, one plain line per
 * step otherwise (CI logs, pipes). Writes nothing to stdout, which carries the results.
 *
 * @example
 * ```ts
 * const progress = new Progress(72)
 * progress.step('funnel x4 100 B run 2/4: 412k records/s')
 * progress.done()
 * ```
 */
export class Progress {
  readonly total: number
  #done = 0
  #started = performance.now()
  #stream: NodeJS.WriteStream
  #tty: boolean

  constructor (total: number, stream: NodeJS.WriteStream = process.stderr) {
    this.total = total
    this.#stream = stream
    this.#tty = stream.isTTY === true
  }

  /** Counts one finished step and shows `label` for it. */
  step (label: string): void {
    this.#done++
    const elapsedSec = (performance.now() - this.#started) / 1000
    const etaSec = this.#done === 0 ? 0 : elapsedSec / this.#done * (this.total - this.#done)
    const counter = `${this.#done}/${this.total}`
    if (!this.#tty) {
      this.#stream.write(`bench ${counter} ${elapsedSec.toFixed(0)} s: ${label}\n`)
      return
    }
    const filled = Math.round(BAR_WIDTH * this.#done / this.total)
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]`
    const line = `${bar} ${counter} ${elapsedSec.toFixed(0)} s, ~${etaSec.toFixed(0)} s left  ${label}`
    const width = this.#stream.columns ?? 100
    this.#stream.write(`\r${line.slice(0, width - 1).padEnd(width - 1)}`)
  }

  /** Ends the bar's line on a TTY. */
  done (): void {
    if (this.#tty) this.#stream.write('\n')
  }
}
