/**
 * M26 orchestrator (digest B3 pipeline.*, B5 star topology, B6 planning/failover/health).
 *
 * The asking node keeps embedding, final norm, LM head and sampling; each planned shard gets one X08 session
 * (one KV cache on its host). A forward sends [1,S,E] to shard 0, checks what comes back, sends it to shard 1 …,
 * then the tail turns the last position into logits. The loop owns the context (prompt + tokens emitted), so a
 * failover closes every session (BYE), re-plans without the failed `shard_id@host`, re-prefills the replacement
 * pipeline with the whole context and resumes: the in-flight token restarts, nothing is re-sent or lost, and the
 * sampled sequence is the one an unbroken run gives (the RNG lives here). Past `max_failovers`, the same context
 * continues on the local unsplit model when allowed. Prompts, tokens and activations never enter events or logs;
 * events carry ids and numbers only.
 */
import type { StreamFrame } from '../bus/types.js';
import { HnError } from '../core/errors.js';
import { trustAtLeast, type NodeID, type Tensor, type TrustLevel } from '../core/types.js';
import { ulid } from '../core/ulid.js';
import type { StepModel } from '../llm/generate.js';
import { SeededRng } from '../llm/rng.js';
import { checkSampling, logProb, sampleToken } from '../llm/sampling.js';
import type { ChatMessage } from '../llm/tokenizer.js';
import type { Metrics } from '../observability/metrics.js';
import type { TensorHost } from '../transport/tensor/host.js';
import type { TensorSession } from '../transport/tensor/session.js';
import { checkActivation, ShardFailure, SuspectList, type FailureReason } from './failover.js';
import { keyOf, planCover, type PlanCandidate, type ShardPath } from './plan.js';
import type { ShardStore } from './router.js';
import { checkHash, type DistributedLlmSection } from './shard.js';
import {
  CAP,
  CONNECT_REF,
  EV,
  FORWARD_PURPOSE,
  PLAN_TTL_S,
  SHARD_GRAPH_FORMAT,
  type LocalModelFactory,
  type OrchestratorModel,
  type OrderedShard,
  type ShardHealth,
} from './types.js';
import { toWire, type WireDtype } from './wire.js';

export interface OrchestratorDeps {
  self: NodeID;
  config: () => DistributedLlmSection;
  tensors: Pick<TensorHost, 'open'>;
  /** Unary bus call on a peer (`shard.list` polls). */
  call: (cap: string, input: unknown, opts: { peer: NodeID; timeout_ms?: number }) => Promise<unknown>;
  events: { append(type: string, data: Record<string, unknown>): Promise<unknown> };
  store: ShardStore;
  link: (peer: NodeID) => { kind: 'direct' | 'relay' | 'memory'; state: string } | undefined;
  levelOf: (n: NodeID) => TrustLevel | 'revoked' | null;
  /** Head/tail/tokenizer of an installed split with these weights. */
  models: (model_id: string, weights: string) => Promise<OrchestratorModel | undefined>;
  local?: LocalModelFactory;
  metrics?: Metrics;
  now?: () => number;
}

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

type RunStateName =
  | 'planned'
  | 'connecting'
  | 'prefilling'
  | 'decoding'
  | 'failing_over'
  | 'local_fallback'
  | 'completed'
  | 'failed'
  | 'cancelled';

interface ShardState {
  shard_id: string;
  host: string;
  status: 'online' | 'degraded' | 'failed';
  last_seen: number;
  latencies: number[];
  path: ShardPath;
}

interface RunRecord {
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

const p95 = (xs: number[]): number => {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor(s.length * 0.95))]! * 100) / 100;
};

interface Backend {
  readonly via: 'pipeline' | 'local';
  /** Appends ids (chunked); returns the logits of the last one. */
  feed(ids: number[], chunk: number): Promise<Float32Array>;
  close(reason: string): void;
}

/** The star pipeline over X08 sessions (one per shard). */
class RemotePipeline implements Backend {
  readonly via = 'pipeline';
  private ids: number[];
  private aborted: string | null = null;
  constructor(
    private readonly model: OrchestratorModel,
    readonly shards: OrderedShard[],
    readonly sessions: TensorSession[],
    private readonly wire: WireDtype,
    private readonly timeoutMs: number,
    private readonly onHop: (i: number, ms: number) => void,
    private readonly now: () => number,
  ) {
    this.ids = sessions.map(() => 0);
  }

