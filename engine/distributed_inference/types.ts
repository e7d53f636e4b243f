/**
 * M26 records (digest B4) and the runtime seams the module is built on. Everything that touches ORT is behind
 * `RangeBackend` (host) and `OrchestratorModel` (head/tail/tokenizer), so the logic runs the same in a tab
 * (inference worker) and in Node tests (ORT-web WASM in process).
 */
import type { HiddenDtype } from '../llm/runtime.js';
import type { ChatMessage } from '../llm/tokenizer.js';
import type { CutStat } from '../llm/manifest.js';
import type { ShardPath } from './plan.js';

export const SHARD_GRAPH_FORMAT = 'hn-decoder-shard/1';
/** X08 wire purpose (X08's literal; core §7.5). */
export const FORWARD_PURPOSE = 'pipeline.shard.forward';
export const CAP = {
  list: 'experimental.distributed_llm.shard.list',
  connect: 'experimental.distributed_llm.shard.connect',
  forward: 'experimental.distributed_llm.shard.forward',
  plan: 'experimental.distributed_llm.pipeline.plan',
  run: 'experimental.distributed_llm.pipeline.run',
  status: 'experimental.distributed_llm.pipeline.status',
} as const;
export const CONNECT_REF = `${CAP.connect}@1.0`;
export const FORWARD_REF = `${CAP.forward}@1.0`;
export const EV = {
  advertised: 'distributed_llm.shard.advertised',
  withdrawn: 'distributed_llm.shard.withdrawn',
  planned: 'distributed_llm.pipeline.planned',
  started: 'distributed_llm.pipeline.started',
  shardFailed: 'distributed_llm.pipeline.shard_failed',
  failover: 'distributed_llm.pipeline.failover',
  completed: 'distributed_llm.pipeline.completed',
  cancelled: 'distributed_llm.pipeline.cancelled',
} as const;

/** Ad lifetime (B4/B11): re-sent every 30 min while serving, expires after 60 min. */
export const AD_REFRESH_S = 30 * 60;
export const AD_TTL_S = 60 * 60;
/** A plan not run within 60 s expires (B6). */
export const PLAN_TTL_S = 60;
/** A shard.connect reservation lapses without HELLO in 10 s (B3). */
export const RESERVATION_TTL_MS = 10_000;
/** Host: a session with no forward for 60 s is closed (B5). */
export const SESSION_IDLE_S = 60;
/** Orchestrator: a host whose activations failed the sanity checks is avoided for 10 min (B6). */
export const SUSPECT_S = 600;

export interface ShardDescriptor {
  shard_id: string;
  model_id: string;
  weights_sha256: string;
  shard_sha256: string;
  graph_format: typeof SHARD_GRAPH_FORMAT;
  layer_range: [number, number];
  total_layers: number;
  hidden_size: number;
  num_kv_heads: number;
  head_dim: number;
  compute_dtype: HiddenDtype;
  wire_dtypes: ('fp16' | 'fp32')[];
  vram_required_mb: number;
  max_concurrent_streams: number;
  max_seq_len: number;
  host: string;
  transports: string[];
  advertised_at: number;
  expires_at: number;
  tier?: string;
}

export interface ShardHealth {
  shard_id: string;
  host: string;
  online: boolean;
  last_seen: number;
  p95_latency_ms: number;
  queue_depth: number;
  active_sessions: number;
  loaded: boolean;
}

/** One KV context on a host: S positions in → S positions out (appends to its cache). */
export interface RangeSession {
  readonly pastLength: number;
  forward(h: { dtype: HiddenDtype; dims: number[]; data: Float32Array | Uint16Array }): Promise<{
    dtype: HiddenDtype;
    dims: number[];
    data: Float32Array | Uint16Array;
  }>;
  close(): void;
}

/** A loaded contiguous layer range lo..hi of one model on a host (one or more chained shard graphs). */
export interface RangeBackend {
  readonly layer_range: [number, number];
  readonly compute_dtype: HiddenDtype;
  /** sha256 of the served graph(s): the single shard file's hash, else sha256 over the chained hashes. */
  readonly shard_sha256: string;
  readonly weight_bytes: number;
  openSession(): RangeSession;
  release(): Promise<void>;
}

/** What a host has installed and may serve (a split manifest's dims; ranges it can load). */
export interface InstalledShardModel {
  model_id: string;
  weights_sha256: string;
  tier: string;
  total_layers: number;
  hidden_size: number;
  num_kv_heads: number;
  head_dim: number;
  max_seq_len: number;
  compute_dtype: HiddenDtype;
  /** The manifest's shard ranges (a served range is a contiguous union of them). */
  ranges: [number, number][];
  /** Weight bytes of a range (for the memory budget). */
  rangeBytes(lo: number, hi: number): number;
  load(lo: number, hi: number): Promise<RangeBackend>;
}

/** Orchestrator side of a model: head, tail, tokenizer (from the manifest; the local head/tail install). */
export interface OrchestratorModel {
  model_id: string;
  weights_sha256: string;
  tier: string;
  total_layers: number;
  hidden_size: number;
  vocab_size: number;
  max_seq_len: number;
  cut_stats: CutStat[];
  embed(ids: number[]): Promise<{ dtype: HiddenDtype; dims: number[]; data: Float32Array | Uint16Array }>;
  /** Logits of the last position of `h`. */
  logits(h: { dtype: HiddenDtype; dims: number[]; data: Float32Array | Uint16Array }): Promise<Float32Array>;
  encode(text: string): number[];
  formatChat(messages: ChatMessage[]): string;
  decode(ids: number[]): string;
  eosIds: number[];
}

export interface OrderedShard {
  shard_id: string;
  host: string;
  layer_range: [number, number];
  path: ShardPath;
  queue_depth: number;
  p95_latency_ms: number;
}
