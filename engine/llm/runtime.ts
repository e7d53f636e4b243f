/**
 * Decoder runtimes over onnxruntime-web sessions: head (input_ids → inputs_embeds), layer shard
 * (hidden_states → hidden_states_out, KV cache per pipeline session), tail (hidden_states → logits)
 * and the unsplit model (input_ids → logits, KV cache per session).
 *
 * KV rule (B5): each forward of S positions appends to the session's cache; position_ids
 * P..P+S−1 and an all-ones attention mask of length P+S are derived from the session's own counter.
 * Batch 1, no padding. Closing a session disposes its cached tensors.
 */
import { HnError } from '../core/errors.js';
import {
  createSession,
  ort,
  type CreatedSession,
  type ExecutionProvider,
  type ExternalDataFile,
  type RuntimeOptions,
} from './ort.js';

export type HiddenDtype = 'float32' | 'float16';

/** Activation tensor [1, S, E] crossing a part boundary. float16 data is raw IEEE half bits. */
export interface Hidden {
  dtype: HiddenDtype;
  dims: number[];
  data: Float32Array | Uint16Array;
}

export interface DecoderDims {
  num_kv_heads: number;
  head_dim: number;
  hidden_size: number;
  vocab_size: number;
  max_seq_len: number;
}

const PAST_RE = /^past_key_values\.(\d+)\.(key|value)$/;

function toTensor(h: Hidden): ort.Tensor {
  return new ort.Tensor(h.dtype, h.data, h.dims);
}

function fromTensor(t: ort.Tensor): Hidden {
  if (t.type !== 'float32' && t.type !== 'float16')
    throw new HnError('internal_error', `unexpected activation dtype ${t.type}`);
  const data =
    t.type === 'float32'
      ? (t.data as Float32Array)
      : new Uint16Array((t.data as Uint16Array).buffer, (t.data as Uint16Array).byteOffset, t.size);
  return { dtype: t.type, dims: [...t.dims], data };
}

function i64(values: number[], dims: number[]): ort.Tensor {
  return new ort.Tensor(
    'int64',
    BigInt64Array.from(values, (v) => BigInt(v)),
    dims,
  );
}

let ones = new BigInt64Array(0);
/**
 * An all-ones int64 mask of length n: a view of one shared buffer (onnxruntime copies inputs into its own memory at
 * run time and never writes them), so a decode step builds no per-token array of P+S BigInts.
 */
function onesI64(n: number): BigInt64Array {
  if (ones.length < n) ones = new BigInt64Array(Math.max(n, 2 * ones.length, 256)).fill(1n);
  return ones.subarray(0, n);
}

/** Element type of an input as declared by the session (ORT ≥ 1.22 metadata); fallback given. */
function inputType(s: ort.InferenceSession, name: string, fallback: HiddenDtype): HiddenDtype {
  const md = (s as unknown as { inputMetadata?: { name: string; isTensor: boolean; type?: string }[] })
    .inputMetadata;
  const m = md?.find((x) => x.name === name);
  if (m?.isTensor && (m.type === 'float16' || m.type === 'float32')) return m.type;
  return fallback;
}

/** One ORT session plus the layers whose KV it caches. */
export class DecoderPart {
  readonly pastNames: string[];
  readonly layers: number[];
  readonly kvDtype: HiddenDtype;
  private closed = false;

  private constructor(
    readonly created: CreatedSession,
    readonly dims: DecoderDims,
    readonly label: string,
  ) {
    const s = created.session;
    this.pastNames = s.inputNames.filter((n) => PAST_RE.test(n));
    this.layers = [...new Set(this.pastNames.map((n) => Number(PAST_RE.exec(n)![1])))].sort((a, b) => a - b);
    this.kvDtype = this.pastNames[0] ? inputType(s, this.pastNames[0], 'float32') : 'float32';
  }

