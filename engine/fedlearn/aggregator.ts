/**
 * M28 aggregation (digest §7): deterministic FedAvg (weighted by num_samples), trimmed mean and
 * coordinate-wise median, in Float64, submissions sorted by NodeID; A = A₀ + mean ΔA, B = mean ΔB, then F32.
 * FFA-LoRA (`freeze_a`): A stays A₀ and only ΔB is submitted and averaged, so the merged update
 * (α/r)·A₀ᵀ·mean(B)ᵀ equals the mean of the participants' updates exactly (linear in B).
 */
import { HnError } from '../core/errors.js';
import { sha256Hex } from '../core/hash.js';
import { ADAPTER_FORMAT, encodeSafetensors, type ModelCard, type Tensors } from './delta.js';

export type AggregatorKind = 'fedavg' | 'trimmed_mean' | 'median';

export interface AggSubmission {
  participant: string;
  num_samples: number;
  tensors: Tensors;
}

/**
 * One coordinate: `vals[i]` from submission i (already in NodeID order), weights `w[i]`.
 * fedavg Σwᵢxᵢ/Σwᵢ; trimmed_mean drops ⌊β·n⌋ at each end then averages unweighted; median (mean of the
 * middle two when n is even). `scratch` avoids allocation per coordinate.
 */
export function combine(
  vals: ArrayLike<number>,
  w: ArrayLike<number>,
  kind: AggregatorKind,
  beta = 0.1,
  scratch: Float64Array = new Float64Array(vals.length),
): number {
  const n = vals.length;
  if (kind === 'fedavg') {
    let s = 0;
    let ws = 0;
    for (let i = 0; i < n; i++) {
      s += w[i]! * vals[i]!;
      ws += w[i]!;
    }
    return s / ws;
  }
  const sorted = scratch.subarray(0, n);
  for (let i = 0; i < n; i++) sorted[i] = vals[i]!;
  sorted.sort();
  if (kind === 'median') return n % 2 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
  const k = Math.floor(beta * n);
  let s = 0;
  for (let i = k; i < n - k; i++) s += sorted[i]!;
  return s / (n - 2 * k);
}

export interface AggregateOptions {
  method: AggregatorKind;
  trim_fraction?: number;
  min_participants: number;
  /** A₀ (from loraInit) for every lora_A name; B names start at 0 */
  init: Tensors;
  freeze_a?: boolean;
}

const byId = (a: AggSubmission, b: AggSubmission) =>
  a.participant < b.participant ? -1 : a.participant > b.participant ? 1 : 0;

/** Aggregate validated deltas into the adapter tensors (A and B, F32). */
export function aggregate(subs: readonly AggSubmission[], o: AggregateOptions): Tensors {
  const S = [...subs].sort(byId);
  if (S.length < o.min_participants)
    throw new HnError(
      'fedlearn_min_participants_unmet',
      `${S.length} valid submissions < ${o.min_participants}`,
      {
        details: { valid: S.length, min: o.min_participants },
      },
    );
  const beta = o.trim_fraction ?? 0.1;
  if (!(beta >= 0 && beta <= 0.45)) throw new HnError('bad_request', 'trim_fraction must be in [0, 0.45]');
  const w = Float64Array.from(S, (s) => s.num_samples);
  const vals = new Float64Array(S.length);
  const scratch = new Float64Array(S.length);
  const out: Tensors = new Map();
  for (const name of [...o.init.keys()].sort()) {
    const init = o.init.get(name)!;
    const isA = name.endsWith('.lora_A');
    const data = new Float32Array(init.data.length);
    if (isA && o.freeze_a) data.set(init.data);
    else {
      const ds = S.map((s) => {
        const t = s.tensors.get(name);
        if (!t || t.data.length !== data.length)
          throw new HnError('fedlearn_aggregation_failed', `submission lacks ${name}`);
        return t.data;
      });
      for (let j = 0; j < data.length; j++) {
        for (let i = 0; i < S.length; i++) vals[i] = ds[i]![j]!;
        const m = combine(vals, w, o.method, beta, scratch);
        data[j] = isA ? init.data[j]! + m : m;
        if (!Number.isFinite(data[j]!))
          throw new HnError('fedlearn_aggregation_failed', 'non-finite value in the aggregate', {
            details: { tensor: name },
          });
      }
    }
    out.set(name, { shape: [...init.shape], data });
  }
  return out;
}

export interface AdapterMeta {
  card: ModelCard;
  base_model_sha: string;
  rank: number;
  alpha: number;
  target_modules: readonly string[];
  round_id: string;
  manifest_sha: string;
  method: string;
}

/** Serialise an adapter (§7 step 6: no timestamp, no aggregator id, so any honest aggregator gets the same SHA). */
export function encodeAdapter(t: Tensors, m: AdapterMeta): { bytes: Uint8Array; sha: string } {
  const bytes = encodeSafetensors({
    metadata: {
      format: ADAPTER_FORMAT,
      base_model_id: m.card.base_model_id,
      base_model_sha: m.base_model_sha,
      rank: String(m.rank),
      alpha: String(m.alpha),
      target_modules: m.target_modules.join(','),
      round_id: m.round_id,
      manifest_sha: m.manifest_sha,
      method: m.method,
    },
    tensors: t,
  });
  return { bytes, sha: `sha256:${sha256Hex(bytes)}` };
}

/** The weight update of one target module: ΔW = (α/r)·Aᵀ·Bᵀ, shape [d_in, d_out] (x·W convention), Float64. */
export function loraWeightDelta(
  A: Float32Array | Float64Array,
  B: Float32Array | Float64Array,
  rank: number,
  dIn: number,
  dOut: number,
  alpha: number,
): Float64Array {
  const out = new Float64Array(dIn * dOut);
  const s = alpha / rank;
  for (let i = 0; i < dIn; i++)
    for (let o = 0; o < dOut; o++) {
      let acc = 0;
      for (let k = 0; k < rank; k++) acc += A[k * dIn + i]! * B[o * rank + k]!;
      out[i * dOut + o] = s * acc;
    }
  return out;
}
