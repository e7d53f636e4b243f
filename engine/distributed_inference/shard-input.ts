/**
 * M26 host-side input checks and pure sizing rules (digest B3, B5): shard ids, hashes, X08 negotiation, the
 * inline `shard.forward` tensor, the per-stream KV reserve and the "serve automatically" range proposal.
 */
import { base64 } from '@scure/base';
import { HnError } from '../core/errors.js';
import type { Tensor } from '../core/types.js';
import type { NodeID } from '../core/types.js';
import type { TensorSession } from '../transport/tensor/session.js';
import type { InstalledShardModel, RangeBackend, RangeSession, ShardDescriptor } from './types.js';

/** Host records: a served range, a pending `shard.connect` grant, an accepted X08 session. */
export interface Served {
  model: InstalledShardModel;
  backend: RangeBackend;
  desc: ShardDescriptor;
  sessions: Set<HostSession>;
  reserved: Map<string, Reservation>;
  latencies: number[];
  lastUsed: number;
  lastAdvert: number;
}

export interface Reservation {
  session_id: string;
  caller: NodeID;
  kvBytes: number;
  timer: ReturnType<typeof setTimeout>;
}

export interface HostSession {
  session: TensorSession;
  kv: RangeSession;
  kvBytes: number;
  lastActive: number;
}

export interface ServeSpec {
  model_id: string;
  /** Absent: propose one from the budget and `coverage`. */
  layer_range?: [number, number];
  tier?: string;
}

/** Replica count per layer of a model among other hosts' live ads. */
export type Coverage = number[];

/** Direct `shard.forward` carries at most 256 KiB of tensor data (B3). */
export const INLINE_TENSOR_MAX = 256 * 1024;
const HEX64 = /^[0-9a-f]{64}$/;
const SHARD_ID_RE =
  /^([A-Za-z0-9][A-Za-z0-9._/-]{0,127}):(\d{1,5})-(\d{1,5})(?::([A-Za-z0-9][A-Za-z0-9_.+-]{0,31}))?$/;

export interface ParsedShardId {
  model_id: string;
  lo: number;
  hi: number;
  tier?: string;
}

/** `<model_id>:<lo>-<hi>[:<tier>]`; malformed or lo > hi → `bad_request`. */
export function parseShardId(id: unknown): ParsedShardId {
  if (typeof id !== 'string' || id.length > 200)
    throw new HnError('bad_request', 'shard_id must be a string');
  const m = SHARD_ID_RE.exec(id);
  if (!m) throw new HnError('bad_request', 'malformed shard_id (want <model_id>:<lo>-<hi>[:<tier>])');
  const lo = Number(m[2]);
  const hi = Number(m[3]);
  if (lo > hi) throw new HnError('bad_request', 'shard_id layer range has lo > hi');
  return { model_id: m[1]!, lo, hi, ...(m[4] ? { tier: m[4] } : {}) };
}

export function makeShardId(model: string, lo: number, hi: number, tier?: string): string {
  return `${model}:${lo}-${hi}${tier ? `:${tier}` : ''}`;
}

export function checkHash(x: unknown, field: string): string {
  if (typeof x !== 'string' || !HEX64.test(x))
    throw new HnError('bad_request', `${field} must be 64 lower-case hex`, { details: { field } });
  return x;
}

export function checkNegotiation(n: unknown): void {
  if (!n || typeof n !== 'object' || Array.isArray(n))
    throw new HnError('bad_request', 'negotiation must be an object');
  const o = n as Record<string, unknown>;
  if (o.preferred_dtype !== undefined && o.preferred_dtype !== 'fp16' && o.preferred_dtype !== 'fp32')
    throw new HnError('bad_request', 'negotiation.preferred_dtype must be fp16 or fp32');
  if (o.compression !== undefined && o.compression !== 'zstd' && o.compression !== 'none')
    throw new HnError('bad_request', 'negotiation.compression must be zstd or none');
  const mcb = o.max_chunk_bytes;
  if (mcb !== undefined && (!Number.isInteger(mcb) || (mcb as number) < 1024 || (mcb as number) > 1048576))
    throw new HnError('bad_request', 'negotiation.max_chunk_bytes must be 1024..1048576');
  const fw = o.flow_window;
  if (fw !== undefined && (!Number.isInteger(fw) || (fw as number) < 1 || (fw as number) > 64))
    throw new HnError('bad_request', 'negotiation.flow_window must be 1..64');
}

