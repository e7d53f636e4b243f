/**
 * M28 adapters on this node (digest §3 `adapter.apply`, §9 "Apply"): applying is never automatic, scope
 * `node` needs `confirm:true` from a UI gesture, an adapter of another base is `base_model_mismatch`.
 * An applied adapter reaches the inference model as weight updates ΔW = (α/r)·Aᵀ·Bᵀ per module, or as
 * merged base weights W + ΔW (`mergeAdapter`), which the ONNX path runs.
 */
import { fromB64url } from '../core/encoding.js';
import { HnError } from '../core/errors.js';
import { loraWeightDelta } from './aggregator.js';
import { mergeAdapter, type DecoderDims, type DecoderWeights } from './base.js';
import { decodeSafetensors } from './delta.js';

export interface AdapterDeps {
  db: { get(store: string, key: string): Promise<any> };
  now(): number;
  append(type: string, data: Record<string, unknown>): Promise<unknown>;
  base: { sha: string } | null;
  applied: Map<string, string>; // scope key → adapter sha
}

/** The descriptive fields adapter.fetch returns and the adapters store keeps. */
export const blobMeta = (a: {
  base_model_id: string;
  base_model_sha: string;
  rank: number;
  target_modules: readonly string[];
}) => ({
  base_model_id: a.base_model_id,
  base_model_sha: a.base_model_sha,
  rank: a.rank,
  target_modules: a.target_modules,
});

export async function applyAdapter(d: AdapterDeps, input: Record<string, any>) {
  const sha = String(input.sha ?? '');
  const scope = input.scope;
  if (scope !== 'session' && scope !== 'node')
    throw new HnError('bad_request', 'scope must be session or node', { field: 'scope' });
  if (scope === 'session' && typeof input.session_id !== 'string')
    throw new HnError('bad_request', 'session_id required', { field: 'session_id' });
  const a = await d.db.get('adapters', sha);
  if (!a) throw new HnError('adapter_not_found', 'no adapter with that SHA');
  const st = decodeSafetensors(a.bytes as Uint8Array);
  if (!d.base || st.metadata.base_model_sha !== d.base.sha)
    throw new HnError('base_model_mismatch', 'adapter was trained on another base');
  if (scope === 'node' && input.confirm !== true)
    throw new HnError('consent_required', 'applying to the node needs confirmation', {
      details: { reason: 'confirm_required' },
    });
  const key = scope === 'node' ? 'node' : `session:${input.session_id}`;
  const previous = d.applied.get(key);
  d.applied.set(key, sha);
  const applied_at = new Date(d.now()).toISOString();
  const sid = scope === 'session' ? { session_id: input.session_id } : {};
  await d.append('fedlearn.adapter.applied', { sha, scope, ...sid });
  return { sha, scope, ...sid, applied_at, ...(previous ? { previous_sha: previous } : {}) };
}

async function appliedAdapter(d: AdapterDeps, scope: string) {
  const sha = d.applied.get(scope) ?? d.applied.get('node');
  if (!sha) return null;
  const a = await d.db.get('adapters', sha);
  if (!a) throw new HnError('adapter_not_found', 'the applied adapter is gone');
  const st = decodeSafetensors(a.bytes as Uint8Array);
  return { st, rank: Number(st.metadata.rank), alpha: Number(st.metadata.alpha) };
}

/** ΔW = (α/r)·Aᵀ·Bᵀ per `layers.{i}.{m}` of an adapter file (what the inference worker adds to W). */
export function weightDeltasOf(bytes: Uint8Array): Map<string, Float64Array> {
  const st = decodeSafetensors(bytes);
  const rank = Number(st.metadata.rank);
  const alpha = Number(st.metadata.alpha);
  if (!(rank > 0) || !Number.isFinite(alpha))
    throw new HnError('delta_invalid', 'adapter lacks rank or alpha');
  const out = new Map<string, Float64Array>();
  for (const [name, A] of st.tensors) {
    if (!name.endsWith('.lora_A')) continue;
    const base = name.slice(0, -'.lora_A'.length);
    const B = st.tensors.get(`${base}.lora_B`);
    if (!B || A.shape[0] !== rank || B.shape[1] !== rank)
      throw new HnError('delta_invalid', `adapter tensor ${base} lacks lora_B or has the wrong rank`);
    out.set(base, loraWeightDelta(A.data, B.data, rank, A.shape[1]!, B.shape[0]!, alpha));
  }
  if (out.size === 0) throw new HnError('delta_invalid', 'adapter has no LoRA pair');
  return out;
}

/** ΔW per `layers.{i}.{m}` of the adapter applied to a scope (`session:<id>`, falling back to `node`). */
export async function adapterWeightDeltas(d: AdapterDeps, scope: string) {
  const sha = d.applied.get(scope) ?? d.applied.get('node');
  if (!sha) return null;
  const a = await d.db.get('adapters', sha);
  if (!a) throw new HnError('adapter_not_found', 'the applied adapter is gone');
  return weightDeltasOf(a.bytes as Uint8Array);
}

/** The base weights with the scope's applied adapter merged in (the base weights when none is applied). */
export async function appliedWeights(
  d: AdapterDeps,
  scope: string,
  dims: DecoderDims,
  weights: DecoderWeights,
): Promise<DecoderWeights> {
  const ad = await appliedAdapter(d, scope);
  return ad ? mergeAdapter(dims, weights, ad.st.tensors, ad.rank, ad.alpha) : weights;
}

/** adapter.fetch page by page (`offset`/`next_offset`), reassembled; the caller checks and keeps it (importAdapter). */
export async function fetchAdapterPages(
  fetchPage: (input: { sha: string; offset?: number }) => Promise<Record<string, any>>,
  sha: string,
) {
  const first = await fetchPage({ sha });
  const parts: Uint8Array[] = [fromB64url(String(first.bytes))];
  let next = first.next_offset as number | null | undefined;
  for (let guard = 0; typeof next === 'number'; guard++) {
    if (guard > 4096) throw new HnError('delta_invalid', 'adapter has too many pages');
    const p = await fetchPage({ sha, offset: next });
    parts.push(fromB64url(String(p.bytes)));
    next = p.next_offset as number | null | undefined;
  }
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) bytes.set(p, (o += p.length) - p.length);
  return {
    sha,
    bytes,
    base_model_id: String(first.base_model_id),
    base_model_sha: String(first.base_model_sha),
    rank: Number(first.rank),
    target_modules: first.target_modules as string[],
  };
}
