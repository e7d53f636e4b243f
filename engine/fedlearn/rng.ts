/**
 * The deterministic PRNG of the digest §7 (LoRA init): splitmix32(seed) seeds xoshiro128**; a float
 * is `(u32>>>8)·2⁻²⁴`. Bit-exact everywhere (integer arithmetic only), so every node derives the same A₀.
 * Never used for DP noise in production (§7 step 6: noise comes from the CSPRNG).
 */
import { SeededRng } from '../llm/rng.js';

export interface Prng {
  /** next u32 */
  u32(): number;
  /** next float in [0, 1) with 24 bits: (u32>>>8)·2⁻²⁴ */
  float(): number;
}

/** xoshiro128** seeded by four splitmix32 outputs of `seed` (u32): the engine's SeededRng. */
export function xoshiro128ss(seed: number): Prng {
  const r = new SeededRng(seed);
  const u32 = () => r.nextU32();
  return { u32, float: () => (u32() >>> 8) * 2 ** -24 };
}
