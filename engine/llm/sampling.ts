/** Token selection: greedy (ties → lowest id), temperature, nucleus (top-p), seeded. */
import { HnError } from '../core/errors.js';
import type { SeededRng } from './rng.js';

export interface SamplingOptions {
  /** 0 = greedy. */
  temperature: number;
  /** (0, 1]; 1 = no truncation. */
  top_p: number;
}

export function argmax(logits: Float32Array | Float64Array): number {
  let best = 0;
  let bv = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!;
    if (v > bv) {
      bv = v;
      best = i;
    }
  }
  return best;
}

/** log-softmax of one entry, computed stably. */
export function logProb(logits: Float32Array, id: number): number {
  let mx = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > mx) mx = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - mx);
  return logits[id]! - mx - Math.log(sum);
}

export function checkSampling(o: SamplingOptions): void {
  if (!(o.temperature >= 0) || !Number.isFinite(o.temperature))
    throw new HnError('bad_request', 'temperature must be ≥ 0', { field: 'temperature' });
  if (!(o.top_p > 0 && o.top_p <= 1))
    throw new HnError('bad_request', 'top_p must be in (0, 1]', { field: 'top_p' });
}

export function sampleToken(logits: Float32Array, o: SamplingOptions, rng: SeededRng): number {
  if (o.temperature === 0) return argmax(logits);
  const n = logits.length;
  let mx = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i]! > mx) mx = logits[i]!;
  const p = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    p[i] = Math.exp((logits[i]! - mx) / o.temperature);
    sum += p[i]!;
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => p[b]! - p[a]! || a - b);
  let keep = n;
  if (o.top_p < 1) {
    let c = 0;
    for (let k = 0; k < n; k++) {
      c += p[order[k]!]! / sum;
      if (c >= o.top_p) {
        keep = k + 1;
        break;
      }
    }
  }
  let total = 0;
  for (let k = 0; k < keep; k++) total += p[order[k]!]!;
  let u = rng.next() * total;
  for (let k = 0; k < keep; k++) {
    u -= p[order[k]!]!;
    if (u < 0) return order[k]!;
  }
  return order[keep - 1]!;
}
