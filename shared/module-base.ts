import { pathToFileURL } from 'node:url'

/**
 * The URL a module of this package resolves its neighbours against (the sender thread's file,
 * the CLI for startWriter(), optional packages): `import.meta.url`, or, in a CommonJS bundle,
 * the bundle's own file. esbuild's `--format=cjs` leaves `import.meta` empty, so
 * `new URL('./x.js', import.meta.url)` at a module's top level threw `Invalid URL` as the bundle
 * was loaded, whether or not the application ever made a destination.
 */
export function moduleBase (importMetaUrl: string | undefined): string {
  if (typeof importMetaUrl === 'string') return importMetaUrl
  // A CommonJS bundle's module scope has __filename; an ES module has none.
  if (typeof __filename === 'string') return pathToFileURL(__filename).href
  return pathToFileURL(`${process.cwd()}/`).href
}
