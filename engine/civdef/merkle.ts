/**
 * RFC 9162 §2.1 Merkle tree: MTH, inclusion PATH and consistency PROOF (§2.1.3.1, §2.1.4.1) and their
 * verification algorithms (§2.1.3.2, §2.1.4.2). SHA-256, leaf prefix 0x00, node prefix 0x01.
 */
import { bytesEqual, concatBytes } from '../core/encoding.js';
import { sha256 } from '../core/hash.js';

const L = new Uint8Array([0]);
const N = new Uint8Array([1]);
export const leafHash = (d: Uint8Array): Uint8Array => sha256(concatBytes(L, d));
export const nodeHash = (l: Uint8Array, r: Uint8Array): Uint8Array => sha256(concatBytes(N, l, r));
/** largest power of two strictly smaller than n (n > 1) */
const split = (n: number): number => {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
};

/** MTH over leaf hashes (the leaves already hashed with leafHash). */
export function rootOf(leaves: readonly Uint8Array[], lo = 0, hi = leaves.length): Uint8Array {
  const n = hi - lo;
  if (n === 0) return sha256(new Uint8Array(0));
  if (n === 1) return leaves[lo]!;
  const k = split(n);
  return nodeHash(rootOf(leaves, lo, lo + k), rootOf(leaves, lo + k, hi));
}

/** PATH(m, D[lo:hi]) */
export function inclusionPath(
  leaves: readonly Uint8Array[],
  m: number,
  lo = 0,
  hi = leaves.length,
): Uint8Array[] {
  const n = hi - lo;
  if (n <= 1) return [];
  const k = split(n);
  if (m < k) return [...inclusionPath(leaves, m, lo, lo + k), rootOf(leaves, lo + k, hi)];
  return [...inclusionPath(leaves, m - k, lo + k, hi), rootOf(leaves, lo, lo + k)];
}

function subproof(
  leaves: readonly Uint8Array[],
  m: number,
  lo: number,
  hi: number,
  b: boolean,
): Uint8Array[] {
  const n = hi - lo;
  if (m === n) return b ? [] : [rootOf(leaves, lo, hi)];
  const k = split(n);
  if (m <= k) return [...subproof(leaves, m, lo, lo + k, b), rootOf(leaves, lo + k, hi)];
  return [...subproof(leaves, m - k, lo + k, hi, false), rootOf(leaves, lo, lo + k)];
}
/** PROOF(m, D[n]) for 0 < m ≤ n */
export const consistencyProof = (leaves: readonly Uint8Array[], m: number, n = leaves.length): Uint8Array[] =>
  subproof(leaves, m, 0, n, true);

/** §2.1.3.2 */
export function verifyInclusion(
  leaf: Uint8Array,
  index: number,
  size: number,
  path: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  if (index >= size || index < 0) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0)
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
    } else r = nodeHash(r, p);
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && bytesEqual(r, root);
}

/** §2.1.4.2 */
export function verifyConsistency(
  size1: number,
  size2: number,
  root1: Uint8Array,
  root2: Uint8Array,
  proof: readonly Uint8Array[],
): boolean {
  if (size1 <= 0 || size1 > size2) return false;
  if (size1 === size2) return proof.length === 0 && bytesEqual(root1, root2);
  let path = [...proof];
  if ((size1 & (size1 - 1)) === 0) path = [root1, ...path];
  if (path.length === 0) return false;
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0)
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
    } else sr = nodeHash(sr, c);
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && bytesEqual(fr, root1) && bytesEqual(sr, root2);
}
