/**
 * M26 Distributed LLM — module definition. One LLM split across tabs: shard hosting (admission, ads, KV per
 * X08 session), planning, the orchestrated run with failover and local fallback (engine/distributed_inference/).
 * Registered only while the module is on; it requires X08 (`tensor_transport`).
 *
 * Models: the module reaches ORT through a `DistributedModels` provider (installed splits it may serve, the
 * head/tail/tokenizer an orchestrator needs). The local fallback is whatever this node serves as `llm.chat`. `createDistributedLlm({ models })`
 * makes a definition with its own provider (tests: `createNode({ modules: [createDistributedLlm(...)] })`);
 * the built-in definition asks `provideDistributedModels(nodeId, provider)` (the app registers the models it
 * installed in the inference worker). With no provider the node still lists, plans and relays nothing.
 */
import * as C from '../core/constants.js';
import { anyList, bool, fieldError, int, num, oneOf } from '../core/config-fields.js';
import type { ModuleDefinition } from '../modules/module.js';
import type { StreamFrame } from '../bus/types.js';
import { HnError } from '../core/errors.js';
import type { NodeID, TrustLevel } from '../core/types.js';
import { descriptor } from '../modules/registry.js';
import { Orchestrator, type RunInput } from './orchestrator.js';
import { ShardStore } from './router.js';
import { ShardHost, type ServeSpec } from './shard.js';
import type { InstalledShardModel, OrchestratorModel, ShardDescriptor } from './types.js';

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

export interface PrepareProgress {
  phase: string;
  loaded: number;
  total: number;
}

/** Where the module gets models (ORT lives behind these; see engine/distributed_inference/onnx.ts). */
export interface DistributedModels {
  /** make the models available (download, verify); the view calls this before serving or asking */
  prepare?: (
    onProgress?: (p: PrepareProgress) => void,
  ) => Promise<{ model_id: string; weights_sha256: string }[]>;
  /** splits this node may serve */
  installed?: () => InstalledShardModel[];
  /** head + tail + tokenizer of a split with these weights (orchestrator) */
  orchestrator?: (model_id: string, weights_sha256: string) => Promise<OrchestratorModel | undefined>;
}

/** What a running instance offers its node (app, tests): serving ranges and the parts' state. */
export interface DistributedLlmApi {
  serve(spec: ServeSpec): Promise<ShardDescriptor>;
  withdraw(shard_id: string): Promise<void>;
  /** Raise a member to `trusted` (B7: hosts and askers must be trusted) through the kit community component. */
  trust(node: NodeID): Promise<void>;
  readonly host: ShardHost;
  readonly orchestrator: Orchestrator;
  readonly store: ShardStore;
}

const providers = new Map<string, DistributedModels>();
const apis = new Map<string, DistributedLlmApi>();
/** The built-in definition's model provider for a node (the app calls this before enabling M26). */
export function provideDistributedModels(node: NodeID, models: DistributedModels | null): void {
  if (models) providers.set(node, models);
  else providers.delete(node);
}
/** The model provider a node's M26 uses (the view prepares models through it). */
export function distributedModelsOf(node: NodeID): DistributedModels | undefined {
  return providers.get(node);
}
/** The running instance on a node, or undefined while the module is off. */
export function distributedLlmApi(node: NodeID): DistributedLlmApi | undefined {
  return apis.get(node);
}