  async feed(ids: number[], chunk: number): Promise<Float32Array> {
    let logits: Float32Array | undefined;
    for (let i = 0; i < ids.length; i += chunk) logits = await this.forward(ids.slice(i, i + chunk));
    return logits!;
  }

  private async forward(ids: number[]): Promise<Float32Array> {
    const h = await this.model.embed(ids);
    let t: Tensor = toWire(h, this.wire);
    let values: Float32Array = new Float32Array(0);
    for (let i = 0; i < this.sessions.length; i++) {
      const shard = this.shards[i]!;
      const s = this.sessions[i]!;
      const fail = (r: FailureReason) => new ShardFailure(i, shard.shard_id, shard.host, r);
      const id = (this.ids[i] = (this.ids[i]! % 0xffff) + 1);
      const t0 = this.now();
      const sentValues = new Float32Array(t.data.length ? toValues(t) : []);
      let got;
      try {
        await s.sendTensor(id, t);
        got = await withTimeout(s.recvTensor(), this.timeoutMs);
      } catch (e) {
        if (this.aborted) throw new HnError('pipeline_cancelled', 'the run was cancelled');
        if (e === TIMEOUT) throw fail('timeout');
        throw fail(s.closeInfo?.by === 'remote' && s.closeInfo.reason === 'nack' ? 'nack' : 'closed');
      }
      if (got.tensorId !== id) throw fail('sanity:shape');
      const chk = checkActivation({
        sent: t,
        sentValues,
        got: got.tensor,
        hidden: this.model.hidden_size,
        boundary: shard.layer_range[1] + 1,
        cutStats: this.model.cut_stats,
      });
      if (!chk.ok) throw fail(`sanity:${chk.reason}`);
      this.onHop(i, this.now() - t0);
      t = got.tensor;
      values = chk.values;
    }
    const S = t.shape[1]!;
    return this.model.logits({ dtype: 'float32', dims: [1, S, this.model.hidden_size], data: values });
  }

  close(reason: string): void {
    if (reason === 'cancelled') this.aborted = reason;
    for (const s of this.sessions) s.close(reason);
  }
}

class LocalBackend implements Backend {
  readonly via = 'local';
  constructor(private readonly m: StepModel) {}
  async feed(ids: number[], chunk: number): Promise<Float32Array> {
    let logits: Float32Array | undefined;
    for (let i = 0; i < ids.length; i += chunk) logits = await this.m.forward(ids.slice(i, i + chunk));
    return logits!;
  }
  close(): void {
    this.m.close();
  }
}

function toValues(t: Tensor): Float32Array {
  // the orchestrator's own outgoing tensor: fp32 bytes or fp16 bits → values (for the RMS ratio check)
  if (t.dtype === 'fp32') return new Float32Array(t.data.slice().buffer);
  const out = new Float32Array(t.data.length / 2);
  for (let i = 0; i < out.length; i++) {
    const h = t.data[2 * i]! | (t.data[2 * i + 1]! << 8);
    const e = (h >> 10) & 0x1f;
    const f = h & 0x3ff;
    const v = e === 0 ? 2 ** -14 * (f / 1024) : 2 ** (e - 15) * (1 + f / 1024);
    out[i] = h & 0x8000 ? -v : v;
  }
  return out;
}

const TIMEOUT = Symbol('timeout');
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    p,
    new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(TIMEOUT), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Incremental detokenisation with UTF-8 hold-back and stop strings (same rule as engine/llm/generate). */
class TextStream {
  private emitted = 0;
  constructor(
    private readonly decode: (ids: number[]) => string,
    private readonly stops: string[],
  ) {}
  push(ids: number[]): { text: string; hit: boolean } {
    const full = this.decode(ids);
    let safe = full.endsWith('\uFFFD') ? full.length - 1 : full.length;
    let hit = -1;
    for (const s of this.stops) {
      const at = full.indexOf(s, Math.max(0, this.emitted - s.length + 1));
      if (at >= 0 && (hit < 0 || at < hit)) hit = at;
    }
    if (hit >= 0) safe = hit;
    else
      for (const s of this.stops)
        for (let k = Math.min(s.length - 1, full.length); k > 0; k--)
          if (full.endsWith(s.slice(0, k))) {
            safe = Math.min(safe, full.length - k);
            break;
          }
    const text = safe > this.emitted ? full.slice(this.emitted, safe) : '';
    this.emitted = Math.max(this.emitted, safe);
    return { text, hit: hit >= 0 };
  }
}

