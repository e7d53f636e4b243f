/**
 * M27 router service (digest §3, §5): register / list / unregister over the event-sourced registry,
 * `route.query` (rate limit, candidate filter, hashed embedder, rule-based or learned scorer, top-K
 * with the tie rules, auto_route), `feedback.record` with the poisoning caps and the training trigger.
 * The request summary is embedded in memory and never stored, logged or put in an event.
 */
import { HnError } from '../core/errors.js';
import { sha256Hex } from '../core/hash.js';
import type { NodeID } from '../core/types.js';
import { ulidGenerator } from '../core/ulid.js';
import type { EventEnvelope } from '../events/log.js';
import { cosine, HashedEmbedder, type Embedder } from './embedder.js';
import {
  availableAt,
  buildDescriptor,
  ExpertRegistry,
  nextAvailableAt,
  normalizeTopics,
  type ExpertDescriptor,
} from './expert_registry.js';
import { FeedbackSet, labelOf, parseFeedbackInput, wellFormedFeedback, type Feedback } from './feedback.js';
import {
  invokeOf,
  rationale,
  type HumanFilter,
  type MoeDeps,
  type RouteCandidate,
  type RouteRecord,
} from './route_types.js';

import {
  EXPECTED_LATENCY_MINUTES,
  features,
  KINDS,
  learnedScore,
  recency,
  reliability,
  ruleScore,
  tagScore,
  trainLogistic,
  type ExpertKind,
  type LearnedModel,
  type ScoreParts,
} from './scorer.js';

export * from './route_types.js';
export { wellFormedFeedback } from './feedback.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const isObj = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);
const bad = (m: string, field?: string) => new HnError('bad_request', m, field ? { field } : {});

export class MoeService {
  readonly registry: ExpertRegistry;
  readonly feedback: FeedbackSet;
  embedder: Embedder;
  model: LearnedModel | null = null;
  humans: HumanFilter = { blocked: () => null, recentLoad: () => 0 };
  private readonly topicVec = new Map<string, Float64Array>();
  private readonly calls = new Map<NodeID, number[]>();
  private readonly routeLoad = new Map<string, number[]>();
  private readonly ulid: ReturnType<typeof ulidGenerator>;

  constructor(readonly d: MoeDeps) {
    this.registry = new ExpertRegistry(d.levelOf, d.verify);
    this.feedback = new FeedbackSet(d.levelOf);
    this.embedder = d.embedder ?? new HashedEmbedder();
    this.ulid = ulidGenerator(() => d.now());
  }

  /** Switch the embedder (e.g. to an installed ONNX encoder, or back to the hashed one). */
  useEmbedder(e: Embedder): void {
    this.embedder = e;
    this.topicVec.clear();
  }

  newId(): string {
    return this.ulid();
  }

  async start(events: EventEnvelope[]): Promise<void> {
    for (const ev of events) this.ingest(ev);
    for (const f of await this.d.db.getAll<Feedback>('feedback')) this.feedback.add(f);
    this.model = (await this.d.db.get<{ key: string; model: LearnedModel }>('state', 'model'))?.model ?? null;
    await this.maybeTrain();
  }

  /** Apply a registry or feedback event from the log (local or a peer's). */
  ingest(ev: EventEnvelope): void {
    if (ev.event_type === 'moe.expert.registered' || ev.event_type === 'moe.expert.unregistered')
      this.registry.apply(ev);
    else if (ev.event_type === 'moe.feedback.recorded' && ev.author !== this.d.self) {
      const f = ev.data as unknown as Feedback;
      if (isObj(f) && f.recorded_by === ev.author && wellFormedFeedback(f)) {
        if (this.feedback.add(f))
          void this.maybeTrain().catch((e: unknown) =>
            this.d.warn?.('moe: retrain failed', { code: e instanceof HnError ? e.code : 'internal_error' }),
          );
      }
    }
  }

  // ---------------------------------------------------------------- registry capabilities

