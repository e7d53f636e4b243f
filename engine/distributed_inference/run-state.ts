/**
 * M26 run records (digest B3 `pipeline.status`, `shard_status` frames): what a run reports about itself.
 */
import type { StreamFrame } from '../bus/types.js';
import { p95 } from './backends.js';
import { keyOf, type ShardPath } from './plan.js';
import type { OrderedShard } from './types.js';

export interface PlannedPipeline {
  pipeline_id: string;
  model_id: string;
  weights_sha256: string;
  total_layers: number;
  ordered_shards: OrderedShard[];
  estimated_tokens_per_s?: number;
  below_floor: boolean;
  construct_ms: number;
  expires_at: number;
}

export type RunStateName =
  | 'planned'
  | 'connecting'
  | 'prefilling'
  | 'decoding'
  | 'failing_over'
  | 'local_fallback'
  | 'completed'
  | 'failed'
  | 'cancelled';

export interface ShardState {
  shard_id: string;
  host: string;
  status: 'online' | 'degraded' | 'failed';
  last_seen: number;
  latencies: number[];
  path: ShardPath;
}

export interface RunRecord {
  pipeline_id: string;
  state: RunStateName;
  model_id: string;
  shards: ShardState[];
  tokens_out: number;
  tokens_per_s: number;
  recent: number[];
  below_floor: boolean;
  failovers: number;
  started_at: number;
  updated_at: number;
}

export function shardState(s: OrderedShard, nowMs: number): ShardState {
  return {
    shard_id: s.shard_id,
    host: s.host,
    status: 'online',
    last_seen: Math.floor(nowMs / 1000),
    latencies: [],
    path: s.path,
  };
}

/** The `shard_status` frame of a run. */
export function shardStatusFrame(r: RunRecord): StreamFrame {
  return {
    event: 'shard_status',
    data: {
      shards: r.shards.map((s) => ({
        shard_id: s.shard_id,
        host: s.host,
        status: s.status,
        latency_ms: p95(s.latencies),
        path: s.path,
      })),
      below_floor: r.below_floor,
    },
  };
}

/** One entry of `pipeline.status`. */
export function statusRecord(r: RunRecord) {
  return {
    pipeline_id: r.pipeline_id,
    state: r.state,
    model_id: r.model_id,
    shards: Object.fromEntries(
      r.shards.map((s) => [
        keyOf(s),
        { status: s.status, last_seen: s.last_seen, p95_latency_ms: p95(s.latencies), path: s.path },
      ]),
    ),
    tokens_out: r.tokens_out,
    tokens_per_s: r.tokens_per_s,
    below_floor: r.below_floor,
    failovers: r.failovers,
    started_at: r.started_at,
    updated_at: r.updated_at,
  };
}
