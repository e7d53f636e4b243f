/** In-memory storage adapter with IndexedDB semantics (atomic transactions, unique indexes, key order). */
import { HnError } from '../core/errors.js';
import {
  compareKeys,
  inRange,
  keyOf,
  type DbSchema,
  type Key,
  type Query,
  type StorageAdapter,
  type StoreSchema,
  type Tx,
} from './types.js';
import { SingleOpStorage } from './single-op.js';
import { queueTail } from '../core/vocab.js';

interface Row {
  key: Key;
  value: unknown;
}
interface Table {
  rows: Map<string, Row>;
  /** unique index name → index key → primary key string */
  uniq: Map<string, Map<string, string>>;
}
const ks = (k: Key) => JSON.stringify(k);
const DELETED = Symbol('deleted');

/** Databases outlive adapter instances (as IndexedDB does), so close + reopen sees the data. */
const DATABASES = new Map<string, Map<string, Table>>();

export async function openMemoryStorage(name: string, schema: DbSchema): Promise<StorageAdapter> {
  let db = DATABASES.get(name);
  if (!db) {
    db = new Map();
    DATABASES.set(name, db);
  }
  for (const s of schema.stores) {
    if (!db.has(s.name)) {
      const uniq = new Map(
        (s.indexes ?? []).filter((i) => i.unique).map((i) => [i.name, new Map<string, string>()]),
      );
      db.set(s.name, { rows: new Map(), uniq });
    }
  }
  return new MemoryStorage(name, db, new Map(schema.stores.map((s) => [s.name, s])));
}

/** Drop a memory database (tests). */
export function deleteMemoryDatabase(name: string): void {
  DATABASES.delete(name);
}

/** Writes of one transaction, applied to the base tables only when the body succeeds. */
class Overlay {
  writes = new Map<string, Map<string, Row | typeof DELETED>>();
  cleared = new Set<string>();
  of(store: string) {
    let m = this.writes.get(store);
    if (!m) this.writes.set(store, (m = new Map()));
    return m;
  }
}