  async register(
    input: unknown,
    caller: NodeID,
  ): Promise<{ expert_id: string; registered_at: number; expires_at: number | null }> {
    const now = this.d.now();
    const d = buildDescriptor(input, {
      self: this.d.self,
      callerIsAnchor: this.d.levelOf(caller) === 'anchor',
      now,
      verify: this.d.verify,
    });
    // latest wins by registered_at: a re-registration within the same millisecond still supersedes
    const prev = this.registry.entries.get(d.expert_id);
    if (prev && prev.at >= d.registered_at) d.registered_at = prev.at + 1;
    const ev = await this.d.append('moe.expert.registered', d as unknown as Record<string, unknown>);
    this.registry.apply(ev);
    return { expert_id: d.expert_id, registered_at: d.registered_at, expires_at: d.expires_at };
  }

  /** Re-publish our own descriptor with a pause (decline penalty). */
  async pause(expertId: string, reason: string): Promise<void> {
    const cur = this.registry.get(expertId, this.d.now());
    if (!cur || cur.host !== this.d.self) return;
    const d: ExpertDescriptor = {
      ...cur,
      paused: true,
      pause_reason: reason,
      registered_at: Math.max(this.d.now(), cur.registered_at + 1),
    };
    this.registry.apply(
      await this.d.append('moe.expert.registered', d as unknown as Record<string, unknown>),
    );
  }

  list(input: unknown): { experts: Record<string, unknown>[]; next_cursor: string | null } {
    const i = input ?? {};
    if (!isObj(i)) throw bad('request must be an object');
    if (i.kind !== undefined && !KINDS.includes(i.kind as ExpertKind)) throw bad('kind', 'kind');
    const topic = i.topic === undefined ? null : normalizeTopics([i.topic], 'topic')[0]!;
    for (const k of ['available_now', 'include_expired'])
      if (i[k] !== undefined && typeof i[k] !== 'boolean') throw bad(k, k);
    const limit = i.limit ?? 50;
    if (!Number.isInteger(limit) || (limit as number) < 1 || (limit as number) > 200)
      throw bad('limit 1..200', 'limit');
    if (i.cursor !== undefined && (typeof i.cursor !== 'string' || i.cursor.length > 600))
      throw bad('cursor', 'cursor');
    const now = this.d.now();
    const out: Record<string, unknown>[] = [];
    let next: string | null = null;
    for (const d of this.registry.all(now, i.include_expired === true)) {
      if (i.cursor && d.expert_id <= (i.cursor as string)) continue;
      if (i.kind && d.kind !== i.kind) continue;
      if (topic && !d.topics.includes(topic)) continue;
      const avail = availableAt(d.availability, now);
      if (i.available_now === true && !avail) continue;
      if (out.length >= (limit as number)) {
        next = out[out.length - 1]!.expert_id as string;
        break;
      }
      const na = avail ? null : nextAvailableAt(d.availability, now);
      out.push({
        expert_id: d.expert_id,
        kind: d.kind,
        topics: d.topics,
        name: d.name,
        host: d.host,
        availability: d.availability,
        available_now: avail,
        ...(na !== null ? { next_available_at: na } : {}),
        paused: d.paused,
        expires_at: d.expires_at,
      });
    }
    return { experts: out, next_cursor: next };
  }

  async unregister(
    input: unknown,
    caller: NodeID,
    onRemoved: (expertId: string, reason: string) => Promise<void>,
  ) {
    if (!isObj(input) || typeof input.expert_id !== 'string' || input.expert_id.length > 700)
      throw bad('expert_id', 'expert_id');
    if (
      input.reason !== undefined &&
      !['withdrawn', 'expired', 'consent_revoked', 'by_anchor'].includes(input.reason as string)
    )
      throw bad('reason', 'reason');
    const now = this.d.now();
    const cur = this.registry.get(input.expert_id, now);
    if (!cur) throw new HnError('expert_unknown', undefined, { details: { expert_id: input.expert_id } });
    const anchor = this.d.levelOf(caller) === 'anchor';
    const own = cur.host === this.d.self && caller === this.d.self;
    if (!own && !anchor)
      throw new HnError('unauthorized', 'only the owner or an anchor unregisters an expert');
    const reason =
      (input.reason as string | undefined) ??
      (own ? (cur.kind === 'human' ? 'consent_revoked' : 'withdrawn') : 'by_anchor');
    const at = Math.max(now, cur.registered_at + 1);
    this.registry.apply(
      await this.d.append('moe.expert.unregistered', {
        expert_id: cur.expert_id,
        reason,
        unregistered_at: at,
      }),
    );
    await onRemoved(cur.expert_id, reason);
    return { expert_id: cur.expert_id, unregistered_at: at };
  }

