/**
 * M26 orchestrator planning seams (digest B6): candidates (live ads of the export, fresh health polled in
 * parallel with a 1 s timeout, linked trusted hosts, not suspect), the greedy cover, and one X08 session per
 * planned shard.
 */
import type { StreamFrame } from '../bus/types.js';
import { HnError } from '../core/errors.js';
import { trustAtLeast, type NodeID, type TrustLevel } from '../core/types.js';
import type { Metrics } from '../observability/metrics.js';
import type { Logger } from '../observability/logger.js';
import type { TensorHost } from '../transport/tensor/host.js';
import type { TensorSession } from '../transport/tensor/session.js';
import { ShardFailure, type SuspectList } from './failover.js';
import { keyOf, planCover, type PlanCandidate } from './plan.js';
import type { ShardStore } from './router.js';
import { checkHash, type DistributedLlmSection } from './shard.js';
import {
  CAP,
  CONNECT_REF,
  FORWARD_PURPOSE,
  SHARD_GRAPH_FORMAT,
  type OrchestratorModel,
  type OrderedShard,
  type ShardHealth,
} from './types.js';
import type { WireDtype } from './wire.js';

/** B6: plan-time health polls time out after 1 s (no answer → excluded). */
export const HEALTH_POLL_MS = 1000;

export interface OrchestratorDeps {
  self: NodeID;
  config: () => DistributedLlmSection;
  tensors: Pick<TensorHost, 'open'>;
  /** Unary bus call on a peer (`shard.list` polls) or, without `peer`, on this node (`llm.models.list`). */
  call: (cap: string, input: unknown, opts: { peer?: NodeID; timeout_ms?: number }) => Promise<unknown>;
  /** Streaming bus call on this node: `llm.chat`, the local fallback (B6 step 7). */
  stream?: (cap: string, input: unknown, opts: { signal?: AbortSignal }) => AsyncIterable<StreamFrame>;
  events: { append(type: string, data: Record<string, unknown>): Promise<unknown> };
  store: ShardStore;
  link: (peer: NodeID) => { kind: 'direct' | 'relay' | 'memory'; state: string } | undefined;
  levelOf: (n: NodeID) => TrustLevel | 'revoked' | null;
  /** Head/tail/tokenizer of an installed split with these weights. */
  models: (model_id: string, weights: string) => Promise<OrchestratorModel | undefined>;
  log?: Pick<Logger, 'warn'>;
  metrics?: Metrics;
  now?: () => number;
  /** Plan-time health poll timeout (B6: 1 s, the default). */
  healthTimeoutMs?: number;
}

export interface PlanContext {
  d: OrchestratorDeps;
  suspects: SuspectList;
}

/** B6 candidates: live ads of this export, fresh health (polled in parallel, 1 s), linked trusted hosts. */
export async function candidates(
  ctx: PlanContext,
  model: OrchestratorModel,
  exclude: ReadonlySet<string>,
  allowSelf: boolean,
): Promise<PlanCandidate[]> {
  const cfg = ctx.d.config();
  const hbMs = cfg.shard_heartbeat_seconds * 1000;
  const ads = ctx.d.store
    .list(model.model_id)
    .filter(
      (a) =>
        a.weights_sha256 === model.weights_sha256 &&
        a.graph_format === SHARD_GRAPH_FORMAT &&
        (a.tier ?? model.tier) === model.tier &&
        a.total_layers === model.total_layers &&
        a.hidden_size === model.hidden_size &&
        !exclude.has(keyOf(a)) &&
        (allowSelf || a.host !== ctx.d.self) &&
        !ctx.suspects.has(a.host),
    )
    .filter((a) => {
      const lvl = ctx.d.levelOf(a.host as NodeID);
      const link = ctx.d.link(a.host as NodeID);
      return (
        (a.host === ctx.d.self || (link && link.state === 'open')) &&
        lvl !== null &&
        lvl !== 'revoked' &&
        trustAtLeast(lvl, 'trusted')
      );
    });
  // refresh stale health in parallel (1 s each by default); a host that does not answer is excluded
  const pollMs = ctx.d.healthTimeoutMs ?? HEALTH_POLL_MS;
  const hosts = [...new Set(ads.filter((a) => !ctx.d.store.healthOf(keyOf(a), hbMs)).map((a) => a.host))];
  await Promise.all(
    hosts.map(async (host) => {
      try {
        const out = (await ctx.d.call(
          CAP.list,
          { model_id: model.model_id },
          { peer: host as NodeID, timeout_ms: pollMs },
        )) as { shards?: ShardHealth[] };
        const present = new Set<string>();
        for (const s of out.shards ?? []) {
          if (typeof s?.shard_id !== 'string') continue;
          present.add(s.shard_id);
          ctx.d.store.setHealth({ ...s, host });
        }
        ctx.d.store.forgetMissing(host, present);
      } catch {
        /* no answer → no fresh health → excluded below */
      }
    }),
  );
  const out: PlanCandidate[] = [];
  for (const a of ctx.d.store.list(model.model_id)) {
    if (!ads.some((x) => keyOf(x) === keyOf(a))) continue;
    const h = ctx.d.store.healthOf(keyOf(a), hbMs + 1000);
    if (!h || !h.online || h.active_sessions >= a.max_concurrent_streams) continue;
    const link = ctx.d.link(a.host as NodeID);
    out.push({
      shard_id: a.shard_id,
      host: a.host,
      layer_range: [a.layer_range[0], a.layer_range[1]],
      path: !link ? 'memory' : link.kind === 'relay' ? 'relayed' : link.kind,
      queue_depth: h.queue_depth,
      p95_latency_ms: h.p95_latency_ms,
    });
  }
  return out;
}