  static async load(
    bytes: Uint8Array,
    dims: DecoderDims,
    label: string,
    opts: RuntimeOptions & { externalData?: ExternalDataFile[] } = {},
  ): Promise<DecoderPart> {
    try {
      return new DecoderPart(await createSession(bytes, opts), dims, label);
    } catch (e) {
      throw new HnError(
        'internal_error',
        `${label}: onnxruntime could not load the graph: ${(e as Error).message}`,
      );
    }
  }

  get session(): ort.InferenceSession {
    if (this.closed) throw new HnError('closed', `${this.label} is closed`);
    return this.created.session;
  }
  get executionProviders(): ExecutionProvider[] {
    return this.created.executionProviders;
  }
  has(input: string): boolean {
    return this.session.inputNames.includes(input);
  }
  async release(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.created.session.release();
  }
}

/** KV cache of one pipeline session on one part. */
export class KvCache {
  private past = new Map<string, ort.Tensor>();
  private len = 0;
  private open = true;

  constructor(private readonly part: DecoderPart) {
    this.reset();
  }

  get pastLength(): number {
    return this.len;
  }

  reset(): void {
    this.disposeAll();
    const { num_kv_heads: H, head_dim: D } = this.part.dims;
    for (const n of this.part.pastNames) {
      const empty = this.part.kvDtype === 'float32' ? new Float32Array(0) : new Uint16Array(0);
      this.past.set(n, new ort.Tensor(this.part.kvDtype, empty, [1, H, 0, D]));
    }
    this.len = 0;
  }

  /** Runs the part on S new positions with the cached past; stores the presents; returns the other outputs. */
  async step(main: Record<string, ort.Tensor>, S: number): Promise<Record<string, ort.Tensor>> {
    if (!this.open) throw new HnError('closed', `${this.part.label}: KV session is closed`);
    if (S < 1) throw new HnError('bad_request', 'empty forward');
    const P = this.len;
    if (P + S > this.part.dims.max_seq_len)
      throw new HnError(
        'capacity_exceeded',
        `${this.part.label}: context ${P + S} exceeds max_seq_len ${this.part.dims.max_seq_len}`,
      );
    const feeds: Record<string, ort.Tensor> = { ...main };
    if (this.part.has('attention_mask'))
      feeds['attention_mask'] = new ort.Tensor('int64', onesI64(P + S), [1, P + S]);
    if (this.part.has('position_ids')) {
      const pos = new BigInt64Array(S);
      for (let i = 0; i < S; i++) pos[i] = BigInt(P + i);
      feeds['position_ids'] = new ort.Tensor('int64', pos, [1, S]);
    }
    for (const [n, t] of this.past) feeds[n] = t;
    const out = await this.part.session.run(feeds);
    const rest: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(out)) {
      const m = /^present\.(\d+)\.(key|value)$/.exec(name);
      if (m) {
        const pastName = `past_key_values.${m[1]}.${m[2]}`;
        const old = this.past.get(pastName);
        if (!old)
          throw new HnError(
            'internal_error',
            `${this.part.label}: output ${name} has no matching past input`,
          );
        old.dispose();
        this.past.set(pastName, t);
      } else rest[name] = t;
    }
    this.len = P + S;
    return rest;
  }

  close(): void {
    if (!this.open) return;
    this.disposeAll();
    this.open = false;
  }

  private disposeAll(): void {
    for (const t of this.past.values()) t.dispose();
    this.past.clear();
  }
}

/** Orchestrator side: input_ids → inputs_embeds. */
export class HeadRunner {
  constructor(readonly part: DecoderPart) {}
  async embed(ids: number[]): Promise<Hidden> {
    const out = await this.part.session.run({ input_ids: i64(ids, [1, ids.length]) });
    const t = out['inputs_embeds'];
    if (!t) throw new HnError('internal_error', 'head graph has no inputs_embeds output');
    return fromTensor(t);
  }
}