export interface RunInput {
  pipeline_id?: string;
  model_id?: string;
  weights_sha256?: string;
  messages?: ChatMessage[];
  prompt?: string;
  prompt_tokens?: number[];
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  seed?: number;
  stop?: string[];
  fallback_to_local?: boolean;
  max_failovers?: number;
  wire_dtype?: WireDtype;
  prefill_chunk_tokens?: number;
}

export class Orchestrator {
  private readonly plans = new Map<string, { plan: PlannedPipeline; model: OrchestratorModel }>();
  private readonly runs = new Map<string, RunRecord>();
  private active = 0;
  readonly suspects: SuspectList;

  constructor(private readonly d: OrchestratorDeps) {
    this.suspects = new SuspectList(() => this.now());
  }

  private now(): number {
    return this.d.now?.() ?? Date.now();
  }

  private metric(name: string, labels: Record<string, string> = {}, by = 1): void {
    this.d.metrics?.inc(`distributed_inference_${name}`, labels, by);
  }

  /** Active runs (for tests and the UI). */
  get activeRuns(): number {
    return this.active;
  }

  // ---- planning ----------------------------------------------------------------------------------------------

  /** B6 candidates: live ads of this export, fresh health (polled in parallel, 1 s), linked trusted hosts. */
  async candidates(
    model: OrchestratorModel,
    exclude: ReadonlySet<string>,
    allowSelf: boolean,
  ): Promise<PlanCandidate[]> {
    const cfg = this.d.config();
    const hbMs = cfg.shard_heartbeat_seconds * 1000;
    const ads = this.d.store
      .list(model.model_id)
      .filter(
        (a) =>
          a.weights_sha256 === model.weights_sha256 &&
          a.graph_format === SHARD_GRAPH_FORMAT &&
          (a.tier ?? model.tier) === model.tier &&
          a.total_layers === model.total_layers &&
          a.hidden_size === model.hidden_size &&
          !exclude.has(keyOf(a)) &&
          (allowSelf || a.host !== this.d.self) &&
          !this.suspects.has(a.host),
      )
      .filter((a) => {
        const lvl = this.d.levelOf(a.host as NodeID);
        const link = this.d.link(a.host as NodeID);
        return (
          (a.host === this.d.self || (link && link.state === 'open')) &&
          lvl !== null &&
          lvl !== 'revoked' &&
          trustAtLeast(lvl, 'trusted')
        );
      });
    // refresh stale health in parallel (1 s each); a host that does not answer is excluded
    const hosts = [...new Set(ads.filter((a) => !this.d.store.healthOf(keyOf(a), hbMs)).map((a) => a.host))];
    await Promise.all(
      hosts.map(async (host) => {
        try {
          const out = (await this.d.call(
            CAP.list,
            { model_id: model.model_id },
            { peer: host as NodeID, timeout_ms: 1000 },
          )) as { shards?: ShardHealth[] };
          const present = new Set<string>();
          for (const s of out.shards ?? []) {
            if (typeof s?.shard_id !== 'string') continue;
            present.add(s.shard_id);
            this.d.store.setHealth({ ...s, host });
          }
          this.d.store.forgetMissing(host, present);
        } catch {
          /* no answer → no fresh health → excluded below */
        }
      }),
    );
    const out: PlanCandidate[] = [];
    for (const a of this.d.store.list(model.model_id)) {
      if (!ads.some((x) => keyOf(x) === keyOf(a))) continue;
      const h = this.d.store.healthOf(keyOf(a), hbMs + 1000);
      if (!h || !h.online || h.active_sessions >= a.max_concurrent_streams) continue;
      const link = this.d.link(a.host as NodeID);
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

  private async cover(
    model: OrchestratorModel,
    exclude: ReadonlySet<string>,
    opts: { max_shards?: number; allow_self?: boolean; prefer?: ReadonlySet<string> },
  ): Promise<OrderedShard[]> {
    const cfg = this.d.config();
    const cands = await this.candidates(model, exclude, opts.allow_self ?? cfg.allow_self_as_shard);
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

  /** `pipeline.plan` (self). */
  async plan(input: Record<string, unknown>): Promise<PlannedPipeline> {
    const t0 = this.now();
    if (!input || typeof input !== 'object') throw new HnError('bad_request', 'input must be an object');
    const model = await this.modelFor(input.model_id, input.weights_sha256);
    const ms = input.max_shards;
    if (ms !== undefined && (!Number.isInteger(ms) || (ms as number) < 1 || (ms as number) > 16))
      throw new HnError('bad_request', 'max_shards must be 1..16', { details: { field: 'max_shards' } });
    const exclude = parseExclude(input.exclude);
    if (input.allow_self_as_shard !== undefined && typeof input.allow_self_as_shard !== 'boolean')
      throw new HnError('bad_request', 'allow_self_as_shard must be a boolean');
    const shards = await this.cover(model, exclude, {
      ...(ms !== undefined ? { max_shards: ms as number } : {}),
      ...(input.allow_self_as_shard !== undefined
        ? { allow_self: input.allow_self_as_shard as boolean }
        : {}),
    });
    return this.register(model, shards, this.now() - t0);
  }

  private async register(model: OrchestratorModel, shards: OrderedShard[], constructMs: number) {
    const floor = this.d.config().min_tokens_per_s;
    const hopMs = shards.reduce((n, s) => n + (s.p95_latency_ms || 0), 0);
    const est = hopMs > 0 ? Math.round((1000 / hopMs) * 100) / 100 : undefined;
    const plan: PlannedPipeline = {
      pipeline_id: ulid(),
      model_id: model.model_id,
      weights_sha256: model.weights_sha256,
      total_layers: model.total_layers,
      ordered_shards: shards,
      ...(est !== undefined ? { estimated_tokens_per_s: est } : {}),
      below_floor: est !== undefined && est < floor,
      construct_ms: constructMs,
      expires_at: Math.floor(this.now() / 1000) + PLAN_TTL_S,
    };
    this.plans.set(plan.pipeline_id, { plan, model });
    this.d.metrics?.observe('distributed_inference_construct_ms', {}, constructMs);
    await this.d.events.append(EV.planned, {
      pipeline_id: plan.pipeline_id,
      model_id: plan.model_id,
      weights_sha256: plan.weights_sha256,
      shards: shards.map(keyOf),
      construct_ms: constructMs,
    });
    return plan;
  }

  private async modelFor(model_id: unknown, weights: unknown): Promise<OrchestratorModel> {
    if (typeof model_id !== 'string' || model_id.length < 1 || model_id.length > 128)
      throw new HnError('bad_request', 'model_id must be 1..128 characters', {
        details: { field: 'model_id' },
      });
    const w = checkHash(weights, 'weights_sha256');
    const m = await this.d.models(model_id, w);
    if (!m)
      throw new HnError('bad_request', 'no local head/tail of this model with these weights', {
        details: { field: 'model_id' },
      });
    return m;
  }

  // ---- running -------------------------------------------------------------------------------------------------

  /** `pipeline.status` (self). */
  status(input: { pipeline_id?: unknown } = {}): { pipelines: unknown[] } {
    const id = input?.pipeline_id;
    if (id !== undefined && typeof id !== 'string')
      throw new HnError('bad_request', 'pipeline_id must be a string');
    const recs = id !== undefined ? [this.runs.get(id)] : [...this.runs.values()];
    if (id !== undefined && !recs[0]) throw new HnError('not_found', 'no such pipeline');
    return {
      pipelines: recs.map((r) => ({
        pipeline_id: r!.pipeline_id,
        state: r!.state,
        model_id: r!.model_id,
        shards: Object.fromEntries(
          r!.shards.map((s) => [
            keyOf(s),
            { status: s.status, last_seen: s.last_seen, p95_latency_ms: p95(s.latencies), path: s.path },
          ]),
        ),
        tokens_out: r!.tokens_out,
        tokens_per_s: r!.tokens_per_s,
        below_floor: r!.below_floor,
        failovers: r!.failovers,
        started_at: r!.started_at,
        updated_at: r!.updated_at,
      })),
    };
  }

  private async connect(
    model: OrchestratorModel,
    pipelineId: string,
    shards: OrderedShard[],
    wire: WireDtype,
    maxSeq: number,
  ): Promise<TensorSession[]> {
    const timeout = this.d.config().failover_timeout_seconds * 1000;
    const settled = await Promise.allSettled(
      shards.map((s) =>
        this.d.tensors.open(s.host as NodeID, {
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
      for (const r of settled) if (r.status === 'fulfilled') r.value.close('cancelled');
      throw new ShardFailure(bad, shards[bad]!.shard_id, shards[bad]!.host, 'connect_failed');
    }
    return settled.map((r) => (r as PromiseFulfilledResult<TensorSession>).value);
  }

  /** `pipeline.run` (self; streaming). Closing the iterator or aborting `signal` cancels the run. */
  async *run(input: RunInput, signal?: AbortSignal): AsyncGenerator<StreamFrame, void, void> {
    const cfg = this.d.config();
    const o = parseRunInput(input, cfg);
    if (this.active >= cfg.max_concurrent_pipelines)
      throw new HnError(
        'capacity_exceeded',
        `at most ${cfg.max_concurrent_pipelines} pipelines run at once`,
        {
          retry_after_ms: 1000,
        },
      );
    this.active++;
    const t0 = this.now();
    let backend: Backend | null = null;
    let rec: RunRecord | null = null;
    let finished = false;
    const onAbort = () => backend?.close('cancelled');
    signal?.addEventListener('abort', onAbort);
    try {
      // plan (or take the given plan)
      let planned: { plan: PlannedPipeline; model: OrchestratorModel };
      if (o.pipeline_id) {
        const p = this.plans.get(o.pipeline_id);
        if (!p || p.plan.expires_at * 1000 <= this.now()) {
          this.plans.delete(o.pipeline_id);
          throw new HnError('not_found', 'no such plan (or it expired)');
        }
        this.plans.delete(o.pipeline_id);
        planned = p;
      } else {
        const model = await this.modelFor(input.model_id, input.weights_sha256);
        planned = {
          plan: await this.register(model, await this.cover(model, new Set(), {}), this.now() - t0),
          model,
        };
        this.plans.delete(planned.plan.pipeline_id);
      }
      const { plan, model } = planned;
      const pid = plan.pipeline_id;
      const promptIds =
        o.prompt_tokens ?? model.encode(o.messages ? model.formatChat(o.messages) : (o.prompt as string));
      if (promptIds.length === 0) throw new HnError('bad_request', 'empty prompt');
      for (const id of promptIds)
        if (!Number.isInteger(id) || id < 0 || id >= model.vocab_size)
          throw new HnError('bad_request', 'prompt_tokens hold an id outside the vocabulary');
      if (promptIds.length + 1 > model.max_seq_len)
        throw new HnError('bad_request', 'the prompt leaves no room in the context');
      const maxSeq = Math.min(model.max_seq_len, promptIds.length + o.max_tokens);
      rec = {
        pipeline_id: pid,
        state: 'connecting',
        model_id: model.model_id,
        shards: [],
        tokens_out: 0,
        tokens_per_s: 0,
        recent: [],
        below_floor: false,
        failovers: 0,
        started_at: Math.floor(t0 / 1000),
        updated_at: Math.floor(t0 / 1000),
      };
      this.runs.set(pid, rec);
      this.trimRuns();
      await this.d.events.append(EV.started, { pipeline_id: pid });
      const R = rec;
      const touch = (state?: RunStateName) => {
        if (state) R.state = state;
        R.updated_at = Math.floor(this.now() / 1000);
      };
      const exclude = new Set<string>();
      let failures = 0;
      let lastReason: FailureReason | null = null;
      const statusFrame = (): StreamFrame => ({
        event: 'shard_status',
        data: {
          shards: R.shards.map((s) => ({
            shard_id: s.shard_id,
            host: s.host,
            status: s.status,
            latency_ms: p95(s.latencies),
            path: s.path,
          })),
          below_floor: R.below_floor,
        },
      });
      const setShards = (shards: OrderedShard[]) => {
        R.shards = shards.map((s) => ({
          shard_id: s.shard_id,
          host: s.host,
          status: 'online',
          last_seen: Math.floor(this.now() / 1000),
          latencies: [],
          path: s.path,
        }));
      };
      const open = async (shards: OrderedShard[]): Promise<RemotePipeline> => {
        touch('connecting');
        const sessions = await this.connect(model, pid, shards, o.wire_dtype, maxSeq);
        setShards(shards);
        const pipe = new RemotePipeline(
          model,
          shards,
          sessions,
          o.wire_dtype,
          cfg.failover_timeout_seconds * 1000,
          (i, ms) => {
            const s = R.shards[i];
            if (!s) return;
            s.latencies.push(ms);
            if (s.latencies.length > 64) s.latencies.shift();
            s.last_seen = Math.floor(this.now() / 1000);
            this.d.metrics?.observe('distributed_inference_hop_ms', { shard_id: s.shard_id }, ms);
          },
          () => this.now(),
        );
        if (signal?.aborted) pipe.close('cancelled');
        return pipe;
      };

      /** Re-plan without the failed shards, preferring those still in the run; connect; retry other replicas. */
      const replan = async (current: OrderedShard[]): Promise<RemotePipeline> => {
        for (;;) {
          const prefer = new Set(current.map(keyOf).filter((k) => !exclude.has(k)));
          const shards = await this.cover(model, exclude, { prefer });
          try {
            return await open(shards);
          } catch (e) {
            if (!(e instanceof ShardFailure)) throw e;
            exclude.add(`${e.shard_id}@${e.host}`);
          }
        }
      };

      let shards = plan.ordered_shards;
      // first connection: a shard that refuses is a failure like any other (re-plan around it)
      for (;;) {
        try {
          backend = await open(shards);
          break;
        } catch (e) {
          if (!(e instanceof ShardFailure)) throw e;
          exclude.add(`${e.shard_id}@${e.host}`);
          try {
            shards = await this.cover(model, exclude, {});
          } catch {
            throw new HnError('shard_unreachable', 'no planned host accepted a session', {
              details: { failed: [...exclude] },
            });
          }
        }
      }
      yield statusFrame();

      const context = [...promptIds];
      let pending = [...promptIds];
      const rng = new SeededRng(o.seed);
      const eos = new Set(model.eosIds);
      const text = new TextStream(model.decode, o.stop);
      const out: number[] = [];
      let firstMs = 0;
      let stopReason = 'max_tokens';
      let via: 'pipeline' | 'local' = 'pipeline';
      touch('prefilling');
      for (let index = 0; index < o.max_tokens;) {
        if (signal?.aborted) throw new HnError('pipeline_cancelled', 'the run was cancelled');
        let logits: Float32Array;
        try {
          logits = await backend!.feed(pending, o.prefill_chunk_tokens);
        } catch (e) {
          if (signal?.aborted) throw new HnError('pipeline_cancelled', 'the run was cancelled');
          if (!(e instanceof ShardFailure)) throw e;
          // (1)–(3): detected; degraded; BYE every session of the run (all KV dropped)
          const failedKey = `${e.shard_id}@${e.host}`;
          lastReason = e.reason;
          failures++;
          R.failovers = failures;
          touch('failing_over');
          this.metric('failovers_total');
          if (e.reason.startsWith('sanity:')) {
            this.metric('shard_corruption_detected_total');
            this.suspects.mark(e.host);
          }
          const st = R.shards[e.index];
          if (st) st.status = 'failed';
          yield statusFrame();
          await this.d.events.append(EV.shardFailed, {
            pipeline_id: pid,
            shard_id: e.shard_id,
            host: e.host,
            reason: e.reason,
          });
          const failedRange = (backend as RemotePipeline).shards[e.index]!.layer_range;
          backend!.close('failover');
          exclude.add(failedKey);
          const restartFrom = out.length;
          let replacement: RemotePipeline | null = null;
          let planError: HnError | null = null;
          if (failures <= o.max_failovers) {
            try {
              replacement = await replan((backend as RemotePipeline).shards);
            } catch (err) {
              if (!(err instanceof HnError)) throw err;
              planError = err;
            }
          }
          if (replacement) {
            backend = replacement;
            const rep = replacement.shards.filter(
              (s) => s.layer_range[0] <= failedRange[1] && s.layer_range[1] >= failedRange[0],
            );
            yield {
              event: 'shard_failover',
              data: {
                failed_shard: failedKey,
                replacement: rep.map(keyOf).join(','),
                reason: e.reason,
                restart_from: restartFrom,
              },
            };
            await this.d.events.append(EV.failover, {
              pipeline_id: pid,
              from: failedKey,
              to: rep.map(keyOf).join(','),
              restart_from: restartFrom,
            });
            yield statusFrame();
          } else {
            // (7) local fallback on the same context, else fail
            const allowLocal = o.fallback_to_local;
            const local =
              allowLocal && this.d.local
                ? await this.d.local(model.model_id, model.weights_sha256)
                : undefined;
            if (!local) {
              touch('failed');
              // the run had started: whatever stopped the re-plan, the run itself failed (B10.2, B10.8)
              throw new HnError(
                'pipeline_failed',
                `the pipeline failed (${lastReason}) and no fallback is available`,
                {
                  details: {
                    reason: lastReason,
                    failovers: failures,
                    ...(planError ? { replan: planError.code, ...(planError.details ?? {}) } : {}),
                  },
                },
              );
            }
            backend = new LocalBackend(local);
            via = 'local';
            this.metric('fallbacks_total');
            touch('local_fallback');
            yield {
              event: 'pipeline_aborted',
              data: { reason: planError ? planError.code : 'failovers_exhausted', fallback: 'local' },
            };
            await this.d.events.append(EV.failover, {
              pipeline_id: pid,
              from: failedKey,
              to: 'local',
              restart_from: restartFrom,
            });
          }
          // (6) re-prefill the prompt + the tokens already emitted; they are not streamed again
          pending = [...context];
          continue;
        }
        if (R.state === 'prefilling' || R.state === 'failing_over')
          touch(via === 'local' ? 'local_fallback' : 'decoding');
        const id = sampleToken(logits, { temperature: o.temperature, top_p: o.top_p }, rng);
        if (index === 0) {
          firstMs = this.now() - t0;
          this.d.metrics?.observe('distributed_inference_first_token_ms', {}, firstMs);
        }
        if (eos.has(id)) {
          stopReason = 'eos';
          break;
        }
        out.push(id);
        context.push(id);
        const { text: delta, hit } = text.push(out);
        R.tokens_out = out.length;
        const now = this.now();
        R.recent.push(now);
        if (R.recent.length > 10) R.recent.shift();
        if (R.recent.length >= 2) {
          const span = (R.recent[R.recent.length - 1]! - R.recent[0]!) / 1000;
          R.tokens_per_s = span > 0 ? Math.round(((R.recent.length - 1) / span) * 100) / 100 : 0;
          R.below_floor = R.tokens_per_s < cfg.min_tokens_per_s;
        }
        touch();
        yield { event: 'token', data: { text: delta, token_id: id, index, logprob: logProb(logits, id) } };
        if (out.length % 16 === 0 && via === 'pipeline') yield statusFrame();
        if (hit) {
          stopReason = 'stop';
          break;
        }
        index++;
        if (index >= o.max_tokens) break;
        if (context.length + 1 > model.max_seq_len) {
          stopReason = 'context';
          break;
        }
        pending = [id];
      }
      const ms = this.now() - t0;
      const tps = ms > 0 ? Math.round(((out.length * 1000) / ms) * 100) / 100 : 0;
      R.tokens_per_s = tps;
      touch('completed');
      finished = true;
      this.d.metrics?.observe('distributed_inference_tokens_per_s', {}, tps);
      await this.d.events.append(EV.completed, {
        pipeline_id: pid,
        tokens_out: out.length,
        tokens_per_s: tps,
        first_token_ms: firstMs,
        via,
        failovers: failures,
      });
      yield {
        event: 'done',
        data: {
          tokens_out: out.length,
          stop_reason: stopReason,
          ms,
          first_token_ms: firstMs,
          tokens_per_s: tps,
          via,
          failovers: failures,
        },
      };
    } catch (e) {
      finished = true;
      if (e instanceof HnError && e.code === 'pipeline_cancelled' && rec) await this.cancelled(rec);
      else if (rec && rec.state !== 'failed') rec.state = 'failed';
      throw e;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      backend?.close(finished && rec?.state === 'completed' ? 'done' : 'cancelled');
      this.active--;
      // the consumer closed the stream mid-run
      if (!finished && rec) void this.cancelled(rec);
    }
  }

  private async cancelled(r: RunRecord): Promise<void> {
    if (r.state === 'cancelled') return;
    r.state = 'cancelled';
    r.updated_at = Math.floor(this.now() / 1000);
    await this.d.events.append(EV.cancelled, { pipeline_id: r.pipeline_id }).catch(() => undefined);
  }

  private trimRuns(): void {
    if (this.runs.size <= 32) return;
    for (const [id, r] of this.runs)
      if (r.state === 'completed' || r.state === 'failed' || r.state === 'cancelled') {
        this.runs.delete(id);
        if (this.runs.size <= 32) return;
      }
  }
}

function parseExclude(x: unknown): Set<string> {
  if (x === undefined) return new Set();
  if (
    !Array.isArray(x) ||
    x.length > 64 ||
    !x.every((s) => typeof s === 'string' && s.length <= 300 && s.includes('@'))
  )
    throw new HnError('bad_request', 'exclude must be a list of shard_id@host', {
      details: { field: 'exclude' },
    });
  return new Set(x as string[]);
}

interface ParsedRun {
  pipeline_id?: string;
  messages?: ChatMessage[];
  prompt?: string;
  prompt_tokens?: number[];
  max_tokens: number;
  temperature: number;
  top_p: number;
  seed: number;
  stop: string[];
  fallback_to_local: boolean;
  max_failovers: number;
  wire_dtype: WireDtype;
  prefill_chunk_tokens: number;
}

function bad(msg: string, field: string): never {
  throw new HnError('bad_request', msg, { details: { field } });
}

export function parseRunInput(i: RunInput, cfg: DistributedLlmSection): ParsedRun {
  if (!i || typeof i !== 'object') bad('input must be an object', 'input');
  const given = [i.messages, i.prompt, i.prompt_tokens].filter((x) => x !== undefined).length;
  if (given !== 1) bad('give exactly one of messages, prompt, prompt_tokens', 'prompt');
  if (i.pipeline_id !== undefined && typeof i.pipeline_id !== 'string')
    bad('pipeline_id must be a string', 'pipeline_id');
  if (i.pipeline_id === undefined && (i.model_id === undefined || i.weights_sha256 === undefined))
    bad('give pipeline_id, or model_id and weights_sha256', 'pipeline_id');
  if (i.prompt !== undefined && (typeof i.prompt !== 'string' || i.prompt.length > 65536))
    bad('prompt must be a string', 'prompt');
  if (
    i.messages !== undefined &&
    (!Array.isArray(i.messages) ||
      i.messages.length === 0 ||
      !i.messages.every((m) => m && typeof m.content === 'string' && typeof m.role === 'string'))
  )
    bad('messages must be [{role, content}]', 'messages');
  if (
    i.prompt_tokens !== undefined &&
    (!Array.isArray(i.prompt_tokens) || i.prompt_tokens.length === 0 || i.prompt_tokens.length > 65536)
  )
    bad('prompt_tokens must be a non-empty list of ids', 'prompt_tokens');
  const max_tokens = i.max_tokens ?? 256;
  if (!Number.isInteger(max_tokens) || max_tokens < 1 || max_tokens > 4096)
    bad('max_tokens must be 1..4096', 'max_tokens');
  const temperature = i.temperature ?? 0;
  const top_p = i.top_p ?? 1;
  if (typeof temperature !== 'number' || typeof top_p !== 'number')
    bad('temperature and top_p are numbers', 'temperature');
  checkSampling({ temperature, top_p });
  const seed = i.seed ?? 0;
  if (!Number.isSafeInteger(seed)) bad('seed must be an integer', 'seed');
  const stop = i.stop ?? [];
  if (!Array.isArray(stop) || stop.length > 4 || !stop.every((s) => typeof s === 'string' && s.length <= 64))
    bad('stop: at most 4 strings', 'stop');
  const fallback = i.fallback_to_local ?? cfg.fallback_to_local;
  if (typeof fallback !== 'boolean') bad('fallback_to_local must be a boolean', 'fallback_to_local');
  const mf = i.max_failovers ?? Math.min(2, cfg.max_failovers_per_run);
  if (!Number.isInteger(mf) || mf < 0 || mf > 2) bad('max_failovers must be 0..2', 'max_failovers');
  const wire = i.wire_dtype ?? (cfg.default_dtype === 'fp32' ? 'fp32' : 'fp16');
  if (wire !== 'fp16' && wire !== 'fp32') bad('wire_dtype must be fp16 or fp32', 'wire_dtype');
  const chunk = i.prefill_chunk_tokens ?? cfg.prefill_chunk_tokens;
  if (!Number.isInteger(chunk) || chunk < 16 || chunk > 512)
    bad('prefill_chunk_tokens must be 16..512', 'prefill_chunk_tokens');
  return {
    ...(i.pipeline_id !== undefined ? { pipeline_id: i.pipeline_id } : {}),
    ...(i.messages !== undefined ? { messages: i.messages } : {}),
    ...(i.prompt !== undefined ? { prompt: i.prompt } : {}),
    ...(i.prompt_tokens !== undefined ? { prompt_tokens: i.prompt_tokens } : {}),
    max_tokens,
    temperature,
    top_p,
    seed,
    stop: stop.filter((s) => s.length > 0),
    fallback_to_local: fallback,
    max_failovers: mf,
    wire_dtype: wire,
    prefill_chunk_tokens: chunk,
  };
}
