/** RFC 9162 §2.1 Merkle tree: hand-checked small trees, then all proofs for every size up to 20. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { sha256 } from '../../engine/core/hash.js';
import { concatBytes, toHex } from '../../engine/core/encoding.js';
import {
  consistencyProof,
  inclusionPath,
  leafHash,
  rootOf,
  verifyConsistency,
  verifyInclusion,
} from '../../engine/civdef/merkle.js';

const H = (...p: Uint8Array[]) => sha256(concatBytes(...p));
const b = (n: number) => new Uint8Array([n]);
const leaves = (n: number) =>
  Array.from({ length: n }, (_, i) => leafHash(new TextEncoder().encode(`leaf${i}`)));

describe('RFC 9162 Merkle tree (hand-checked)', () => {
  it('empty, one, two and three leaves follow the MTH definition literally', () => {
    expect(toHex(rootOf([]))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    const d = [b(0xaa), b(0xbb), b(0xcc)];
    const l = d.map((x) => H(b(0), x));
    expect(toHex(leafHash(d[0]!))).toBe(toHex(l[0]!));
    expect(toHex(rootOf(l.slice(0, 1)))).toBe(toHex(l[0]!));
    const n01 = H(b(1), l[0]!, l[1]!);
    expect(toHex(rootOf(l.slice(0, 2)))).toBe(toHex(n01));
    expect(toHex(rootOf(l))).toBe(toHex(H(b(1), n01, l[2]!)));
    // PATH(2, D[3]) = [MTH(D[0:2])]; PATH(0, D[3]) = [l1, l2]
    expect(inclusionPath(l, 2).map(toHex)).toEqual([toHex(n01)]);
    expect(inclusionPath(l, 0).map(toHex)).toEqual([toHex(l[1]!), toHex(l[2]!)]);
    // PROOF(2, D[3]) = [l2]; PROOF(1, D[3]) = [l1, l2]
    expect(consistencyProof(l, 2).map(toHex)).toEqual([toHex(l[2]!)]);
    expect(consistencyProof(l, 1).map(toHex)).toEqual([toHex(l[1]!), toHex(l[2]!)]);
    expect(verifyConsistency(2, 3, n01, rootOf(l), consistencyProof(l, 2))).toBe(true);
    expect(verifyInclusion(l[2]!, 2, 3, [n01], rootOf(l))).toBe(true);
  });

  it('seven leaves: the RFC example shapes (PATH(3), PROOF(3), PROOF(4), PROOF(6))', () => {
    const l = leaves(7);
    const h = (i: number, j: number) => rootOf(l, i, j);
    // RFC 9162 §2.1.5 example: inclusion proof for d is [c, g, l] (c=leaf2, g=MTH(0:2), l=MTH(4:7))
    expect(inclusionPath(l, 3).map(toHex)).toEqual([l[2]!, h(0, 2), h(4, 7)].map(toHex));
    // consistency between hash0 (3 leaves) and hash (7): [c, d, g, l]
    expect(consistencyProof(l, 3).map(toHex)).toEqual([l[2]!, l[3]!, h(0, 2), h(4, 7)].map(toHex));
    // between hash1 (4 leaves) and hash (7): [l]
    expect(consistencyProof(l, 4).map(toHex)).toEqual([h(4, 7)].map(toHex));
    // between hash2 (6 leaves) and hash (7): [i, j, k]  (i = MTH(4:6), j = leaf6, k = MTH(0:4))
    expect(consistencyProof(l, 6).map(toHex)).toEqual([h(4, 6), l[6]!, h(0, 4)].map(toHex));
  });

  it('every inclusion and consistency proof up to 20 leaves verifies; any changed proof hash fails', () => {
    for (let n = 1; n <= 20; n++) {
      const l = leaves(n);
      const root = rootOf(l);
      for (let m = 0; m < n; m++) {
        const p = inclusionPath(l, m);
        expect(verifyInclusion(l[m]!, m, n, p, root)).toBe(true);
        expect(verifyInclusion(l[(m + 1) % n]!, m, n, p, root)).toBe(n === 1 ? true : false);
        for (let i = 0; i < p.length; i++) {
          const q = p.map((x) => x.slice());
          q[i]![0]! ^= 1;
          expect(verifyInclusion(l[m]!, m, n, q, root)).toBe(false);
        }
      }
      for (let m = 1; m <= n; m++) {
        const p = consistencyProof(l, m);
        expect(verifyConsistency(m, n, rootOf(l, 0, m), root, p)).toBe(true);
        if (m < n) {
          const other = leaves(m).map((x) => H(x));
          expect(verifyConsistency(m, n, rootOf(other), root, p)).toBe(false);
        }
      }
    }
  });

  it('property: a proof for one index never verifies another index', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 64 }), fc.nat(), fc.nat(), (n, a, c) => {
        const l = leaves(n);
        const i = a % n;
        const j = c % n;
        fc.pre(i !== j);
        return !verifyInclusion(l[i]!, j, n, inclusionPath(l, i), rootOf(l));
      }),
      { numRuns: 50 },
    );
  });
});
