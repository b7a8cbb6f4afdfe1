/// <reference types="node" preserve="true" />
// The published .d.ts files use Node types (EventEmitter, Buffer); TypeScript 6+ no longer
// loads @types/node unless asked, so the entry points ask for it.
export { funnel, FunnelDestination } from './funnel.js'
export { startWriter, type RunningWriter, type StartWriterOptions, type StoppedSummary } from './start-writer.js'
export type { SenderStats } from './sender-stats.js'
export { ProcessLock } from './process-lock.js'
export { flockDestination } from './flock-destination.js'
export { PRODUCER_DEFAULTS, WRITER_DEFAULTS, type ProducerOptions, type WriterOptions, type OnFull } from '../shared/options.js'
export * from '../shared/errors.js'
