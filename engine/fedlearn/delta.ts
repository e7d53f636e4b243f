/**
 * M28 deltas and adapters as canonical safetensors (digest §6):
 *   u64 LE header length N ‖ header JSON (sorted keys, no whitespace, padded with 0x20 to a multiple of 8)
 *   ‖ tensor data (F32 little-endian, contiguous, in name order).
 * The decoder reads bytes from peers: every failure is `delta_invalid`, the size is checked before anything
 * else, and the header is fully checked (canonical re-encoding, offsets, shapes) before any tensor memory
 * is allocated, so a lying header cannot make it allocate more than the input's own size.
 */
import { jcs } from '../core/canonical.js';
import { HnError } from '../core/errors.js';
import * as C from '../core/constants.js';

export const HEADER_MAX_BYTES = 1024 * 1024;
export const DELTA_FORMAT = 'hn.fedlearn.delta/1';
export const ADAPTER_FORMAT = 'hn.fedlearn.adapter/1';

export interface Tensor {
  shape: number[];
  data: Float32Array;
}
/** name → tensor; encoding always sorts names */
export type Tensors = Map<string, Tensor>;

export interface SafeTensors {
  metadata: Record<string, string>;
  tensors: Tensors;
}

const bad = (why: string, details: Record<string, unknown> = {}) =>
  new HnError('delta_invalid', `delta: ${why}`, { details: { reason: why, ...details } });

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const prod = (shape: readonly number[]) => shape.reduce((p, d) => p * d, 1);

