/**
 * The deterministic PRNG of the digest §7 (LoRA init): splitmix32(seed) seeds xoshiro128**; a float
 * is `(u32>>>8)·2⁻²⁴`. Bit-exact everywhere (integer arithmetic only), so every node derives the same A₀.
 * Never used for DP noise in production (§7 step 6: noise comes from the CSPRNG).
 */

/** splitmix32 step: returns [next state, output]. */
function splitmix32(state: number): [number, number] {
  state = (state + 0x9e3779b9) >>> 0;
  let z = state;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return [state, (z ^ (z >>> 16)) >>> 0];
}

export interface Prng {
  /** next u32 */
  u32(): number;
  /** next float in [0, 1) with 24 bits: (u32>>>8)·2⁻²⁴ */
  float(): number;
}

/** xoshiro128** seeded by four splitmix32 outputs of `seed` (u32). */
export function xoshiro128ss(seed: number): Prng {
  let st = seed >>> 0;
  const s = new Uint32Array(4);
  for (let i = 0; i < 4; i++) {
    const [n, out] = splitmix32(st);
    st = n;
    s[i] = out;
  }
  const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;
  const u32 = (): number => {
    const result = Math.imul(rotl(Math.imul(s[1]!, 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  };
  return { u32, float: () => (u32() >>> 8) * 2 ** -24 };
}
