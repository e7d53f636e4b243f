/**
 * Storage adapter: one interface, two implementations (IndexedDB via `idb`, in-memory).
 * The shape follows IndexedDB: a database has object stores with a key path and indexes;
 * keys are numbers, strings or arrays of them; a transaction is atomic — if its body throws,
 * nothing it wrote is visible. Transaction bodies must await only operations of that transaction.
 */

export type Key = number | string | Key[];

export interface IndexSchema {
  name: string;
  keyPath: string | string[];
  unique?: boolean;
}
export interface StoreSchema {
  name: string;
  keyPath: string;
  indexes?: IndexSchema[];
}
export interface DbSchema {
  version: number;
  stores: StoreSchema[];
}

export interface Range {
  lower?: Key;
  upper?: Key;
  lowerOpen?: boolean;
  upperOpen?: boolean;
}
export interface Query {
  index?: string;
  /** exact key match, or a range */
  key?: Key;
  range?: Range;
  limit?: number;
  reverse?: boolean;
}

export interface Tx {
  get<T>(store: string, key: Key): Promise<T | undefined>;
  getAll<T>(store: string, q?: Query): Promise<T[]>;
  count(store: string, q?: Query): Promise<number>;
  put<T>(store: string, value: T): Promise<void>;
  delete(store: string, key: Key): Promise<void>;
  clear(store: string): Promise<void>;
}

export interface StorageAdapter extends Tx {
  readonly kind: 'indexeddb' | 'memory';
  readonly name: string;
  /** Run `fn` atomically over the named stores. */
  transaction<R>(stores: string[], mode: 'readonly' | 'readwrite', fn: (tx: Tx) => Promise<R>): Promise<R>;
  close(): Promise<void>;
}

export type StorageFactory = (name: string, schema: DbSchema) => Promise<StorageAdapter>;

/** IndexedDB key order: numbers < strings < arrays; arrays element-wise. */
export function compareKeys(a: Key, b: Key): number {
  const ta = keyType(a);
  const tb = keyType(b);
  if (ta !== tb) return ta - tb;
  if (ta === 0) return (a as number) - (b as number);
  if (ta === 1) return a < b ? -1 : a > b ? 1 : 0;
  const xa = a as Key[];
  const xb = b as Key[];
  for (let i = 0; i < Math.min(xa.length, xb.length); i++) {
    const c = compareKeys(xa[i]!, xb[i]!);
    if (c !== 0) return c;
  }
  return xa.length - xb.length;
}
function keyType(k: Key): number {
  return typeof k === 'number' ? 0 : typeof k === 'string' ? 1 : 2;
}

export function keyOf(value: unknown, path: string | string[]): Key | undefined {
  if (Array.isArray(path)) {
    const parts = path.map((p) => keyOf(value, p));
    return parts.some((p) => p === undefined) ? undefined : (parts as Key[]);
  }
  let v: unknown = value;
  for (const seg of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[seg];
  }
  return isKey(v) ? v : undefined;
}

export function isKey(v: unknown): v is Key {
  if (typeof v === 'number') return !Number.isNaN(v);
  if (typeof v === 'string') return true;
  return Array.isArray(v) && v.every(isKey);
}

export function inRange(k: Key, q: Query): boolean {
  if (q.key !== undefined) return compareKeys(k, q.key) === 0;
  const r = q.range;
  if (!r) return true;
  if (r.lower !== undefined) {
    const c = compareKeys(k, r.lower);
    if (c < 0 || (c === 0 && r.lowerOpen)) return false;
  }
  if (r.upper !== undefined) {
    const c = compareKeys(k, r.upper);
    if (c > 0 || (c === 0 && r.upperOpen)) return false;
  }
  return true;
}