  // ---------------------------------------------------------------- routing

  private rateCheck(caller: NodeID, now: number) {
    const limit = this.d.settings().requests_per_user_per_hour;
    const ts = (this.calls.get(caller) ?? []).filter((t) => t > now - HOUR);
    if (ts.length >= limit) {
      this.calls.set(caller, ts);
      throw new HnError('rate_limited', undefined, { retry_after_ms: Math.max(1, ts[0]! + HOUR - now) });
    }
    ts.push(now);
    this.calls.set(caller, ts);
  }

  scorerInUse(): 'rule_based' | 'learned' {
    const s = this.d.settings().scorer;
    if (s === 'rule_based' || !this.model) return 'rule_based';
    return 'learned';
  }

  private async topicVectors(topics: readonly string[]): Promise<Float64Array[]> {
    const missing = topics.filter((t) => !this.topicVec.has(t));
    if (missing.length) {
      const vs = await this.embedder.embed(missing.map((t) => t.replace(/-/g, ' ')));
      missing.forEach((t, i) => this.topicVec.set(t, vs[i]!));
    }
    return topics.map((t) => this.topicVec.get(t)!);
  }

  parts(d: ExpertDescriptor, tags: readonly string[], sim: number, now: number): ScoreParts {
    const st = this.feedback.stats(d.expert_id);
    const last = Math.max(st.last, d.registered_at);
    return {
      tag: tagScore(tags, d.topics),
      sim,
      rel: reliability(st.helpful, st.rated),
      rec: recency((now - last) / DAY),
    };
  }