export function createDistributedLlm(
  opts: {
    models?: DistributedModels;
    /** Plan-time `shard.list` health poll timeout (spec B6: 1 s); tests on a loaded machine raise it. */
    healthTimeoutMs?: number;
  } = {},
): ModuleDefinition<'distributed_llm', typeof config> {
  return {
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
      load: () => import('./View.svelte'),
    },
    create(c) {
      const models = (): DistributedModels => opts.models ?? providers.get(c.self) ?? {};
      const now = () => c.clock.now();
      const peerOf = (n: NodeID) => c.peers.list().find((p) => p.id === n);
      // the event log already refuses authors that are not members; trust ≥ trusted is checked when planning
      const store = new ShardStore((n) => peerOf(n)?.trust ?? 'member', now);
      const host = new ShardHost({
        self: c.self,
        config: () => c.config(),
        tensors: c.tensors,
        events: { append: (t, d) => c.events.append(t, d) },
        models: () => models().installed?.() ?? [],
        metrics: c.metrics,
        now,
        setInterval: (fn, ms) => c.clock.setInterval(fn, ms),
        log: c.log,
      });
      const orchestrator = new Orchestrator({
        self: c.self,
        config: () => c.config(),
        tensors: c.tensors,
        call: (cap, input, o) => c.bus.call(cap, input, o),
        stream: (cap, input, o) => c.bus.stream(cap, input, o),
        events: { append: (t, d) => c.events.append(t, d) },
        store,
        link: (p) => {
          const e = peerOf(p);
          return e ? { kind: e.link === 'relayed' ? 'relay' : e.link, state: e.state } : undefined;
        },
        levelOf: (n): TrustLevel | 'revoked' | null => (n === c.self ? 'anchor' : (peerOf(n)?.trust ?? null)),
        models: async (m, w) => models().orchestrator?.(m, w),
        metrics: c.metrics,
        log: c.log,
        now,
        ...(opts.healthTimeoutMs !== undefined ? { healthTimeoutMs: opts.healthTimeoutMs } : {}),
      });
      const api: DistributedLlmApi = {
        async serve(spec) {
          const m = (models().installed?.() ?? []).find((x) => x.model_id === spec.model_id);
          const coverage = m ? store.coverage(m.model_id, m.weights_sha256, m.total_layers, c.self) : [];
          return host.serve(spec, coverage);
        },
        withdraw: (id) => host.withdraw(id, 'stopped'),
        trust: async (id) => {
          await c.community.promote(id, 'trusted');
        },
        host,
        orchestrator,
        store,
      };
      const d = (name: string, over: Parameters<typeof descriptor>[2]) =>
        descriptor(name, 'distributed_llm', over);
      return {
        capabilities: () => [
          {
            descriptor: d(CAPABILITIES[0], { trust_required: 'member' }),
            handler: async (input: { model_id?: unknown; scope?: unknown }, cx) => {
              if (input?.scope !== undefined && input.scope !== 'local' && input.scope !== 'known')
                throw new HnError('bad_request', 'scope must be local or known');
              if (input?.scope === 'known') {
                if (!cx.isLocal) throw new HnError('unauthorized', 'scope known is for this node only');
                const mid = typeof input.model_id === 'string' ? input.model_id : undefined;
                return { host: c.self, at: Math.floor(now() / 1000), shards: store.list(mid) };
              }
              return host.list(input ?? {});
            },
          },
          {
            descriptor: d(CAPABILITIES[1], { trust_required: 'trusted' }),
            handler: async (input: Record<string, unknown>, cx) =>
              host.connect(input, cx.caller, cx.callerLevel),
          },
          {
            descriptor: d(CAPABILITIES[2], { trust_required: 'trusted' }),
            handler: async (input: Record<string, unknown>, cx) => host.forward(input, cx.callerLevel),
          },
          {
            descriptor: d(CAPABILITIES[3], { trust_required: 'self' }),
            handler: async (input: Record<string, unknown>) => orchestrator.plan(input),
          },
          {
            descriptor: d(CAPABILITIES[4], { trust_required: 'self', timeout_seconds: 3600 }),
            handler: async function* (
              input: RunInput,
              cx,
            ): AsyncGenerator<StreamFrame, Record<string, unknown> | undefined, void> {
              // the bus ends every stream with its own `done` (the handler's return value): the run's
              // `done` frame becomes that value, so a caller sees exactly one `done`, with the figures
              for await (const f of orchestrator.run(input, cx.signal)) {
                if (f.event === 'done') return f.data as Record<string, unknown>;
                yield f;
              }
              return undefined;
            },
          },
          {
            descriptor: d(CAPABILITIES[5], { trust_required: 'self' }),
            handler: async (input: { pipeline_id?: unknown }) => orchestrator.status(input ?? {}),
          },
        ],
        async start() {
          apis.set(c.self, api);
          const evs = [
            ...(await c.events.list({ type: 'distributed_llm.shard.advertised' })),
            ...(await c.events.list({ type: 'distributed_llm.shard.withdrawn' })),
          ].sort((a, b) => a.lamport - b.lamport);
          for (const ev of evs) store.ingest(ev);
          c.events.subscribe((ev) => {
            if (ev.event_type.startsWith('distributed_llm.shard.')) store.ingest(ev);
          });
          host.start();
          // serve what the config names (or, with serve_shards and no list, one automatic range per model)
          const cfg = c.config();
          if (cfg.serve_shards) {
            const specs: ServeSpec[] = cfg.shards.length
              ? (cfg.shards as { model_id: string; layer_range: string; tier?: string }[]).map((s) => ({
                  model_id: s.model_id,
                  layer_range: s.layer_range.split('-').map(Number) as [number, number],
                  ...(s.tier ? { tier: s.tier } : {}),
                }))
              : (models().installed?.() ?? []).map((m) => ({ model_id: m.model_id }));
            for (const s of specs)
              void api.serve(s).catch((e: unknown) =>
                c.log.warn('could not serve a configured shard', {
                  model_id: s.model_id,
                  code: e instanceof HnError ? e.code : 'internal_error',
                }),
              );
          }
        },
        async stop() {
          if (apis.get(c.self) === api) apis.delete(c.self);
          await host.stop('disabled');
        },
      };
    },
  };
}

export const distributedLlm = createDistributedLlm();

export default distributedLlm;
