import type { Key, Query, StorageAdapter, Tx } from './types.js';

/** The one-operation conveniences of a StorageAdapter, each its own transaction; shared by every adapter. */
export abstract class SingleOpStorage implements StorageAdapter {
  abstract readonly kind: StorageAdapter['kind'];
  abstract readonly name: string;
  abstract transaction<R>(
    stores: string[],
    mode: 'readonly' | 'readwrite',
    fn: (tx: Tx) => Promise<R>,
  ): Promise<R>;
  abstract close(): Promise<void>;

  get<T>(store: string, key: Key) {
    return this.transaction([store], 'readonly', (tx) => tx.get<T>(store, key));
  }
  getAll<T>(store: string, q?: Query) {
    return this.transaction([store], 'readonly', (tx) => tx.getAll<T>(store, q));
  }
  count(store: string, q?: Query) {
    return this.transaction([store], 'readonly', (tx) => tx.count(store, q));
  }
  put<T>(store: string, value: T) {
    return this.transaction([store], 'readwrite', (tx) => tx.put(store, value));
  }
  delete(store: string, key: Key) {
    return this.transaction([store], 'readwrite', (tx) => tx.delete(store, key));
  }
  clear(store: string) {
    return this.transaction([store], 'readwrite', (tx) => tx.clear(store));
  }
}