  async query(input: unknown, caller: NodeID) {
    const t0 = performance.now();
    if (!isObj(input)) throw bad('request must be an object');
    const summary = typeof input.request_summary === 'string' ? input.request_summary.trim() : '';
    if (summary.length < 1 || summary.length > 2000)
      throw bad('request_summary: 1..2000 characters', 'request_summary');
    const tags = input.tags === undefined ? [] : normalizeTopics(input.tags, 'tags', 0, 16);
    const cfg = this.d.settings();
    const topK = input.top_k ?? cfg.top_k_default;
    if (!Number.isInteger(topK) || (topK as number) < 1 || (topK as number) > 10)
      throw bad('top_k 1..10', 'top_k');
    const kinds = input.kinds;
    if (kinds !== undefined && (!Array.isArray(kinds) || !kinds.every((k) => KINDS.includes(k))))
      throw bad('kinds', 'kinds');
    if (input.include_humans !== undefined && typeof input.include_humans !== 'boolean')
      throw bad('include_humans');
    const exclude = input.exclude ?? [];
    if (!Array.isArray(exclude) || exclude.length > 100 || !exclude.every((e) => typeof e === 'string'))
      throw bad('exclude', 'exclude');
    const now = this.d.now();
    this.rateCheck(caller, now);
    const excl = new Set(exclude as string[]);
    const [qv] = await this.embedder.embed([summary]);
    const scorer = this.scorerInUse();
    const routeId = this.newId();
    const scored: {
      d: ExpertDescriptor;
      score: number;
      f: number[];
      parts: ScoreParts;
      load: number;
      h: string;
    }[] = [];
    for (const d of this.registry.all(now)) {
      if (d.paused || excl.has(d.expert_id)) continue;
      if (kinds && !(kinds as string[]).includes(d.kind)) continue;
      if (
        d.kind === 'human' &&
        (!d.consent_to_route || input.include_humans !== true || !cfg.handoff_enabled)
      )
        continue;
      if (d.kind === 'external' && !cfg.allow_external) continue;
      if ((d.kind === 'model' || d.kind === 'service') && d.host !== this.d.self && !this.d.reachable(d.host))
        continue;
      if (d.kind === 'human' && (d.host === caller || this.humans.blocked(d.expert_id, now))) continue;
      if (!availableAt(d.availability, now)) continue;
      let sim = 0;
      for (const tv of await this.topicVectors(d.topics)) sim = Math.max(sim, cosine(qv!, tv));
      sim = Math.min(1, Math.max(0, sim));
      const shared = tags.some((t) => d.topics.includes(t));
      if (!shared && sim < this.embedder.threshold) continue;
      const parts = this.parts(d, tags, sim, now);
      const f = features(parts, d.kind, d.score_bias);
      const score =
        scorer === 'learned' && this.model
          ? learnedScore(this.model, f, d.score_bias)
          : ruleScore(parts, tags.length > 0, d.score_bias);
      scored.push({ d, score, f, parts, load: 0, h: '' });
    }
    // ties (|Δ| < 1e-9): fewer offers/routes in the last 7 days, then SHA-256(route_id ‖ expert_id)
    for (const s of scored) {
      s.load = this.recentRoutes(s.d.expert_id, now) + this.humans.recentLoad(s.d.expert_id, now);
      s.h = sha256Hex(routeId + s.d.expert_id);
    }
    scored.sort((a, b) => {
      if (Math.abs(a.score - b.score) >= 1e-9) return b.score - a.score;
      if (a.load !== b.load) return a.load - b.load;
      return a.h < b.h ? -1 : a.h > b.h ? 1 : 0;
    });
    const top = scored.slice(0, topK as number);
    const candidates: RouteCandidate[] = top.map(({ d, score, parts }) => ({
      expert_id: d.expert_id,
      kind: d.kind,
      score,
      expected_latency_minutes: EXPECTED_LATENCY_MINUTES[d.kind],
      rationale: rationale(parts, tags, d),
      ...(d.public_rationale ? { public_rationale: d.public_rationale } : {}),
      ...(d.name ? { name: d.name } : {}),
      ...invokeOf(d),
    }));
    for (const c of candidates) {
      const l = (this.routeLoad.get(c.expert_id) ?? []).filter((t) => t > now - 7 * DAY);
      l.push(now);
      this.routeLoad.set(c.expert_id, l);
    }
    const best = candidates[0];
    const auto_route = !!best && best.score >= cfg.auto_route_threshold && best.kind !== 'human';
    const ms = performance.now() - t0;
    const rec: RouteRecord = {
      route_id: routeId,
      requester: caller,
      routed_at: now,
      tags,
      scorer,
      candidates: top.map((s) => ({
        expert_id: s.d.expert_id,
        kind: s.d.kind,
        score: s.score,
        features: s.f,
      })),
    };
    await this.d.db.put('routes', rec);
    if (cfg.publish_route_events)
      await this.d.append('moe.route.computed', {
        route_id: routeId,
        tags,
        top_k: topK as number,
        scorer,
        candidates: candidates.map((c) => ({ expert_id: c.expert_id, score: c.score })),
        ms,
      });
    return {
      route_id: routeId,
      candidates,
      rationale: candidates.length
        ? `${candidates.length} candidate(s) by the ${scorer} scorer; best ${best!.kind} at ${best!.score.toFixed(2)}`
        : 'no registered expert matches these tags or topics now',
      scorer,
      embedder: this.embedder.id,
      auto_route,
      routed_at: now,
      ms,
    };
  }

