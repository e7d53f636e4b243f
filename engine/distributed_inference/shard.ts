/**
 * M26 shard host (digest B3–B5, B7): serves contiguous layer ranges of installed models within a memory budget.
 *
 * - `serve(spec)` loads a range, appends `distributed_llm.shard.advertised` (descriptor; re-sent every 30 min,
 *   expires after 60 min) and answers `shard.list` / `shard.connect` / `shard.forward`.
 * - `proposeRange(model, coverage)` ("serve automatically"): the largest run of manifest shards that fits the
 *   budget, starting at the first layer nobody covers; with no gap, a replica of the least-replicated range.
 * - `shard.connect`: caller ≥ trusted, shard hosted with the same weights, admission (streams per shard, 64 X08
 *   sessions, weights + KV reserves ≤ max_vram_mb) → an X08 session grant (`tensors.authorise`). The accepted
 *   session gets its own KV context: each tensor [1,S,E] appends S positions and is answered with the same
 *   tensor_id. Bad input closes that session only (NACK/BYE with the reason); the host keeps serving others.
 * - Heartbeat every `shard_heartbeat_seconds`: idle sessions (60 s) closed, idle ranges evicted after
 *   `eviction_idle_seconds`, ads refreshed. KV is never persisted; activations are never logged.
 */
import { base64 } from '@scure/base';
import type { HearthnetConfig } from '../core/config.js';
import { HnError } from '../core/errors.js';
import { trustAtLeast, type NodeID, type TrustLevel } from '../core/types.js';
import { ULID_RE } from '../core/ulid.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { TensorGrant, TensorHost } from '../transport/tensor/host.js';
import type { TensorSession } from '../transport/tensor/session.js';
import {
  AD_REFRESH_S,
  AD_TTL_S,
  CONNECT_REF,
  EV,
  FORWARD_PURPOSE,
  FORWARD_REF,
  RESERVATION_TTL_MS,
  SESSION_IDLE_S,
  SHARD_GRAPH_FORMAT,
  type InstalledShardModel,
  type ShardDescriptor,
  type ShardHealth,
} from './types.js';
import {
  checkHash,
  checkNegotiation,
  decodeInlineTensor,
  kvReserve,
  makeShardId,
  parseShardId,
  proposeRange,
  type Coverage,
  type HostSession,
  type Reservation,
  type ServeSpec,
  type Served,
} from './shard-input.js';
import { checkWireTensor, fromWire, nonFinite, toWire, type WireDtype } from './wire.js';

const P95_WINDOW = 64;

export type DistributedLlmSection = HearthnetConfig['distributed_llm'];
export type { Coverage, ParsedShardId, ServeSpec } from './shard-input.js';
export { checkHash, INLINE_TENSOR_MAX, makeShardId, parseShardId } from './shard-input.js';

export interface ShardHostDeps {
  self: NodeID;
  config: () => DistributedLlmSection;
  tensors: Pick<TensorHost, 'authorise' | 'onSession'>;
  events: { append(type: string, data: Record<string, unknown>): Promise<unknown> };
  models: () => InstalledShardModel[];
  metrics?: Metrics;
  now?: () => number;
  /** timer source (the module kit's clock); default the global one */
  setInterval?: (fn: () => void, ms: number) => () => void;
  transports?: string[];
  /** where a failed event append is reported (ids and codes only) */
  log?: Pick<Logger, 'warn'>;
}

export class ShardHost {
  private readonly served = new Map<string, Served>();
  private queue: Promise<unknown> = Promise.resolve();
  private queued = 0;
  private timer: (() => void) | null = null;
  private unregister: (() => void) | null = null;
  private stopped = false;

  constructor(private readonly d: ShardHostDeps) {
    this.unregister = d.tensors.onSession(FORWARD_PURPOSE, (s, info) => this.accept(s, info.peer));
  }

  private now(): number {
    return this.d.now?.() ?? Date.now();
  }

