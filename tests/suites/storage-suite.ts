/**
 * Storage adapter acceptance suite (automerge-repo style): one set of cases for every
 * `StorageAdapter` implementation; call `storageAdapterSuite(name, factory)`.
 */
import { describe, expect, it } from 'vitest';
import type { DbSchema, StorageFactory } from '../../engine/store/index.js';

const schema: DbSchema = {
  version: 1,
  stores: [
    {
      name: 'items',
      keyPath: 'id',
      indexes: [
        { name: 'by_kind', keyPath: ['kind', 'n'] },
        { name: 'by_slot', keyPath: 'slot', unique: true },
      ],
    },
    { name: 'meta', keyPath: 'k' },
  ],
};

let counter = 0;

/** The storage adapter acceptance suite for one implementation; call once per adapter. */
export function storageAdapterSuite(_kind: string, open: StorageFactory): void {
  describe(`storage adapter acceptance: ${_kind}`, () => {
    const fresh = () => `store-test-${_kind}-${++counter}-${Math.random()}`;

    it('put/get/delete/count', async () => {
      const s = await open(fresh(), schema);
      await s.put('items', { id: 'a', kind: 'x', n: 1, slot: 1 });
      expect(await s.get('items', 'a')).toEqual({ id: 'a', kind: 'x', n: 1, slot: 1 });
      expect(await s.get('items', 'zz')).toBeUndefined();
      expect(await s.count('items')).toBe(1);
      await s.delete('items', 'a');
      expect(await s.count('items')).toBe(0);
      await s.close();
    });

    it('returned values are copies', async () => {
      const s = await open(fresh(), schema);
      const v = { id: 'a', kind: 'x', n: 1, slot: 1, list: [1] };
      await s.put('items', v);
      v.list.push(2);
      const got = await s.get<typeof v>('items', 'a');
      expect(got!.list).toEqual([1]);
      got!.list.push(3);
      expect((await s.get<typeof v>('items', 'a'))!.list).toEqual([1]);
    });

    it('index queries with ranges, limit and reverse follow IndexedDB key order', async () => {
      const s = await open(fresh(), schema);
      for (let i = 0; i < 20; i++)
        await s.put('items', { id: `i${i}`, kind: i % 2 ? 'odd' : 'even', n: i, slot: i });
      const odd = await s.getAll<{ n: number }>('items', {
        index: 'by_kind',
        range: { lower: ['odd', 0], upper: ['odd', 100] },
      });
      expect(odd.map((r) => r.n)).toEqual([1, 3, 5, 7, 9, 11, 13, 15, 17, 19]);
      const top = await s.getAll<{ n: number }>('items', {
        index: 'by_kind',
        range: { lower: ['even', 0], upper: ['even', 100] },
        reverse: true,
        limit: 3,
      });
      expect(top.map((r) => r.n)).toEqual([18, 16, 14]);
      const open5 = await s.getAll<{ n: number }>('items', {
        index: 'by_kind',
        range: { lower: ['even', 4], upper: ['even', 8], lowerOpen: true },
      });
      expect(open5.map((r) => r.n)).toEqual([6, 8]);
      expect(
        await s.count('items', { index: 'by_kind', range: { lower: ['odd', 0], upper: ['odd', 10] } }),
      ).toBe(5);
      expect((await s.getAll<{ n: number }>('items', { index: 'by_slot', key: 7 }))[0]!.n).toBe(7);
    });

    it('a transaction that throws leaves nothing behind', async () => {
      const s = await open(fresh(), schema);
      await s.put('meta', { k: 'clock', v: 1 });
      await expect(
        s.transaction(['items', 'meta'], 'readwrite', async (tx) => {
          await tx.put('meta', { k: 'clock', v: 2 });
          await tx.put('items', { id: 'x', kind: 'k', n: 1, slot: 1 });
          throw new Error('boom');
        }),
      ).rejects.toThrow();
      expect(await s.get('meta', 'clock')).toEqual({ k: 'clock', v: 1 });
      expect(await s.get('items', 'x')).toBeUndefined();
    });

    it('a unique-index violation aborts the whole transaction', async () => {
      const s = await open(fresh(), schema);
      await s.put('items', { id: 'a', kind: 'k', n: 1, slot: 5 });
      await expect(
        s.transaction(['items', 'meta'], 'readwrite', async (tx) => {
          await tx.put('meta', { k: 'm', v: 1 });
          await tx.put('items', { id: 'b', kind: 'k', n: 2, slot: 5 });
        }),
      ).rejects.toMatchObject({ code: 'storage_failed' });
      expect(await s.get('meta', 'm')).toBeUndefined();
      expect(await s.get('items', 'b')).toBeUndefined();
      // overwriting the same primary key keeps its own unique value
      await s.put('items', { id: 'a', kind: 'k', n: 9, slot: 5 });
      expect(await s.count('items')).toBe(1);
    });

    it('reads inside a transaction see its own writes', async () => {
      const s = await open(fresh(), schema);
      const n = await s.transaction(['items'], 'readwrite', async (tx) => {
        await tx.put('items', { id: 'a', kind: 'k', n: 1, slot: 1 });
        await tx.put('items', { id: 'b', kind: 'k', n: 2, slot: 2 });
        await tx.delete('items', 'a');
        return tx.count('items');
      });
      expect(n).toBe(1);
    });

    it('data survives closing and reopening the database', async () => {
      const name = fresh();
      const s = await open(name, schema);
      await s.put('items', { id: 'keep', kind: 'k', n: 1, slot: 1 });
      await s.put('meta', { k: 'clock', v: 42 });
      await s.close();
      const s2 = await open(name, schema);
      expect(await s2.get('items', 'keep')).toEqual({ id: 'keep', kind: 'k', n: 1, slot: 1 });
      expect(await s2.get('meta', 'clock')).toEqual({ k: 'clock', v: 42 });
      await s2.close();
    });

    it('clear empties one store only', async () => {
      const s = await open(fresh(), schema);
      await s.put('items', { id: 'a', kind: 'k', n: 1, slot: 1 });
      await s.put('meta', { k: 'x', v: 1 });
      await s.clear('items');
      expect(await s.count('items')).toBe(0);
      expect(await s.count('meta')).toBe(1);
    });
  });
}