class MemoryStorage extends SingleOpStorage {
  readonly kind = 'memory' as const;
  private closed = false;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    readonly name: string,
    private db: Map<string, Table>,
    private schemas: Map<string, StoreSchema>,
  ) {
    super();
  }

  private base(store: string): [Table, StoreSchema] {
    const t = this.db.get(store);
    const s = this.schemas.get(store);
    if (!t || !s) throw new HnError('storage_failed', `unknown store ${store}`);
    return [t, s];
  }

  async transaction<R>(
    stores: string[],
    mode: 'readonly' | 'readwrite',
    fn: (tx: Tx) => Promise<R>,
  ): Promise<R> {
    if (this.closed) throw new HnError('closed', 'storage closed');
    const run = async (): Promise<R> => {
      for (const s of stores) this.base(s);
      const ov = new Overlay();
      let r: R;
      try {
        r = await fn(this.txOver(new Set(stores), ov, mode === 'readonly'));
      } catch (e) {
        if (e instanceof HnError) throw e;
        throw new HnError('storage_failed', `transaction aborted: ${(e as Error)?.name ?? 'error'}`);
      }
      this.commit(ov);
      return r;
    };
    // transactions run one at a time, in order, like IndexedDB read-write transactions on overlapping scopes
    const p = this.chain.then(run, run);
    this.chain = queueTail(p); // the caller gets the error from p
    return p;
  }

  private commit(ov: Overlay) {
    for (const store of ov.cleared) {
      const [t] = this.base(store);
      t.rows.clear();
      for (const m of t.uniq.values()) m.clear();
    }
    for (const [store, writes] of ov.writes) {
      const [t, s] = this.base(store);
      for (const [k, w] of writes) {
        const old = t.rows.get(k);
        if (old) this.unindex(t, s, old, k);
        if (w === DELETED) t.rows.delete(k);
        else {
          t.rows.set(k, w);
          for (const idx of s.indexes ?? []) {
            if (!idx.unique) continue;
            const ik = keyOf(w.value, idx.keyPath);
            if (ik !== undefined) t.uniq.get(idx.name)!.set(ks(ik), k);
          }
        }
      }
    }
  }

  private unindex(t: Table, s: StoreSchema, row: Row, pk: string) {
    for (const idx of s.indexes ?? []) {
      if (!idx.unique) continue;
      const ik = keyOf(row.value, idx.keyPath);
      if (ik === undefined) continue;
      const m = t.uniq.get(idx.name)!;
      if (m.get(ks(ik)) === pk) m.delete(ks(ik));
    }
  }

  private txOver(scope: Set<string>, ov: Overlay, readonly: boolean): Tx {
    const check = (store: string) => {
      if (!scope.has(store)) throw new HnError('storage_failed', `store ${store} not in transaction scope`);
      return this.base(store);
    };
    const current = (store: string, k: string): Row | undefined => {
      const w = ov.writes.get(store)?.get(k);
      if (w === DELETED) return undefined;
      if (w) return w;
      if (ov.cleared.has(store)) return undefined;
      return this.base(store)[0].rows.get(k);
    };
    const rowsOf = function* (self: MemoryStorage, store: string): Generator<Row> {
      const writes = ov.writes.get(store);
      if (!ov.cleared.has(store)) {
        for (const [k, r] of self.base(store)[0].rows) if (!writes?.has(k)) yield r;
      }
      if (writes) for (const w of writes.values()) if (w !== DELETED) yield w;
    };
    const select = (store: string, q: Query = {}) => {
      const [, s] = check(store);
      const idx = q.index ? s.indexes?.find((i) => i.name === q.index) : undefined;
      if (q.index && !idx) throw new HnError('storage_failed', `unknown index ${q.index}`);
      const out: { k: Key; pk: Key; value: unknown }[] = [];
      for (const r of rowsOf(this, store)) {
        const k = idx ? keyOf(r.value, idx.keyPath) : r.key;
        if (k === undefined || !inRange(k, q)) continue;
        out.push({ k, pk: r.key, value: r.value });
      }
      out.sort((a, b) => compareKeys(a.k, b.k) || compareKeys(a.pk, b.pk));
      if (q.reverse) out.reverse();
      return q.limit !== undefined ? out.slice(0, q.limit) : out;
    };
    const writable = (store: string) => {
      if (readonly) throw new HnError('storage_failed', 'readonly transaction');
      return check(store);
    };
    return {
      get: async <T>(store: string, key: Key) => {
        check(store);
        return structuredClone(current(store, ks(key))?.value) as T | undefined;
      },
      getAll: async <T>(store: string, q?: Query) =>
        select(store, q).map((r) => structuredClone(r.value) as T),
      count: async (store: string, q?: Query) => select(store, q).length,
      put: async (store, value) => {
        const [t, s] = writable(store);
        const key = keyOf(value, s.keyPath);
        if (key === undefined) throw new HnError('storage_failed', `value has no key at ${s.keyPath}`);
        const pk = ks(key);
        for (const idx of s.indexes ?? []) {
          if (!idx.unique) continue;
          const ik = keyOf(value, idx.keyPath);
          if (ik === undefined) continue;
          const iks = ks(ik);
          // a conflict is another live row (in this transaction or committed) with the same index key
          for (const [k, w] of ov.writes.get(store) ?? []) {
            if (k !== pk && w !== DELETED && ks(keyOf(w.value, idx.keyPath) ?? []) === iks)
              throw new HnError('storage_failed', `unique index ${idx.name} violated`);
          }
          const owner = ov.cleared.has(store) ? undefined : t.uniq.get(idx.name)!.get(iks);
          if (owner !== undefined && owner !== pk && current(store, owner)) {
            const ownerRow = current(store, owner)!;
            const still = keyOf(ownerRow.value, idx.keyPath);
            if (still !== undefined && ks(still) === iks)
              throw new HnError('storage_failed', `unique index ${idx.name} violated`);
          }
        }
        ov.of(store).set(pk, { key, value: structuredClone(value) });
      },
      delete: async (store, key) => {
        writable(store);
        ov.of(store).set(ks(key), DELETED);
      },
      clear: async (store) => {
        writable(store);
        ov.cleared.add(store);
        ov.writes.delete(store);
      },
    };
  }

  async close() {
    this.closed = true;
  }
}
