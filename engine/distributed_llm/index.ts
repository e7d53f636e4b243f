/**
 * M26 Distributed LLM — module definition. PLACEHOLDER: the seed capabilities are registered (while the
 * module is on) and answer `not_implemented`; the module's helper replaces the body of `create`.
 */
import * as C from '../core/constants.js';
import { anyList, bool, fieldError, int, num, oneOf } from '../core/config-fields.js';
import type { ModuleDefinition } from '../modules/module.js';
import { notImplementedCapabilities } from '../modules/registry.js';

function shardSpec(v: unknown, path: string) {
  if (!v || typeof v !== 'object') throw fieldError(path, 'must be a table {model_id, layer_range, tier?}');
  const o = v as Record<string, unknown>;
  if (typeof o.model_id !== 'string' || !o.model_id)
    throw fieldError(`${path}.model_id`, 'must be a non-empty string');
  if (typeof o.layer_range !== 'string' || !/^\d+-\d+$/.test(o.layer_range))
    throw fieldError(`${path}.layer_range`, 'must look like 0-3');
}

/** [distributed_llm] config section (seed §8; field list owned by the module digest). */
export const config = {
  enabled: bool(false),
  max_shards_per_pipeline: int(
    C.DISTRIBUTED_LLM_MAX_SHARDS_PER_PIPELINE,
    1,
    C.DISTRIBUTED_LLM_MAX_SHARDS_PER_PIPELINE,
  ),
  shard_heartbeat_seconds: int(C.DISTRIBUTED_LLM_SHARD_HEARTBEAT_SECONDS, 1, 600),
  failover_timeout_seconds: int(C.DISTRIBUTED_LLM_FAILOVER_TIMEOUT_SECONDS, 1, 600),
  min_tokens_per_s: num(C.DISTRIBUTED_LLM_MAX_PIPELINE_LATENCY_TOKENS_PER_S, 0, 1000),
  default_dtype: oneOf(C.DISTRIBUTED_LLM_DEFAULT_DTYPE, ['fp32', 'fp16', 'bf16', 'int8']),
  fallback_to_local: bool(true),
  max_failovers_per_run: int(2, 0, 16),
  allow_self_as_shard: bool(false),
  max_concurrent_pipelines: int(4, 1, 64),
  prefill_chunk_tokens: int(64, 1, 4096),
  serve_shards: bool(false),
  shards: anyList(shardSpec),
  eviction_idle_seconds: int(600, 1, 86400),
  max_vram_mb: int(0, 0, 1 << 20),
};

export const CAPABILITIES = [
  'experimental.distributed_llm.shard.list',
  'experimental.distributed_llm.shard.connect',
  'experimental.distributed_llm.shard.forward',
  'experimental.distributed_llm.pipeline.plan',
  'experimental.distributed_llm.pipeline.run',
  'experimental.distributed_llm.pipeline.status',
] as const;

export const EVENT_TYPES = [
  'distributed_llm.shard.advertised',
  'distributed_llm.shard.withdrawn',
  'distributed_llm.pipeline.planned',
  'distributed_llm.pipeline.started',
  'distributed_llm.pipeline.shard_failed',
  'distributed_llm.pipeline.failover',
  'distributed_llm.pipeline.completed',
  'distributed_llm.pipeline.cancelled',
] as const;

export const distributedLlm: ModuleDefinition<'distributed_llm', typeof config> = {
  name: 'distributed_llm',
  seedId: 'M26',
  config,
  // M26 runs over X08: enabling it enables tensor_transport, disabling X08 disables it
  requires: ['tensor_transport'],
  capabilityNames: CAPABILITIES,
  events: EVENT_TYPES.map((type) => ({ type })),
  view: {
    title: 'Distributed LLM',
    blurb: 'An LLM split into layer ranges across tabs (M26).',
    icon: '🧩',
  },
  create: () => ({
    capabilities: () => notImplementedCapabilities('distributed_llm', CAPABILITIES),
  }),
};

export default distributedLlm;