  /** The best reachable model/service by tags alone (the fallback offered after a human handoff ends). */
  bestNonHuman(tags: readonly string[]): { expert_id: string; kind: ExpertKind; score: number } | null {
    const now = this.d.now();
    let best: { expert_id: string; kind: ExpertKind; score: number } | null = null;
    for (const d of this.registry.all(now)) {
      if (d.paused || (d.kind !== 'model' && d.kind !== 'service')) continue;
      if (d.host !== this.d.self && !this.d.reachable(d.host)) continue;
      if (!availableAt(d.availability, now)) continue;
      const score = ruleScore(this.parts(d, tags, 0, now), tags.length > 0, d.score_bias);
      if (
        !best ||
        score > best.score + 1e-9 ||
        (Math.abs(score - best.score) < 1e-9 && d.expert_id < best.expert_id)
      )
        best = { expert_id: d.expert_id, kind: d.kind, score };
    }
    return best;
  }

  private recentRoutes(expertId: string, now: number): number {
    return (this.routeLoad.get(expertId) ?? []).filter((t) => t > now - 7 * DAY).length;
  }

  async route(routeId: string): Promise<RouteRecord | undefined> {
    return this.d.db.get<RouteRecord>('routes', routeId);
  }

  // ---------------------------------------------------------------- feedback

  async recordFeedback(
    input: unknown,
    caller: NodeID,
    handoffOf: (id: string) => Promise<{ route_id: string; expert_id: string; tried: string[] } | undefined>,
  ) {
    if (!isObj(input)) throw bad('request must be an object');
    const { hasRoute, hasHandoff, helpful, rating, ct, again, expertId } = parseFeedbackInput(input);
    let route: RouteRecord | undefined;
    if (hasHandoff) {
      const h = await handoffOf(input.handoff_id as string);
      if (!h) throw new HnError('not_found', 'no such handoff');
      if (!h.tried.includes(expertId)) throw new HnError('expert_unknown', 'not the handoff expert');
      route = await this.route(h.route_id);
    } else {
      route = await this.route(input.route_id as string);
      if (!route || route.requester !== caller) throw new HnError('not_found', 'no such route');
    }
    const cand = route?.candidates.find((c) => c.expert_id === expertId);
    if (!cand && hasRoute) throw new HnError('expert_unknown', 'not a candidate of that route');
    const now = this.d.now();
    const desc = this.registry.get(expertId, now);
    const kind: ExpertKind = cand?.kind ?? desc?.kind ?? 'human';
    const f: Feedback = {
      feedback_id: this.newId(),
      ...(hasRoute ? { route_id: input.route_id as string } : { handoff_id: input.handoff_id as string }),
      expert_id: expertId,
      kind,
      tags: route?.tags ?? [],
      helpful: helpful as boolean | null,
      user_rating: rating as number | null,
      completion_time_seconds: ct as number | null,
      handed_off_again: again,
      features:
        cand?.features ??
        (desc ? features(this.parts(desc, route?.tags ?? [], 0, now), kind, desc.score_bias) : []),
      feature_set: 'moe-f1',
      recorded_by: this.d.self,
      recorded_at: now,
    };
    const counted = this.feedback.add(f);
    await this.d.db.put('feedback', f);
    if (this.d.settings().share_feedback)
      await this.d.append('moe.feedback.recorded', f as unknown as Record<string, unknown>);
    if (counted) await this.maybeTrain();
    const total = this.feedback.labeled().length;
    return {
      feedback_id: f.feedback_id,
      labeled: labelOf(f) !== null,
      samples_total: total,
      scorer_ready: this.model !== null,
    };
  }

  /** Train at the threshold and then every retrain_every_hours (deterministic). */
  async maybeTrain(force = false): Promise<boolean> {
    const cfg = this.d.settings();
    const samples = this.feedback.labeled();
    if (samples.length < cfg.learned_min_samples) {
      return false;
    }
    const now = this.d.now();
    if (!force && this.model && now - this.model.trained_at < cfg.retrain_every_hours * HOUR) return false;
    this.model = trainLogistic(samples, now);
    await this.d.db.put('state', { key: 'model', model: this.model });
    return true;
  }
}