  /** Start the heartbeat (idle sessions, eviction, ad refresh). */
  start(): void {
    if (this.timer) return;
    const ms = this.d.config().shard_heartbeat_seconds * 1000;
    if (this.d.setInterval) this.timer = this.d.setInterval(() => void this.tick(), ms);
    else {
      const t = setInterval(() => void this.tick(), ms);
      this.timer = () => clearInterval(t);
    }
  }

  get shards(): ShardDescriptor[] {
    return [...this.served.values()].map((s) => s.desc);
  }

  /** Sessions (open + reserved) across all served ranges. */
  get activeSessions(): number {
    let n = 0;
    for (const s of this.served.values()) n += s.sessions.size + s.reserved.size;
    return n;
  }

  /** Memory budget in bytes (0 = none set). */
  private budget(): number {
    return this.d.config().max_vram_mb * 1024 * 1024;
  }

  private usedBytes(): number {
    let b = 0;
    for (const s of this.served.values()) {
      b += s.backend.weight_bytes;
      for (const h of s.sessions) b += h.kvBytes;
      for (const r of s.reserved.values()) b += r.kvBytes;
    }
    return b;
  }

  /** KV reserve of one stream (B5). */
  kvReserve(m: InstalledShardModel, lo: number, hi: number, maxSeq: number): number {
    return kvReserve(m, lo, hi, maxSeq);
  }

  /** "Serve automatically" (see `proposeRange` in shard-input.ts) within the free budget. */
  proposeRange(m: InstalledShardModel, coverage: Coverage): [number, number] {
    const free = this.budget() > 0 ? this.budget() - this.usedBytes() : Infinity;
    return proposeRange(m, coverage, free);
  }

