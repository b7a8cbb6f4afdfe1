/**
 * What a SpoolIngester (spool-ingest.ts) is given: its options, and what it needs from the writer
 * (SpoolSink), which hands each spool entry on as a network message.
 */

/** What the ingester needs from the writer. */
export interface SpoolSink {
  /**
   * Handles one entry exactly as a two-frame network message; with `entry.acceptGap`, an entry
   * that skips ahead of its producer's sequence is written all the same. Sets `entry.gapped` when
   * one was refused for skipping ahead.
   */
  handle: (frames: Buffer[], entry: SpoolEntryHandling) => void
  /**
   * Resolves when what was handed over so far is in the file (as durable as a receipt) and the
   * writer's state says so, so that the file can be removed.
   */
  sync: () => Promise<void>
  /** Resolves when the write queue has room again. */
  backpressure: () => Promise<void>
}

/** What handling one spool entry met: refused for skipping ahead (`gapped`), or written past a gap (`skipped`). */
export interface SpoolEntryHandling {
  acceptGap: boolean
  gapped?: { expected: number, seq: number }
  skipped?: { expected: number, seq: number }
}

export interface SpoolIngesterOptions {
  dir: string
  /** How often the directory is scanned when nothing wakes the ingester (see SpoolIngester). */
  pollMs: number
  /**
   * `endpointKey()` of the writer's endpoint and of its `spoolEndpoints`: files recorded for
   * another endpoint are left alone.
   */
  endpointKeys: ReadonlySet<string>
  /** Mode of the `.torn` files it creates (never wider than the log file's). */
  tornMode: number
}
