/**
 * M28 privacy (digest §7 steps 5–6, §11.3): clip a delta to ‖Δ‖₂ ≤ C, add Gaussian noise N(0, (σC)²),
 * and the (ε, δ) the user is shown. The noise source defaults to the CSPRNG (`crypto.getRandomValues`,
 * Box–Muller), as §7 requires; tests inject a seeded source to be reproducible.
 */
import { randomBytes } from '../core/encoding.js';
import { HnError } from '../core/errors.js';
import { l2norm, type Tensors } from './delta.js';
import { xoshiro128ss } from './rng.js';

/** a standard-normal sample source */
export type NormalSource = () => number;

function boxMuller(uniform: () => number): NormalSource {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = uniform();
    const v = uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

/** N(0,1) from the platform CSPRNG (53-bit uniforms). The production noise source. */
export function cryptoNormal(): NormalSource {
  return boxMuller(() => {
    const b = randomBytes(8);
    const dv = new DataView(b.buffer, b.byteOffset, 8);
    return (dv.getUint32(0) * 2 ** 21 + (dv.getUint32(4) >>> 11)) * 2 ** -53;
  });
}

/** N(0,1) from the seeded xoshiro128** (tests and reproducible experiments only — never for real rounds). */
export function seededNormal(seed: number): NormalSource {
  const r = xoshiro128ss(seed);
  return boxMuller(() => (r.u32() * 2 ** 21 + (r.u32() >>> 11)) * 2 ** -53);
}

const copy = (t: Tensors): Tensors =>
  new Map([...t].map(([k, v]) => [k, { shape: [...v.shape], data: new Float32Array(v.data) }]));

/** Scale Δ by min(1, C/‖Δ‖₂). Returns a new map; the input is untouched. */
export function clip(t: Tensors, C: number): Tensors {
  if (!(C > 0) || !Number.isFinite(C)) throw new HnError('bad_request', 'clip_norm must be > 0');
  const n = l2norm(t);
  const out = copy(t);
  if (n <= C) return out;
  const s = C / n;
  for (const v of out.values()) for (let i = 0; i < v.data.length; i++) v.data[i] = v.data[i]! * s;
  return out;
}

/** Add N(0, (σC)²) to every element. σ=0 returns a byte-identical copy. */
export function addNoise(
  t: Tensors,
  sigma: number,
  C: number,
  normal: NormalSource = cryptoNormal(),
): Tensors {
  if (!(sigma >= 0) || !Number.isFinite(sigma))
    throw new HnError('bad_request', 'dp_noise_scale must be ≥ 0');
  const out = copy(t);
  if (sigma === 0) return out;
  const sd = sigma * C;
  for (const name of [...out.keys()].sort()) {
    const d = out.get(name)!.data;
    for (let i = 0; i < d.length; i++) d[i] = d[i]! + sd * normal();
  }
  return out;
}

/** Clip then noise: what a participant submits (§7 steps 5–6). */
export function privatize(t: Tensors, C: number, sigma: number, normal?: NormalSource): Tensors {
  return addNoise(clip(t, C), sigma, C, normal);
}

/**
 * ε of one round for one user at δ (§11.3): the Gaussian mechanism with sensitivity 2C (replace one
 * clipped update) and noise σC gives ε = 2·√(2·ln(1.25/δ))/σ. σ=0 → Infinity (no DP). Not composed
 * across rounds (shown per round).
 */
export function epsilon(sigma: number, delta = 1e-5): { epsilon: number; delta: number } {
  if (!(delta > 0 && delta < 1)) throw new HnError('bad_request', 'delta must be in (0,1)');
  return { epsilon: sigma > 0 ? (2 * Math.sqrt(2 * Math.log(1.25 / delta))) / sigma : Infinity, delta };
}
