/**
 * M27 topic normalisation and the embedder interface with the deterministic `HashedEmbedder`
 * (digest §5): NFKD, combining marks stripped, lowercase; features = words + character 3-grams of
 * `#word#`; FNV-1a 32-bit over UTF-8 → index mod 512, sign from bit 31; weight log(1+count); L2.
 */

/** Embedder seam: the hashed one is the default; an ONNX one can implement the same interface. */
export interface Embedder {
  readonly id: string;
  readonly dim: number;
  /** relevance threshold for max cosine(summary, topic) */
  readonly threshold: number;
  embed(texts: readonly string[]): Promise<Float64Array[]>;
}

export const TOPIC_MAX = 64;

/** Topic normalisation (digest §5). Returns '' when nothing is left (the caller rejects it). */
export function normalizeTopic(raw: string): string {
  return raw
    .normalize('NFKC')
    .toLowerCase()
    .trim()
    .replace(/[_\s]+/gu, '-')
    .replace(/[^\p{L}\p{N}-]/gu, '')
    .replace(/-{2,}/g, '-');
}

const enc = new TextEncoder();

/** FNV-1a 32-bit over the UTF-8 bytes of `s`, as an unsigned integer. */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (const b of enc.encode(s)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Words of a text after NFKD, combining-mark stripping and lowercasing. */
export function hashedWords(text: string): string[] {
  const t = text.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase();
  return t.match(/[\p{L}\p{N}]+/gu) ?? [];
}

/** The feature multiset of one text: each word, and every 3-gram of `#word#` (code points). */
export function hashedFeatures(text: string): Map<string, number> {
  const counts = new Map<string, number>();
  const add = (f: string) => counts.set(f, (counts.get(f) ?? 0) + 1);
  for (const w of hashedWords(text)) {
    add(w);
    const cps = [...`#${w}#`];
    for (let i = 0; i + 3 <= cps.length; i++) add(cps.slice(i, i + 3).join(''));
  }
  return counts;
}

export class HashedEmbedder implements Embedder {
  readonly id = 'hashed-fnv1a-512';
  readonly dim = 512;
  readonly threshold = 0.35;

  embedOne(text: string): Float64Array {
    const v = new Float64Array(this.dim);
    for (const [f, n] of hashedFeatures(text)) {
      const h = fnv1a32(f);
      const sign = h & 0x80000000 ? -1 : 1;
      v[h % this.dim]! += sign * Math.log(1 + n);
    }
    let norm = 0;
    for (const x of v) norm += x * x;
    norm = Math.sqrt(norm);
    if (norm > 0) for (let i = 0; i < v.length; i++) v[i]! /= norm;
    return v;
  }

  async embed(texts: readonly string[]): Promise<Float64Array[]> {
    return texts.map((t) => this.embedOne(t));
  }
}

export function cosine(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}
