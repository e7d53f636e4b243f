import type { ModelCard, Tensors } from '../../engine/fedlearn/delta.js';
import { expectedShapes } from '../../engine/fedlearn/delta.js';
import { xoshiro128ss } from '../../engine/fedlearn/rng.js';

/** The tiny decoder's card as the digest §10.11 describes it (2 layers, d=48, MLP 192). Test-only. */
export const TINY_CARD: ModelCard = {
  base_model_id: 'hn-tiny-decoder',
  layers: 2,
  modules: {
    q_proj: [48, 48],
    k_proj: [48, 48],
    v_proj: [48, 48],
    o_proj: [48, 48],
    up_proj: [48, 192],
    down_proj: [192, 48],
  },
};
export const BASE_SHA = 'a'.repeat(64);

/** Random tensors of the expected shapes, from a seeded PRNG, values in ±scale. */
export function randomDelta(
  seed: number,
  targets: string[] = ['q_proj', 'v_proj'],
  rank = 4,
  scale = 0.01,
  freezeA = false,
): Tensors {
  const r = xoshiro128ss(seed);
  const out: Tensors = new Map();
  for (const [n, shape] of expectedShapes(TINY_CARD, targets, rank, freezeA)) {
    const data = new Float32Array(shape[0]! * shape[1]!);
    for (let i = 0; i < data.length; i++) data[i] = (r.float() * 2 - 1) * scale;
    out.set(n, { shape: [...shape], data });
  }
  return out;
}