/** The canonical header bytes (padded) for these entries. */
function headerBytes(header: Record<string, unknown>): Uint8Array {
  const json = new TextEncoder().encode(jcs(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(padded).fill(0x20);
  out.set(json);
  return out;
}

/** Encode tensors (+ string metadata) as canonical safetensors. */
export function encodeSafetensors(st: SafeTensors): Uint8Array {
  const names = [...st.tensors.keys()].sort(byName);
  const header: Record<string, unknown> = {};
  if (Object.keys(st.metadata).length) header.__metadata__ = { ...st.metadata };
  let off = 0;
  for (const n of names) {
    if (n === '__metadata__') throw new HnError('bad_request', 'reserved tensor name');
    const t = st.tensors.get(n)!;
    if (prod(t.shape) !== t.data.length) throw new HnError('bad_request', `shape/data mismatch in ${n}`);
    const len = t.data.length * 4;
    header[n] = { dtype: 'F32', shape: [...t.shape], data_offsets: [off, off + len] };
    off += len;
  }
  const h = headerBytes(header);
  const out = new Uint8Array(8 + h.length + off);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, h.length, true);
  dv.setUint32(4, 0, true);
  out.set(h, 8);
  let p = 8 + h.length;
  for (const n of names) {
    const d = st.tensors.get(n)!.data;
    for (let i = 0; i < d.length; i++, p += 4) dv.setFloat32(p, d[i]!, true);
  }
  return out;
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Decode and structurally check canonical safetensors (§6 checks 4 and 8): size ≤ maxBytes, header
 * ≤ min(1 MiB, size − 8), header byte-identical to its canonical re-encoding (catches duplicate keys,
 * whitespace, non-canonical numbers), only F32, offsets in name order with no overlap and no hole, the
 * data section exactly covered. Throws `delta_invalid` only.
 */
export function decodeSafetensors(
  bytes: Uint8Array,
  maxBytes: number = C.FEDLEARN_SUBMISSION_MAX_BYTES,
): SafeTensors {
  if (!(bytes instanceof Uint8Array)) throw bad('not bytes');
  if (bytes.length > maxBytes) throw bad('too_large', { size: bytes.length, limit: maxBytes });
  if (bytes.length < 8) throw bad('truncated');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = dv.getUint32(0, true);
  const hi = dv.getUint32(4, true);
  if (hi !== 0 || lo > Math.min(HEADER_MAX_BYTES, bytes.length - 8)) throw bad('header_length');
  if (lo === 0 || lo % 8 !== 0) throw bad('header_length');
  const raw = bytes.subarray(8, 8 + lo);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    throw bad('header_utf8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text.replace(/ +$/, ''));
  } catch {
    throw bad('header_json');
  }
  if (!isObj(header)) throw bad('header_json');
  let canon: Uint8Array;
  try {
    canon = headerBytes(header);
  } catch {
    throw bad('header_json');
  }
  if (canon.length !== raw.length || canon.some((b, i) => b !== raw[i])) throw bad('header_not_canonical');
  const metadata: Record<string, string> = {};
  const meta = header.__metadata__;
  if (meta !== undefined) {
    if (!isObj(meta)) throw bad('metadata');
    for (const [k, v] of Object.entries(meta)) {
      if (typeof v !== 'string') throw bad('metadata');
      metadata[k] = v;
    }
  }
  const dataLen = bytes.length - 8 - lo;
  const names = Object.keys(header)
    .filter((k) => k !== '__metadata__')
    .sort(byName);
  let expect = 0;
  const plan: { name: string; shape: number[]; b: number; e: number }[] = [];
  for (const name of names) {
    const ent = header[name];
    if (!isObj(ent) || Object.keys(ent).length !== 3) throw bad('entry', { tensor: name });
    const { dtype, shape, data_offsets: off } = ent;
    if (dtype !== 'F32') throw bad('dtype', { tensor: name });
    if (!Array.isArray(shape) || shape.length > 8 || !shape.every(isUint))
      throw bad('shape', { tensor: name });
    if (!Array.isArray(off) || off.length !== 2 || !isUint(off[0]) || !isUint(off[1]))
      throw bad('offsets', { tensor: name });
    const n = prod(shape as number[]);
    const [b, e] = off as [number, number];
    if (b !== expect) throw bad(b < expect ? 'offsets_overlap' : 'offsets_hole', { tensor: name });
    if (!Number.isSafeInteger(n) || e - b !== n * 4 || e > dataLen) throw bad('offsets', { tensor: name });
    expect = e;
    plan.push({ name, shape: shape as number[], b, e });
  }
  if (expect !== dataLen) throw bad('offsets_hole');
  // only now allocate: the total is bounded by the input's own size
  const tensors: Tensors = new Map();
  const base = 8 + lo;
  for (const p of plan) {
    const data = new Float32Array((p.e - p.b) / 4);
    for (let i = 0, q = base + p.b; i < data.length; i++, q += 4) data[i] = dv.getFloat32(q, true);
    tensors.set(p.name, { shape: p.shape, data });
  }
  return { metadata, tensors };
}

/** Model card: layers and the `[d_in, d_out]` of each LoRA-targetable module. */
export interface ModelCard {
  base_model_id: string;
  layers: number;
  modules: Record<string, [number, number]>;
}

/** The expected delta tensors of a round: `layers.{i}.{m}.lora_A` [r, d_in] and `…lora_B` [d_out, r] (B only when A is frozen). */
export function expectedShapes(
  card: ModelCard,
  targets: readonly string[],
  rank: number,
  freezeA = false,
): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (let i = 0; i < card.layers; i++)
    for (const m of targets) {
      const dims = card.modules[m];
      if (!dims) throw new HnError('bad_request', `module ${m} not in the model card`);
      if (!freezeA) out.set(`layers.${i}.${m}.lora_A`, [rank, dims[0]]);
      out.set(`layers.${i}.${m}.lora_B`, [dims[1], rank]);
    }
  return new Map([...out].sort((a, b) => byName(a[0], b[0])));
}

/** P_lora = L·Σ r(d_in+d_out) */
export const loraParams = (card: ModelCard, targets: readonly string[], rank: number) =>
  card.layers * targets.reduce((s, m) => s + rank * (card.modules[m]![0] + card.modules[m]![1]), 0);

/** Upper bound of a delta's byte size (§4: 4·P_lora + 64 KiB). */
export const deltaBytesBound = (card: ModelCard, targets: readonly string[], rank: number) =>
  4 * loraParams(card, targets, rank) + 64 * 1024;

/** ‖Δ‖₂ over all tensors, Float64, in name order. */
export function l2norm(t: Tensors): number {
  let s = 0;
  for (const n of [...t.keys()].sort(byName)) for (const v of t.get(n)!.data) s += v * v;
  return Math.sqrt(s);
}

export interface DeltaExpectation {
  round_id: string;
  base_model_sha: string;
  rank: number;
  alpha: number;
  target_modules: readonly string[];
  card: ModelCard;
  clip_norm: number;
  dp_noise_scale: number;
  freeze_a?: boolean;
}

/** The delta metadata a participant writes (safetensors metadata values are strings). */
export function deltaMetadata(e: Omit<DeltaExpectation, 'card' | 'clip_norm' | 'dp_noise_scale'>) {
  return {
    format: DELTA_FORMAT,
    round_id: e.round_id,
    base_model_sha: e.base_model_sha,
    rank: String(e.rank),
    alpha: String(e.alpha),
    target_modules: e.target_modules.join(','),
  };
}

/**
 * §6 checks 8–12 on submitted bytes: structure, metadata (a different base → `base_model_mismatch`,
 * anything else → `delta_invalid`), exactly the expected tensor names and shapes, finite values, norm bound
 * ‖Δ‖₂ ≤ C(1+1e-4) + σC(√d+5).
 */
export function validateDelta(bytes: Uint8Array, e: DeltaExpectation, maxBytes?: number): SafeTensors {
  const st = decodeSafetensors(bytes, maxBytes);
  const m = st.metadata;
  if (m.base_model_sha !== e.base_model_sha)
    throw new HnError('base_model_mismatch', 'delta base model differs from the round', {
      details: { expected: e.base_model_sha },
    });
  const want = deltaMetadata(e);
  const keys = Object.keys(m).sort();
  if (keys.join() !== Object.keys(want).sort().join()) throw bad('metadata');
  for (const [k, v] of Object.entries(want)) if (m[k] !== v) throw bad('metadata', { field: k });
  const shapes = expectedShapes(e.card, e.target_modules, e.rank, e.freeze_a);
  if (st.tensors.size !== shapes.size) throw bad('tensor_set');
  let d = 0;
  for (const [name, shape] of shapes) {
    const t = st.tensors.get(name);
    if (!t) throw bad('tensor_set', { missing: name });
    if (t.shape.length !== shape.length || t.shape.some((x, i) => x !== shape[i]))
      throw bad('shape', { tensor: name });
    for (const v of t.data) if (!Number.isFinite(v)) throw bad('non_finite', { tensor: name });
    d += t.data.length;
  }
  const C0 = e.clip_norm;
  const bound = C0 * (1 + 1e-4) + e.dp_noise_scale * C0 * (Math.sqrt(d) + 5);
  if (l2norm(st.tensors) > bound) throw bad('norm_bound', { bound });
  return st;
}
