/**
 * M26 as a module (`distributed_llm`): the six capabilities of seed §2.1 over a ShardHost, an Orchestrator and a
 * ShardStore fed from the event log. Registered only while `distributed_llm.enabled` (which needs X08 on).
 *
 * Wiring seam: `createNode({ modules: [createDistributedInferenceModule({ node: () => n, … })] })` — the module
 * context has no X08 host, so the node is bound late (the handlers first need it at call time). Model access is
 * injected: `installed()` lists splits this node may serve, `orchestratorModel()` gives head/tail/tokenizer,
 * `local()` the unsplit fallback.
 */
import type { Capability, StreamFrame } from '../bus/types.js';
import { HnError } from '../core/errors.js';
import type { NodeID, TrustLevel } from '../core/types.js';
import type { EventEnvelope } from '../events/log.js';
import { descriptor, type ModuleContext, type ModuleDef } from '../modules/registry.js';
import type { Metrics } from '../observability/metrics.js';
import type { TensorHost } from '../transport/tensor/host.js';
import { Orchestrator, type RunInput } from './orchestrator.js';
import { ShardStore } from './router.js';
import { ShardHost, type ServeSpec } from './shard.js';
import {
  CAP,
  EV,
  type InstalledShardModel,
  type LocalModelFactory,
  type OrchestratorModel,
  type ShardDescriptor,
} from './types.js';

export interface NodeHandle {
  readonly tensors: TensorHost;
  session(peer: NodeID): { kind: 'direct' | 'relay' | 'memory'; state: string } | undefined;
  levelOf(n: NodeID): TrustLevel | 'revoked' | null;
  readonly metrics?: Metrics;
}

export interface DistributedInferenceOptions {
  node: () => NodeHandle | undefined;
  installed?: () => InstalledShardModel[];
  orchestratorModel?: (model_id: string, weights: string) => Promise<OrchestratorModel | undefined>;
  local?: LocalModelFactory;
  now?: () => number;
}

export interface DistributedInferenceModule extends ModuleDef {
  /** The running parts (created on first use once the node is bound). */
  readonly parts: () => { host: ShardHost; orchestrator: Orchestrator; store: ShardStore };
  /** Serve a range (or propose one from the budget and the community's coverage when `layer_range` is absent). */
  serve(spec: ServeSpec): Promise<ShardDescriptor>;
}

export function createDistributedInferenceModule(o: DistributedInferenceOptions): DistributedInferenceModule {
  let ctx: ModuleContext | null = null;
  let parts: { host: ShardHost; orchestrator: Orchestrator; store: ShardStore } | null = null;
  let unsubscribe: (() => void) | null = null;
  const now = () => o.now?.() ?? Date.now();

  const ensure = () => {
    if (parts) return parts;
    const n = o.node();
    if (!ctx || !n) throw new HnError('experimental_disabled', 'distributed_llm is not running');
    const c = ctx;
    const cfg = () => c.config().distributed_llm;
    const store = new ShardStore((x) => n.levelOf(x), now);
    const host = new ShardHost({
      self: c.self,
      config: cfg,
      tensors: n.tensors,
      events: { append: (t, d) => c.events.append(t, d) },
      models: () => o.installed?.() ?? [],
      ...(n.metrics ? { metrics: n.metrics } : {}),
      now,
    });
    host.start();
    const orchestrator = new Orchestrator({
      self: c.self,
      config: cfg,
      tensors: n.tensors,
      call: (cap, input, opts) => c.bus.call(cap, input, opts),
      events: { append: (t, d) => c.events.append(t, d) },
      store,
      link: (p) => n.session(p),
      levelOf: (x) => n.levelOf(x),
      models: async (m, w) => o.orchestratorModel?.(m, w),
      ...(o.local ? { local: o.local } : {}),
      ...(n.metrics ? { metrics: n.metrics } : {}),
      now,
    });
    parts = { host, orchestrator, store };
    void (async () => {
      const evs = [
        ...(await c.events.list({ type: EV.advertised })),
        ...(await c.events.list({ type: EV.withdrawn })),
      ].sort((a, b) => a.lamport - b.lamport);
      for (const ev of evs) store.ingest(ev);
    })();
    unsubscribe = c.events.subscribe((ev: EventEnvelope) => {
      if (ev.event_type === EV.advertised || ev.event_type === EV.withdrawn) store.ingest(ev);
    });
    return parts;
  };

  const capabilities = (): Capability[] => {
    const d = (name: string, over: Parameters<typeof descriptor>[2]) =>
      descriptor(name, 'distributed_llm', over);
    return [
      {
        descriptor: d(CAP.list, {
          trust_required: 'member',
          description: 'shards this host serves, with health',
        }),
        handler: async (input: { model_id?: unknown; scope?: unknown }, cx) => {
          const p = ensure();
          if (input?.scope !== undefined && input.scope !== 'local' && input.scope !== 'known')
            throw new HnError('bad_request', 'scope must be local or known');
          if (input?.scope === 'known') {
            if (!cx.isLocal) throw new HnError('unauthorized', 'scope known is for this node only');
            const mid = typeof input.model_id === 'string' ? input.model_id : undefined;
            return { host: ctx!.self, at: Math.floor(now() / 1000), shards: p.store.list(mid) };
          }
          return p.host.list(input ?? {});
        },
      },
      {
        descriptor: d(CAP.connect, {
          trust_required: 'trusted',
          description: 'open a forward session on a shard',
        }),
        handler: async (input: Record<string, unknown>, cx) =>
          ensure().host.connect(input, cx.caller, cx.callerLevel),
      },
      {
        descriptor: d(CAP.forward, { trust_required: 'trusted', description: 'one forward on inline data' }),
        handler: async (input: Record<string, unknown>, cx) => ensure().host.forward(input, cx.callerLevel),
      },
      {
        descriptor: d(CAP.plan, { trust_required: 'self', description: 'plan a pipeline over shard hosts' }),
        handler: async (input: Record<string, unknown>) => ensure().orchestrator.plan(input),
      },
      {
        descriptor: d(CAP.run, {
          trust_required: 'self',
          timeout_seconds: 3600,
          description: 'run a pipeline; streams token / shard_status / shard_failover / done',
        }),
        handler: async function* (input: RunInput, cx): AsyncGenerator<StreamFrame, void, void> {
          yield* ensure().orchestrator.run(input, cx.signal);
        },
      },
      {
        descriptor: d(CAP.status, { trust_required: 'self', description: 'state of this node’s pipelines' }),
        handler: async (input: { pipeline_id?: unknown }) => ensure().orchestrator.status(input ?? {}),
      },
    ];
  };

  return {
    name: 'distributed_llm',
    capabilities: (c) => {
      ctx = c;
      return capabilities();
    },
    start(c) {
      ctx = c;
    },
    async stop() {
      unsubscribe?.();
      unsubscribe = null;
      const p = parts;
      parts = null;
      await p?.host.stop('disabled');
    },
    parts: ensure,
    async serve(spec) {
      const p = ensure();
      const m = (o.installed?.() ?? []).find((x) => x.model_id === spec.model_id);
      const coverage = m ? p.store.coverage(m.model_id, m.weights_sha256, m.total_layers, ctx!.self) : [];
      return p.host.serve(spec, coverage);
    },
  };
}
