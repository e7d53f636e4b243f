import type { DbSchema } from './types.js';

/** The core database of one node slot (`hearthnet-<slot>`). Phase-3 modules own their own databases. */
export const CORE_SCHEMA: DbSchema = {
  version: 1,
  stores: [
    { name: 'keys', keyPath: 'k' },
    { name: 'config', keyPath: 'k' },
    {
      name: 'events',
      keyPath: 'event_id',
      indexes: [
        { name: 'by_order', keyPath: ['lamport', 'event_id'] },
        { name: 'by_type', keyPath: ['event_type', 'lamport'] },
        { name: 'by_author', keyPath: ['author', 'seq'] },
        { name: 'by_time', keyPath: ['ts_ms', 'event_id'] },
      ],
    },
    /** (author, seq) → event: the per-author hash chain, looked up by primary key on the hot path */
    { name: 'chain', keyPath: 'k' },
    { name: 'heads', keyPath: 'author' },
    { name: 'meta', keyPath: 'k' },
    { name: 'conflicts', keyPath: 'k' },
  ],
};
