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
import { ulid } from '../core/ulid.js';
import { SeededRng } from '../llm/rng.js';
import { logProb, sampleToken } from '../llm/sampling.js';
import { RemotePipeline, TextStream } from './backends.js';
import { ShardFailure, SuspectList, type FailureReason } from './failover.js';
import { continueLocally, findLocalModel } from './local-fallback.js';
import { keyOf } from './plan.js';
import {
  shardState,
  shardStatusFrame,
  statusRecord,
  type PlannedPipeline,
  type RunRecord,
  type RunStateName,
} from './run-state.js';
import {
  candidates,
  connectShards,
  cover,
  modelFor,
  type OrchestratorDeps,
  type PlanContext,
} from './planner.js';
import { parseExclude, parseRunInput, type RunInput } from './run-input.js';
import { EV, PLAN_TTL_S, type OrchestratorModel, type OrderedShard } from './types.js';

export type { OrchestratorDeps } from './planner.js';
export type { PlannedPipeline } from './run-state.js';
export type { RunInput } from './run-input.js';
export { parseRunInput } from './run-input.js';

export class Orchestrator implements PlanContext {
  private readonly plans = new Map<string, { plan: PlannedPipeline; model: OrchestratorModel }>();
  private readonly runs = new Map<string, RunRecord>();
  private active = 0;
  readonly suspects: SuspectList;

  constructor(readonly d: OrchestratorDeps) {
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

  /** B6 candidates (see planner.ts). */
  candidates(model: OrchestratorModel, exclude: ReadonlySet<string>, allowSelf: boolean) {
    return candidates(this, model, exclude, allowSelf);
  }

  /** `pipeline.plan` (self). */
  async plan(input: Record<string, unknown>): Promise<PlannedPipeline> {
    const t0 = this.now();
    if (!input || typeof input !== 'object') throw new HnError('bad_request', 'input must be an object');
    const model = await modelFor(this, input.model_id, input.weights_sha256);
    const ms = input.max_shards;
    if (ms !== undefined && (!Number.isInteger(ms) || (ms as number) < 1 || (ms as number) > 16))
      throw new HnError('bad_request', 'max_shards must be 1..16', { details: { field: 'max_shards' } });
    const exclude = parseExclude(input.exclude);
    if (input.allow_self_as_shard !== undefined && typeof input.allow_self_as_shard !== 'boolean')
      throw new HnError('bad_request', 'allow_self_as_shard must be a boolean');
    const shards = await cover(this, model, exclude, {
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

  /** `pipeline.status` (self). */
  status(input: { pipeline_id?: unknown } = {}): { pipelines: unknown[] } {
    const id = input?.pipeline_id;
    if (id !== undefined && typeof id !== 'string')
      throw new HnError('bad_request', 'pipeline_id must be a string');
    const recs = id !== undefined ? [this.runs.get(id)] : [...this.runs.values()];
    if (id !== undefined && !recs[0]) throw new HnError('not_found', 'no such pipeline');
    return { pipelines: recs.map((r) => statusRecord(r!)) };
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
    let backend: RemotePipeline | null = null;
    let rec: RunRecord | null = null;
    let finished = false;
    const onAbort = () => backend?.close('cancelled');
    signal?.addEventListener('abort', onAbort);
    try {
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
        const model = await modelFor(this, input.model_id, input.weights_sha256);
        planned = {
          plan: await this.register(model, await cover(this, model, new Set(), {}), this.now() - t0),
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
      const statusFrame = (): StreamFrame => shardStatusFrame(R);
      const setShards = (shards: OrderedShard[]) => {
        R.shards = shards.map((s) => shardState(s, this.now()));
      };
      const open = async (shards: OrderedShard[]): Promise<RemotePipeline> => {
        touch('connecting');
        const sessions = await connectShards(this, model, pid, shards, o.wire_dtype, maxSeq);
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
        else
          pipe.startHeartbeat(cfg.shard_heartbeat_seconds * 1000, (f) => {
            const st = R.shards[f.index];
            if (st) st.status = 'degraded';
          });
        return pipe;
      };

      /** Re-plan without the failed shards, preferring those still in the run; connect; retry other replicas. */
      const replan = async (current: OrderedShard[]): Promise<RemotePipeline> => {
        for (;;) {
          const prefer = new Set(current.map(keyOf).filter((k) => !exclude.has(k)));
          const shards = await cover(this, model, exclude, { prefer });
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
            shards = await cover(this, model, exclude, {});
          } catch (c) {
            const replan = c instanceof Error ? c.message : String(c);
            throw new HnError('shard_unreachable', 'no planned host accepted a session', {
              details: { failed: [...exclude], replan },
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
      let streamed = '';
      let localTokens = 0;
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
          const failedRange = backend!.shards[e.index]!.layer_range;
          backend!.close('failover');
          exclude.add(failedKey);
          const restartFrom = out.length;
          let replacement: RemotePipeline | null = null;
          let planError: HnError | null = null;
          if (failures <= o.max_failovers) {
            try {
              replacement = await replan(backend!.shards);
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
            // (7) local fallback through `llm.chat` on this node, else fail
            const local =
              o.fallback_to_local && (o.messages || o.prompt !== undefined)
                ? await findLocalModel(this.d, model.model_id, model.weights_sha256)
                : null;
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
            backend = null;
            const res = yield* continueLocally(this.d, local, {
              ...(o.messages ? { messages: o.messages } : { prompt: o.prompt! }),
              max_tokens: o.max_tokens,
              temperature: o.temperature,
              top_p: o.top_p,
              seed: o.seed,
              stop: o.stop,
              streamed,
              emitted: out,
              index: out.length,
              ...(signal ? { signal } : {}),
            });
            localTokens = res.tokens_out - out.length;
            stopReason = res.stop_reason;
            break;
          }
          // (6) re-prefill the prompt + the tokens already emitted; they are not streamed again
          pending = [...context];
          continue;
        }
        if (R.state === 'prefilling' || R.state === 'failing_over') touch('decoding');
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
        streamed += delta;
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
        if (out.length % 16 === 0) yield statusFrame();
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
      const tps = ms > 0 ? Math.round((((out.length + localTokens) * 1000) / ms) * 100) / 100 : 0;
      R.tokens_per_s = tps;
      touch('completed');
      finished = true;
      this.d.metrics?.observe('distributed_inference_tokens_per_s', {}, tps);
      await this.d.events.append(EV.completed, {
        pipeline_id: pid,
        tokens_out: out.length + localTokens,
        tokens_per_s: tps,
        first_token_ms: firstMs,
        via,
        failovers: failures,
      });
      yield {
        event: 'done',
        data: {
          tokens_out: out.length + localTokens,
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
    await this.d.events.append(EV.cancelled, { pipeline_id: r.pipeline_id }).catch((e: unknown) =>
      this.d.log?.warn('could not append pipeline.cancelled', {
        pipeline_id: r.pipeline_id,
        code: e instanceof HnError ? e.code : 'internal_error',
      }),
    );
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
