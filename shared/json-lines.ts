/**
 * Reads JSON lines from a child's stdout (the writer's ready and stopped lines, a bench child's
 * reports): calls `onLine` with each line that parses, in order; other text is passed to
 * `onText` (or ignored). Lines may arrive split across chunks.
 */
export function readJsonLines (stream: NodeJS.ReadableStream, onLine: (line: unknown) => void, onText?: (text: string) => void): void {
  let pending = ''
  stream.setEncoding('utf8')
  stream.on('data', (chunk: string) => {
    pending += chunk
    let nl = pending.indexOf('\n')
    while (nl !== -1) {
      const text = pending.slice(0, nl)
      pending = pending.slice(nl + 1)
      nl = pending.indexOf('\n')
      let line: unknown
      try {
        line = JSON.parse(text)
      } catch {
        onText?.(text)
        continue
      }
      onLine(line)
    }
  })
}