  /** Load and advertise a range. */
  async serve(spec: ServeSpec, coverage: Coverage = []): Promise<ShardDescriptor> {
    if (this.stopped) throw new HnError('closed', 'shard host is stopped');
    const m = this.d
      .models()
      .find((x) => x.model_id === spec.model_id && (!spec.tier || spec.tier === x.tier));
    if (!m) throw new HnError('not_found', `model ${spec.model_id} is not installed here`);
    const [lo, hi] = spec.layer_range ?? this.proposeRange(m, coverage);
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 0 || hi < lo || hi >= m.total_layers)
      throw new HnError('bad_request', `layer_range must lie in 0..${m.total_layers - 1} with lo ≤ hi`);
    const id = makeShardId(m.model_id, lo, hi, m.tier);
    const have = this.served.get(id);
    if (have) return have.desc;
    const bytes = m.rangeBytes(lo, hi);
    if (this.budget() > 0 && this.usedBytes() + bytes > this.budget())
      throw new HnError('capacity_exceeded', 'the range does not fit the memory budget');
    const backend = await m.load(lo, hi);
    const now = this.now();
    const desc: ShardDescriptor = {
      shard_id: id,
      model_id: m.model_id,
      weights_sha256: m.weights_sha256,
      shard_sha256: backend.shard_sha256,
      graph_format: SHARD_GRAPH_FORMAT,
      layer_range: [lo, hi],
      total_layers: m.total_layers,
      hidden_size: m.hidden_size,
      num_kv_heads: m.num_kv_heads,
      head_dim: m.head_dim,
      compute_dtype: m.compute_dtype,
      wire_dtypes: ['fp16', 'fp32'],
      vram_required_mb: Math.ceil(bytes / (1024 * 1024)),
      max_concurrent_streams: 4,
      max_seq_len: m.max_seq_len,
      host: this.d.self,
      transports: this.d.transports ?? ['webrtc', 'relay'],
      advertised_at: Math.floor(now / 1000),
      expires_at: Math.floor(now / 1000) + AD_TTL_S,
      tier: m.tier,
    };
    this.served.set(id, {
      model: m,
      backend,
      desc,
      sessions: new Set(),
      reserved: new Map(),
      latencies: [],
      lastUsed: now,
      lastAdvert: now,
    });
    await this.d.events.append(EV.advertised, { ...desc });
    return desc;
  }

  /** Stop serving a range: sessions closed (BYE), KV freed, `shard.withdrawn`. */
  async withdraw(
    shardId: string,
    reason: 'stopped' | 'evicted' | 'disabled' | 'weights_changed',
  ): Promise<void> {
    const s = this.served.get(shardId);
    if (!s) return;
    this.served.delete(shardId);
    for (const h of [...s.sessions]) h.session.close(reason);
    for (const r of s.reserved.values()) clearTimeout(r.timer);
    await s.backend.release();
    await this.d.events
      .append(EV.withdrawn, { shard_id: shardId, reason })
      .catch((e: unknown) => this.warn('could not append shard.withdrawn', shardId, e));
  }

  async stop(reason: 'stopped' | 'disabled' = 'stopped'): Promise<void> {
    this.stopped = true;
    this.timer?.();
    this.timer = null;
    for (const id of [...this.served.keys()]) await this.withdraw(id, reason);
    this.unregister?.();
    this.unregister = null;
  }

  /** Heartbeat: close idle sessions, evict idle ranges, refresh ads. */
  async tick(): Promise<void> {
    const now = this.now();
    const cfg = this.d.config();
    for (const [id, s] of [...this.served]) {
      for (const h of [...s.sessions])
        if (now - h.lastActive > SESSION_IDLE_S * 1000) h.session.close('idle');
      if (
        s.sessions.size === 0 &&
        s.reserved.size === 0 &&
        now - s.lastUsed > cfg.eviction_idle_seconds * 1000
      ) {
        await this.withdraw(id, 'evicted');
        continue;
      }
      if (now - s.lastAdvert >= AD_REFRESH_S * 1000) {
        s.lastAdvert = now;
        s.desc = {
          ...s.desc,
          advertised_at: Math.floor(now / 1000),
          expires_at: Math.floor(now / 1000) + AD_TTL_S,
        };
        await this.d.events
          .append(EV.advertised, { ...s.desc })
          .catch((e: unknown) => this.warn('could not refresh the shard advert', id, e));
      }
    }
  }

  health(s: Served): ShardHealth {
    const sorted = [...s.latencies].sort((a, b) => a - b);
    const p95 = sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))]! : 0;
    return {
      shard_id: s.desc.shard_id,
      host: this.d.self,
      online: true,
      last_seen: Math.floor(this.now() / 1000),
      p95_latency_ms: Math.round(p95 * 100) / 100,
      queue_depth: this.queued,
      active_sessions: s.sessions.size + s.reserved.size,
      loaded: true,
    };
  }

  // ---- capabilities ------------------------------------------------------------------------------------------

  /** `shard.list` (member): this host's shards with health. */
  list(input: { model_id?: unknown }): {
    host: NodeID;
    at: number;
    shards: (ShardDescriptor & ShardHealth)[];
  } {
    const mid = input?.model_id;
    if (mid !== undefined && (typeof mid !== 'string' || mid.length > 128))
      throw new HnError('bad_request', 'model_id must be a string of at most 128 characters');
    const shards = [...this.served.values()]
      .filter((s) => mid === undefined || s.desc.model_id === mid)
      .map((s) => ({ ...s.desc, ...this.health(s) }));
    return { host: this.d.self, at: Math.floor(this.now() / 1000), shards };
  }

  /** Validates id, weights and caller; returns the served range or throws the B3 error. */
  private resolve(shardId: unknown, weights: unknown, callerLevel: TrustLevel): Served {
    const p = parseShardId(shardId);
    const w = checkHash(weights, 'weights_sha256');
    if (!trustAtLeast(callerLevel, 'trusted'))
      throw new HnError('unauthorized', 'shard sessions are only for trusted members');
    const m = this.d.models().find((x) => x.model_id === p.model_id);
    if (m && p.hi >= m.total_layers)
      throw new HnError('bad_request', `layer range outside 0..${m.total_layers - 1}`);
    const s = this.served.get(shardId as string);
    if (!s)
      throw new HnError('shard_unavailable', 'this host does not serve that shard', {
        details: { reason: 'not_hosted' },
      });
    if (s.desc.weights_sha256 !== w)
      throw new HnError('shard_unavailable', 'weights_mismatch: weights differ from the requested export', {
        details: { reason: 'weights_mismatch' },
      });
    return s;
  }

  /** `shard.connect` (trusted): admission + an X08 session grant. */
  connect(
    input: Record<string, unknown>,
    caller: NodeID,
    callerLevel: TrustLevel,
  ): TensorGrant & {
    shard: { layer_range: [number, number]; hidden_size: number; compute_dtype: string };
    kv_bytes_reserved: number;
  } {
    if (!input || typeof input !== 'object') throw new HnError('bad_request', 'input must be an object');
    const s = this.resolve(input.shard_id, input.weights_sha256, callerLevel);
    if (typeof input.pipeline_id !== 'string' || !ULID_RE.test(input.pipeline_id))
      throw new HnError('bad_request', 'pipeline_id must be a ULID', { details: { field: 'pipeline_id' } });
    const maxSeq = input.max_seq_len;
    if (!Number.isInteger(maxSeq) || (maxSeq as number) < 1 || (maxSeq as number) > s.desc.max_seq_len)
      throw new HnError('bad_request', `max_seq_len must be 1..${s.desc.max_seq_len}`, {
        details: { field: 'max_seq_len' },
      });
    const neg = input.negotiation;
    if (neg !== undefined) checkNegotiation(neg);
    if (s.sessions.size + s.reserved.size >= s.desc.max_concurrent_streams)
      throw new HnError('capacity_exceeded', 'this shard is at its stream limit', { retry_after_ms: 1000 });
    const [lo, hi] = s.desc.layer_range;
    const kvBytes = this.kvReserve(s.model, lo, hi, maxSeq as number);
    if (this.budget() > 0 && this.usedBytes() + kvBytes > this.budget())
      throw new HnError('capacity_exceeded', 'the KV reserve does not fit the memory budget', {
        retry_after_ms: 1000,
      });
    const grant = this.d.tensors.authorise({
      caller,
      capability: CONNECT_REF,
      purpose: FORWARD_PURPOSE,
      scope: FORWARD_REF,
      ...(neg ? { negotiation: neg as Record<string, unknown> } : {}),
    });
    const r: Reservation = {
      session_id: grant.session_id,
      caller,
      kvBytes,
      timer: setTimeout(() => s.reserved.delete(grant.session_id), RESERVATION_TTL_MS),
    };
    s.reserved.set(grant.session_id, r);
    s.lastUsed = this.now();
    return {
      ...grant,
      shard: { layer_range: [lo, hi], hidden_size: s.desc.hidden_size, compute_dtype: s.desc.compute_dtype },
      kv_bytes_reserved: kvBytes,
    };
  }

  /** `shard.forward` (trusted), direct bus form: one forward on inline data with a fresh KV context. */
  async forward(
    input: Record<string, unknown>,
    callerLevel: TrustLevel,
  ): Promise<{
    tensor: { dtype: WireDtype; shape: number[]; data: string };
    past_len_after: number;
    ms: number;
  }> {
    if (!input || typeof input !== 'object') throw new HnError('bad_request', 'input must be an object');
    const s = this.resolve(input.shard_id, input.weights_sha256, callerLevel);
    if (input.session_id !== undefined) {
      // X08 sessions are the session scope; their KV is not reachable through the bus form
      throw new HnError('not_found', 'no such forward session');
    }
    const tensor = decodeInlineTensor(input.tensor);
    checkWireTensor(tensor, s.desc.hidden_size, s.desc.max_seq_len);
    const bad = nonFinite(tensor);
    if (bad) throw new HnError('bad_request', 'tensor holds non-finite values', { details: { reason: bad } });
    if (s.sessions.size + s.reserved.size >= s.desc.max_concurrent_streams)
      throw new HnError('capacity_exceeded', 'this shard is at its stream limit', { retry_after_ms: 1000 });
    const kv = s.backend.openSession();
    const t0 = this.now();
    try {
      const out = await this.run(() => kv.forward(fromWire(tensor, s.backend.compute_dtype)));
      const wire = toWire(out, tensor.dtype as WireDtype);
      const ms = this.now() - t0;
      this.record(s, ms);
      return {
        tensor: { dtype: tensor.dtype as WireDtype, shape: wire.shape, data: base64.encode(wire.data) },
        past_len_after: kv.pastLength,
        ms,
      };
    } finally {
      kv.close();
    }
  }

  // ---- X08 forward sessions ----------------------------------------------------------------------------------

  private accept(session: TensorSession, peer: NodeID): void {
    let s: Served | undefined;
    let r: Reservation | undefined;
    for (const x of this.served.values()) {
      r = x.reserved.get(session.sessionId);
      if (r) {
        s = x;
        break;
      }
    }
    if (!s || !r || r.caller !== peer) {
      session.close('shard_unavailable');
      return;
    }
    clearTimeout(r.timer);
    s.reserved.delete(session.sessionId);
    const h: HostSession = {
      session,
      kv: s.backend.openSession(),
      kvBytes: r.kvBytes,
      lastActive: this.now(),
    };
    s.sessions.add(h);
    const served = s;
    session.onClose(() => {
      served.sessions.delete(h);
      h.kv.close();
      served.lastUsed = this.now();
    });
    void this.loop(served, h);
  }

  private async loop(s: Served, h: HostSession): Promise<void> {
    const E = s.desc.hidden_size;
    for (;;) {
      let got;
      try {
        got = await h.session.recvTensor();
      } catch {
        return; // closed: onClose frees the KV
      }
      h.lastActive = this.now();
      try {
        const S = checkWireTensor(got.tensor, E, s.desc.max_seq_len);
        if (h.kv.pastLength + S > s.desc.max_seq_len)
          throw new HnError('capacity_exceeded', 'context exceeds max_seq_len');
        const bad = nonFinite(got.tensor);
        if (bad) throw new HnError('bad_request', `non-finite activation (${bad})`);
        const t0 = this.now();
        const out = await this.run(() => h.kv.forward(fromWire(got.tensor, s.backend.compute_dtype)));
        const ms = this.now() - t0;
        // the answer leaves first; the bookkeeping (p95 window, metrics) runs while it travels
        const sent = h.session.sendTensor(got.tensorId, toWire(out, got.tensor.dtype as WireDtype));
        this.record(s, ms);
        await sent;
        h.lastActive = this.now();
      } catch (e) {
        const code = e instanceof HnError ? e.code : 'internal_error';
        h.session.close(code);
        return;
      }
    }
  }

  /** One FIFO for all forwards on this host (B5: `queue_depth` = queued forwards). */
  private run<T>(fn: () => Promise<T>): Promise<T> {
    this.queued++;
    const p = this.queue.then(fn, fn);
    // the chain only orders forwards: a failure reaches its caller through `p`, the next forward still runs
    this.queue = p.then(
      () => undefined,
      () => undefined,
    );
    return p.finally(() => this.queued--);
  }

  private warn(msg: string, shard_id: string, e: unknown): void {
    this.d.log?.warn(msg, { shard_id, code: e instanceof HnError ? e.code : 'internal_error' });
  }

  private record(s: Served, ms: number): void {
    s.latencies.push(ms);
    if (s.latencies.length > P95_WINDOW) s.latencies.shift();
    s.lastUsed = this.now();
    this.d.metrics?.observe('distributed_inference_shard_forward_ms', { shard_id: s.desc.shard_id }, ms);
  }
}
