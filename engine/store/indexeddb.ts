/** IndexedDB storage adapter through `idb`. Under Node tests, `fake-indexeddb` provides the globals. */
import { openDB, type IDBPDatabase, type IDBPTransaction } from 'idb';
import { HnError } from '../core/errors.js';
import type { DbSchema, Key, Query, StorageAdapter, Tx } from './types.js';
import { SingleOpStorage } from './single-op.js';
import { queueTail } from '../core/vocab.js';

function toRange(q: Query | undefined): IDBKeyRange | IDBValidKey | undefined {
  if (!q) return undefined;
  if (q.key !== undefined) return q.key as IDBValidKey;
  const r = q.range;
  if (!r) return undefined;
  if (r.lower !== undefined && r.upper !== undefined)
    return IDBKeyRange.bound(r.lower, r.upper, !!r.lowerOpen, !!r.upperOpen);
  if (r.lower !== undefined) return IDBKeyRange.lowerBound(r.lower, !!r.lowerOpen);
  if (r.upper !== undefined) return IDBKeyRange.upperBound(r.upper, !!r.upperOpen);
  return undefined;
}

export async function openIndexedDbStorage(name: string, schema: DbSchema): Promise<StorageAdapter> {
  if (typeof indexedDB === 'undefined')
    throw new HnError('storage_failed', 'IndexedDB is not available here');
  const db = await openDB(name, schema.version, {
    upgrade(db, _old, _new, tx) {
      for (const s of schema.stores) {
        const store = db.objectStoreNames.contains(s.name)
          ? tx.objectStore(s.name)
          : db.createObjectStore(s.name, { keyPath: s.keyPath });
        for (const idx of s.indexes ?? []) {
          if (!store.indexNames.contains(idx.name))
            store.createIndex(idx.name, idx.keyPath, { unique: !!idx.unique });
        }
      }
    },
    blocking() {
      db.close(); // a newer version wants to upgrade: let it
    },
  });
  return new IdbStorage(name, db);
}

class IdbStorage extends SingleOpStorage {
  readonly kind = 'indexeddb' as const;
  constructor(
    readonly name: string,
    private db: IDBPDatabase,
  ) {
    super();
  }

  async transaction<R>(
    stores: string[],
    mode: 'readonly' | 'readwrite',
    fn: (tx: Tx) => Promise<R>,
  ): Promise<R> {
    let t: IDBPTransaction<unknown, string[], 'readonly' | 'readwrite'>;
    try {
      t = this.db.transaction(stores, mode);
    } catch (e) {
      throw new HnError('storage_failed', `cannot open transaction: ${(e as Error).name}`);
    }
    const src = (store: string, q?: Query) => {
      const os = t.objectStore(store);
      return q?.index ? os.index(q.index) : os;
    };
    const tx: Tx = {
      get: async (store, key) => (await t.objectStore(store).get(key as IDBValidKey)) as never,
      getAll: async <T>(store: string, q?: Query) => {
        const range = toRange(q);
        if (!q?.reverse) return (await src(store, q).getAll(range as IDBKeyRange, q?.limit)) as T[];
        const out: T[] = [];
        let cur = await src(store, q).openCursor(range as IDBKeyRange, 'prev');
        while (cur && (q.limit === undefined || out.length < q.limit)) {
          out.push(cur.value as T);
          cur = await cur.continue();
        }
        return out;
      },
      count: async (store, q) => {
        const n = await src(store, q).count(toRange(q) as IDBKeyRange);
        return q?.limit !== undefined ? Math.min(n, q.limit) : n;
      },
      put: async (store, value) => {
        await t.objectStore(store).put!(value);
      },
      delete: async (store, key: Key) => {
        await t.objectStore(store).delete!(key as IDBValidKey);
      },
      clear: async (store) => {
        await t.objectStore(store).clear!();
      },
    };
    try {
      const r = await fn(tx);
      await t.done;
      return r;
    } catch (e) {
      try {
        t.abort();
      } catch {
        /* already finished */
      }
      // the abort we just asked for rejects t.done; the error reported is the transaction's own (below)
      await queueTail(t.done);
      if (e instanceof HnError) throw e;
      throw new HnError('storage_failed', `transaction aborted: ${(e as Error)?.name ?? 'error'}`);
    }
  }

  async close() {
    this.db.close();
  }
}
