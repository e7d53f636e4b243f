/**
 * M32 implementation registry (A3.4): signed descriptors keyed by (node_id, name, vendor), upserted
 * idempotently, capped with least-recently-seen eviction of peer/event entries (self/operator stay).
 * Advisory only: a valid signature proves "this key said this", nothing about the vendor name.
 */
import { HnError } from '../core/errors.js';
import type { NodeID } from '../core/types.js';
import type { ImplementationDescriptor } from './descriptor.js';

export type Origin = 'self' | 'peer' | 'event' | 'operator';

export interface RegistryEntry {
  key: string;
  descriptor: ImplementationDescriptor;
  source: NodeID;
  origin: Origin;
  first_seen: string;
  last_seen: string;
  compatible: boolean;
  agreed_version: string | null;
}

export interface UpsertResult {
  entry: RegistryEntry;
  change: 'added' | 'updated' | 'unchanged';
  /** set when a (name, vendor, version) triple appears locally for the first time */
  newTriple: 'new_implementation' | 'new_version' | null;
}

export const registryKey = (d: { node_id: string; name: string; vendor: string }): string =>
  `${d.node_id}|${d.name}|${d.vendor}`;

export class ProtocolRegistry {
  private entries = new Map<string, RegistryEntry>();
  private triples = new Set<string>();
  private names = new Set<string>();
  private seenTick = 0;
  private order = new Map<string, number>();

  constructor(
    private max: () => number,
    private now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  upsert(
    d: ImplementationDescriptor,
    meta: { source: NodeID; origin: Origin; compatible: boolean; agreed_version: string | null },
  ): UpsertResult {
    const key = registryKey(d);
    const ts = new Date(this.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const old = this.entries.get(key);
    const triple = `${d.name}|${d.vendor}|${d.version}`;
    const nv = `${d.name}|${d.vendor}`;
    const newTriple = this.triples.has(triple)
      ? null
      : this.names.has(nv)
        ? 'new_version'
        : 'new_implementation';
    this.triples.add(triple);
    this.names.add(nv);
    this.order.set(key, ++this.seenTick);
    if (old) {
      old.last_seen = ts;
      // a curated or own entry keeps its origin; compatibility follows the latest link
      if (meta.origin === 'peer') {
        old.compatible = meta.compatible;
        old.agreed_version = meta.agreed_version;
      }
      if (d.issued_at > old.descriptor.issued_at) {
        old.descriptor = d;
        old.source = meta.source;
        return { entry: old, change: 'updated', newTriple };
      }
      return { entry: old, change: 'unchanged', newTriple };
    }
    const entry: RegistryEntry = {
      key,
      descriptor: d,
      source: meta.source,
      origin: meta.origin,
      first_seen: ts,
      last_seen: ts,
      compatible: meta.compatible,
      agreed_version: meta.agreed_version,
    };
    this.entries.set(key, entry);
    this.evict();
    return { entry, change: 'added', newTriple };
  }

  private evict() {
    while (this.entries.size > this.max()) {
      let victim: string | null = null;
      let oldest = Infinity;
      for (const [k, e] of this.entries) {
        if (e.origin === 'self' || e.origin === 'operator') continue;
        const t = this.order.get(k) ?? 0;
        if (t < oldest) {
          oldest = t;
          victim = k;
        }
      }
      if (!victim) return;
      this.entries.delete(victim);
      this.order.delete(victim);
    }
  }

  /** Filtered page in key order; the cursor is an opaque offset token. */
  list(q: { name?: string; vendor?: string; limit?: number; cursor?: string }) {
    const limit = q.limit ?? 256;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new HnError('bad_request', 'limit must be an integer in 1..1000', { field: 'limit' });
    let offset = 0;
    if (q.cursor !== undefined) {
      const m = /^o([0-9]{1,9})$/.exec(q.cursor);
      if (!m) throw new HnError('bad_request', 'malformed cursor', { field: 'cursor' });
      offset = Number(m[1]);
    }
    const all = [...this.entries.values()]
      .filter(
        (e) =>
          (q.name === undefined || e.descriptor.name === q.name) &&
          (q.vendor === undefined || e.descriptor.vendor === q.vendor),
      )
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    if (offset > all.length) throw new HnError('bad_request', 'cursor out of range', { field: 'cursor' });
    const page = all.slice(offset, offset + limit);
    return {
      entries: page.map((e) => structuredClone(e)),
      next_cursor: offset + limit < all.length ? `o${offset + limit}` : null,
      total: all.length,
    };
  }

  get(key: string): RegistryEntry | undefined {
    return this.entries.get(key);
  }
}
