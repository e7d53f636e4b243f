/**
 * M28 base model (digest §9 "Base model"): the tiny Llama-style decoder's dimensions and float32
 * weights, its model card (the LoRA-targetable modules with `[d_in, d_out]`), the canonical weight file
 * (safetensors; `base_model_sha` is SHA-256 over its bytes) and adapter merging
 * W' = W + (α/r)·Aᵀ·Bᵀ — what the ONNX path runs once an adapter is applied.
 * Weights follow the generator's layout (row-major, y = x·W), so tools/model's weights fit as they are.
 */
import { HnError } from '../core/errors.js';
import { sha256Hex } from '../core/hash.js';
import { loraWeightDelta } from './aggregator.js';
import { decodeSafetensors, encodeSafetensors, type ModelCard, type Tensors } from './delta.js';

export const BASE_FORMAT = 'hn.fedlearn.base/1';

export interface DecoderDims {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
}

export interface DecoderLayer {
  input_norm: Float32Array;
  wq: Float32Array;
  wk: Float32Array;
  wv: Float32Array;
  wo: Float32Array;
  post_norm: Float32Array;
  w_gate: Float32Array;
  w_up: Float32Array;
  w_down: Float32Array;
}

export interface DecoderWeights {
  embed: Float32Array;
  layers: DecoderLayer[];
  final_norm: Float32Array;
  lm_head: Float32Array;
  inv_freq: Float32Array;
}

/** LoRA module name → the layer weight it adapts. */
export const MODULE_WEIGHT = {
  q_proj: 'wq',
  k_proj: 'wk',
  v_proj: 'wv',
  o_proj: 'wo',
  gate_proj: 'w_gate',
  up_proj: 'w_up',
  down_proj: 'w_down',
} as const satisfies Record<string, keyof DecoderLayer>;
export type ModuleName = keyof typeof MODULE_WEIGHT;

export const DIM_KEYS = [
  'vocab_size',
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'num_key_value_heads',
  'head_dim',
  'max_position_embeddings',
  'rms_norm_eps',
  'rope_theta',
] as const satisfies readonly (keyof DecoderDims)[];

export function moduleDims(d: DecoderDims): Record<ModuleName, [number, number]> {
  const E = d.hidden_size;
  const Q = d.num_attention_heads * d.head_dim;
  const KV = d.num_key_value_heads * d.head_dim;
  const I = d.intermediate_size;
  return {
    q_proj: [E, Q],
    k_proj: [E, KV],
    v_proj: [E, KV],
    o_proj: [Q, E],
    gate_proj: [E, I],
    up_proj: [E, I],
    down_proj: [I, E],
  };
}

/** The model card the manifest and the resource estimate read. */
export function decoderCard(
  base_model_id: string,
  d: DecoderDims,
): ModelCard & { params: number; d_model: number; heads: number; ctx: number } {
  const modules = moduleDims(d);
  let params = d.vocab_size * d.hidden_size * 2 + d.hidden_size;
  for (const [a, b] of Object.values(modules)) params += d.num_hidden_layers * a * b;
  params += d.num_hidden_layers * 2 * d.hidden_size;
  return {
    base_model_id,
    layers: d.num_hidden_layers,
    modules,
    params,
    d_model: d.hidden_size,
    heads: d.num_attention_heads,
    ctx: d.max_position_embeddings,
  };
}

function weightTensors(d: DecoderDims, w: DecoderWeights): Tensors {
  const E = d.hidden_size;
  const t: Tensors = new Map();
  const put = (n: string, shape: number[], data: Float32Array) => {
    if (data.length !== shape.reduce((a, b) => a * b, 1))
      throw new HnError('bad_request', `weight ${n} has ${data.length} values, expected shape ${shape}`);
    t.set(n, { shape, data });
  };
  put('embed', [d.vocab_size, E], w.embed);
  put('final_norm', [E], w.final_norm);
  put('lm_head', [E, d.vocab_size], w.lm_head);
  put('inv_freq', [d.head_dim / 2], w.inv_freq);
  const md = moduleDims(d);
  w.layers.forEach((l, i) => {
    put(`layers.${i}.input_norm`, [E], l.input_norm);
    put(`layers.${i}.post_norm`, [E], l.post_norm);
    for (const [m, key] of Object.entries(MODULE_WEIGHT))
      put(`layers.${i}.${key}`, [...md[m as ModuleName]], l[key]);
  });
  return t;
}

