/** One acceptance suite, run against every storage adapter. */
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { openIndexedDbStorage, openMemoryStorage, compareKeys } from '../../engine/store/index.js';
import { storageAdapterSuite } from '../suites/storage-suite.js';

storageAdapterSuite('memory', openMemoryStorage);
storageAdapterSuite('indexeddb', openIndexedDbStorage);

describe('key order', () => {
  it('matches IndexedDB (property): compareKeys agrees with indexedDB.cmp', () => {
    const key = fc.letrec((tie) => ({
      k: fc.oneof({ depthSize: 'small' }, fc.integer(), fc.string(), fc.array(tie('k'), { maxLength: 3 })),
    })).k;
    fc.assert(
      fc.property(key, key, (a, b) => {
        expect(Math.sign(compareKeys(a as never, b as never))).toBe(indexedDB.cmp(a, b));
      }),
    );
  });
});