/** The inline tensor of a direct `shard.forward` (B3): {dtype, shape, data: base64} → a wire Tensor. */
export function decodeInlineTensor(x: unknown): Tensor {
  const t = x as Record<string, unknown> | undefined;
  if (!t || typeof t !== 'object') throw new HnError('bad_request', 'tensor is required');
  if (t.dtype !== 'fp16' && t.dtype !== 'fp32')
    throw new HnError('bad_request', 'tensor.dtype must be fp16 or fp32');
  if (!Array.isArray(t.shape) || !t.shape.every((v) => Number.isSafeInteger(v) && v >= 0))
    throw new HnError('bad_request', 'tensor.shape must be a list of non-negative integers');
  if (typeof t.data !== 'string') throw new HnError('bad_request', 'tensor.data must be base64');
  if (t.data.length > Math.ceil((INLINE_TENSOR_MAX * 4) / 3) + 4)
    throw new HnError('tensor_too_large', `inline tensors carry at most ${INLINE_TENSOR_MAX} bytes`);
  let data: Uint8Array;
  try {
    data = base64.decode(t.data);
  } catch {
    throw new HnError('bad_request', 'tensor.data is not valid base64');
  }
  if (data.length > INLINE_TENSOR_MAX)
    throw new HnError('tensor_too_large', `inline tensors carry at most ${INLINE_TENSOR_MAX} bytes`);
  return { dtype: t.dtype, shape: t.shape as number[], data };
}

/** KV reserve of one stream (B5): 2·(hi−lo+1)·H_kv·D·max_seq_len·sizeof(dtype). */
export function kvReserve(m: InstalledShardModel, lo: number, hi: number, maxSeq: number): number {
  const size = m.compute_dtype === 'float16' ? 2 : 4;
  return 2 * (hi - lo + 1) * m.num_kv_heads * m.head_dim * maxSeq * size;
}

/**
 * "Serve automatically": a range of whole manifest shards within `free` bytes (weights + one stream's KV),
 * starting at the first layer with no replica; with full coverage, at the least-replicated layer (lowest
 * index on ties), extended over following shards with the same replica count.
 */
export function proposeRange(m: InstalledShardModel, coverage: Coverage, free: number): [number, number] {
  const atoms = [...m.ranges].sort((a, b) => a[0] - b[0]);
  const count = (r: [number, number]) => {
    let c = Infinity;
    for (let l = r[0]; l <= r[1]; l++) c = Math.min(c, coverage[l] ?? 0);
    return c;
  };
  const fits = (lo: number, hi: number) => m.rangeBytes(lo, hi) + kvReserve(m, lo, hi, m.max_seq_len) <= free;
  let startIdx = atoms.findIndex((a) => count(a) === 0);
  let want = 0;
  if (startIdx < 0) {
    let best = Infinity;
    atoms.forEach((a, i) => {
      if (count(a) < best) {
        best = count(a);
        startIdx = i;
      }
    });
    want = best;
  }
  const first = atoms[startIdx]!;
  if (!fits(first[0], first[1]))
    throw new HnError('capacity_exceeded', 'the memory budget does not fit one shard of this model', {
      details: { needed_bytes: m.rangeBytes(first[0], first[1]), budget_bytes: free },
    });
  let hi = first[1];
  for (let i = startIdx + 1; i < atoms.length; i++) {
    const a = atoms[i]!;
    if (count(a) !== want || !fits(first[0], a[1])) break;
    hi = a[1];
  }
  return [first[0], hi];
}