/** The canonical weight file: safetensors, dims in the metadata. */
export function encodeBaseWeights(
  base_model_id: string,
  d: DecoderDims,
  w: DecoderWeights,
): { bytes: Uint8Array; sha: string } {
  const metadata: Record<string, string> = { format: BASE_FORMAT, base_model_id };
  for (const k of DIM_KEYS) metadata[k] = String(d[k]);
  const bytes = encodeSafetensors({ metadata, tensors: weightTensors(d, w) });
  return { bytes, sha: sha256Hex(bytes) };
}

/** Reads a canonical weight file back (`bad_request` when it is not one). */
export function decodeBaseWeights(bytes: Uint8Array): {
  base_model_id: string;
  dims: DecoderDims;
  weights: DecoderWeights;
  sha: string;
} {
  const st = decodeSafetensors(bytes);
  if (st.metadata.format !== BASE_FORMAT) throw new HnError('bad_request', 'not a base weight file');
  const dims = {} as DecoderDims;
  for (const k of DIM_KEYS) {
    const v = Number(st.metadata[k]);
    if (!Number.isFinite(v) || v <= 0) throw new HnError('bad_request', `base weight file: ${k}`);
    dims[k] = v;
  }
  const get = (n: string) => {
    const t = st.tensors.get(n);
    if (!t) throw new HnError('bad_request', `base weight file lacks ${n}`);
    return t.data;
  };
  const layers: DecoderLayer[] = [];
  for (let i = 0; i < dims.num_hidden_layers; i++) {
    const l = {
      input_norm: get(`layers.${i}.input_norm`),
      post_norm: get(`layers.${i}.post_norm`),
    } as DecoderLayer;
    for (const key of Object.values(MODULE_WEIGHT)) l[key] = get(`layers.${i}.${key}`);
    layers.push(l);
  }
  const weights: DecoderWeights = {
    embed: get('embed'),
    layers,
    final_norm: get('final_norm'),
    lm_head: get('lm_head'),
    inv_freq: get('inv_freq'),
  };
  // re-encoding checks every shape against the dims
  const again = encodeBaseWeights(String(st.metadata.base_model_id ?? ''), dims, weights);
  return { base_model_id: String(st.metadata.base_model_id), dims, weights, sha: again.sha };
}

/**
 * Weights with an adapter merged in: W' = W + (α/r)·Aᵀ·Bᵀ (Float64 sum, one F32 rounding) for every
 * `layers.{i}.{m}` pair of the adapter. `delta_invalid` when a tensor does not fit the model.
 */
export function mergeAdapter(
  d: DecoderDims,
  w: DecoderWeights,
  adapter: Tensors,
  rank: number,
  alpha: number,
): DecoderWeights {
  const md = moduleDims(d);
  const layers = w.layers.map((l) => ({ ...l }));
  for (const [name, A] of adapter) {
    if (!name.endsWith('.lora_A')) continue;
    const m = /^layers\.(\d+)\.([a-z_]+)\.lora_A$/.exec(name);
    const mod = m?.[2] as ModuleName | undefined;
    const li = Number(m?.[1]);
    const B = adapter.get(name.replace(/lora_A$/, 'lora_B'));
    if (!m || !mod || !(mod in MODULE_WEIGHT) || !layers[li] || !B)
      throw new HnError('delta_invalid', `adapter tensor ${name} does not fit the base model`);
    const [dIn, dOut] = md[mod];
    if (A.data.length !== rank * dIn || B.data.length !== dOut * rank)
      throw new HnError('delta_invalid', `adapter tensor ${name} has the wrong shape`);
    const dW = loraWeightDelta(A.data, B.data, rank, dIn, dOut, alpha);
    const key = MODULE_WEIGHT[mod];
    const src = layers[li]![key];
    const out = new Float32Array(src.length);
    for (let j = 0; j < out.length; j++) out[j] = src[j]! + dW[j]!;
    layers[li]![key] = out;
  }
  return { ...w, layers };
}
