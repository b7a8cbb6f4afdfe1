/** The part of `on-exit-leak-free` (CommonJS, no types) that logfunnel uses. */
declare module 'on-exit-leak-free' {
  /** Calls `fn(obj, 'beforeExit')` on the process's 'beforeExit', holding `obj` weakly. */
  export function registerBeforeExit<T extends object> (obj: T, fn: (obj: T, event: string) => void): void
  /** Calls `fn(obj, 'exit')` on the process's 'exit', holding `obj` weakly. */
  export function register<T extends object> (obj: T, fn: (obj: T, event: string) => void): void
  export function unregister (obj: object): void
}