export async function cover(
  ctx: PlanContext,
  model: OrchestratorModel,
  exclude: ReadonlySet<string>,
  opts: { max_shards?: number; allow_self?: boolean; prefer?: ReadonlySet<string> },
): Promise<OrderedShard[]> {
  const cfg = ctx.d.config();
  const cands = await candidates(ctx, model, exclude, opts.allow_self ?? cfg.allow_self_as_shard);
  const r = planCover(cands, model.total_layers, {
    max_shards: Math.min(opts.max_shards ?? cfg.max_shards_per_pipeline, cfg.max_shards_per_pipeline),
    ...(opts.prefer ? { prefer: opts.prefer } : {}),
  });
  if (!r.ok)
    throw new HnError(
      'shard_unavailable',
      r.reason === 'max_shards'
        ? `no cover within the shard limit (first layer beyond it: ${r.first_uncovered_layer})`
        : `no shard starts at layer ${r.first_uncovered_layer}`,
      {
        details: {
          first_uncovered_layer: r.first_uncovered_layer,
          reason: r.reason,
          candidates: cands.length,
        },
      },
    );
  return r.shards;
}

/** One X08 session per shard (in parallel); a refusal closes the others and is a ShardFailure. */
export async function connectShards(
  ctx: PlanContext,
  model: OrchestratorModel,
  pipelineId: string,
  shards: OrderedShard[],
  wire: WireDtype,
  maxSeq: number,
): Promise<TensorSession[]> {
  const timeout = ctx.d.config().failover_timeout_seconds * 1000;
  const settled = await Promise.allSettled(
    shards.map((s) =>
      ctx.d.tensors.open(s.host as NodeID, {
        capability: CONNECT_REF,
        purpose: FORWARD_PURPOSE,
        input: {
          shard_id: s.shard_id,
          weights_sha256: model.weights_sha256,
          pipeline_id: pipelineId,
          max_seq_len: maxSeq,
          negotiation: { preferred_dtype: wire, compression: 'none' },
        },
        negotiation: { preferred_dtype: wire, compression: 'none' },
        timeout_ms: timeout,
      }),
    ),
  );
  const bad = settled.findIndex((r) => r.status === 'rejected');
  if (bad >= 0) {
    const why = (settled[bad] as PromiseRejectedResult).reason as { code?: unknown; message?: unknown };
    // the refusal's code and message only (no activations, no token)
    ctx.d.log?.warn('a shard host refused the tensor session', {
      host: shards[bad]!.host,
      shard_id: shards[bad]!.shard_id,
      code: String(why?.code ?? 'error'),
      reason: String(why?.message ?? why),
    });
    for (const r of settled) if (r.status === 'fulfilled') r.value.close('cancelled');
    throw new ShardFailure(bad, shards[bad]!.shard_id, shards[bad]!.host, 'connect_failed');
  }
  return settled.map((r) => (r as PromiseFulfilledResult<TensorSession>).value);
}

/** The local head/tail of an export, or `bad_request`. */
export async function modelFor(
  ctx: PlanContext,
  model_id: unknown,
  weights: unknown,
): Promise<OrchestratorModel> {
  if (typeof model_id !== 'string' || model_id.length < 1 || model_id.length > 128)
    throw new HnError('bad_request', 'model_id must be 1..128 characters', {
      details: { field: 'model_id' },
    });
  const w = checkHash(weights, 'weights_sha256');
  const m = await ctx.d.models(model_id, w);
  if (!m)
    throw new HnError('bad_request', 'no local head/tail of this model with these weights', {
      details: { field: 'model_id' },
    });
  return m;
}