/** Orchestrator side: hidden_states → logits ([S, V] row-major, float32). */
export class TailRunner {
  constructor(readonly part: DecoderPart) {}
  async logits(h: Hidden): Promise<Float32Array> {
    const out = await this.part.session.run({ hidden_states: toTensor(h) });
    const t = out['logits'];
    if (!t) throw new HnError('internal_error', 'tail graph has no logits output');
    return t.type === 'float32' ? (t.data as Float32Array) : halfToFloat(t.data as Uint16Array);
  }
}

/** Shard host side: one KV session per pipeline session. */
export class ShardRunner {
  private sessions = new Set<ShardSession>();
  constructor(readonly part: DecoderPart) {}
  get layerRange(): [number, number] {
    return [this.part.layers[0]!, this.part.layers[this.part.layers.length - 1]!];
  }
  openSession(): ShardSession {
    const s = new ShardSession(this, new KvCache(this.part), () => this.sessions.delete(s));
    this.sessions.add(s);
    return s;
  }
  get activeSessions(): number {
    return this.sessions.size;
  }
  async release(): Promise<void> {
    for (const s of [...this.sessions]) s.close();
    await this.part.release();
  }
}

export class ShardSession {
  constructor(
    readonly runner: ShardRunner,
    private readonly kv: KvCache,
    private readonly onClose: () => void,
  ) {}
  get pastLength(): number {
    return this.kv.pastLength;
  }
  /** Appends S positions: [1,S,E] in → [1,S,E] out. */
  async forward(h: Hidden): Promise<Hidden> {
    const E = this.runner.part.dims.hidden_size;
    if (h.dims.length !== 3 || h.dims[0] !== 1 || h.dims[2] !== E || !(h.dims[1]! >= 1))
      throw new HnError('bad_request', `hidden_states must be [1,S,${E}], got [${h.dims.join(',')}]`);
    if (h.data.length !== h.dims[1]! * E)
      throw new HnError('bad_request', 'hidden_states data length does not match its shape');
    const out = await this.kv.step({ hidden_states: toTensor(h) }, h.dims[1]!);
    const t = out['hidden_states_out'];
    if (!t) throw new HnError('internal_error', 'shard graph has no hidden_states_out output');
    return fromTensor(t);
  }
  close(): void {
    this.kv.close();
    this.onClose();
  }
}

/** The unsplit model: input_ids → logits with a KV cache per session. */
export class WholeModelRunner {
  constructor(readonly part: DecoderPart) {}
  openSession(): WholeSession {
    return new WholeSession(this.part, new KvCache(this.part));
  }
}

export class WholeSession {
  constructor(
    private readonly part: DecoderPart,
    private readonly kv: KvCache,
  ) {}
  get pastLength(): number {
    return this.kv.pastLength;
  }
  /** Logits [S, V] of the appended positions. */
  async forwardAll(ids: number[]): Promise<Float32Array> {
    const out = await this.kv.step({ input_ids: i64(ids, [1, ids.length]) }, ids.length);
    const t = out['logits'];
    if (!t) throw new HnError('internal_error', 'model has no logits output');
    return t.type === 'float32' ? (t.data as Float32Array) : halfToFloat(t.data as Uint16Array);
  }
  close(): void {
    this.kv.close();
  }
}

/** Slice of the last position: [1,S,E] → [1,1,E]. */
export function lastPosition(h: Hidden): Hidden {
  const S = h.dims[1]!;
  const E = h.dims[2]!;
  return { dtype: h.dtype, dims: [1, 1, E], data: h.data.slice((S - 1) * E, S * E) };
}

export function halfToFloat(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i]!;
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const f = h & 0x3ff;
    out[i] =
      e === 0
        ? s * 2 ** -14 * (f / 1024)
        : e === 31
          ? f
            ? NaN
            : s * Infinity
          : s * 2 ** (e - 15) * (1 + f / 1024);
  }
  return out;
}
