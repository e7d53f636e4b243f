/**
 * M28 node service: the participant machine (§5: SEEN → JOINED → TRAINING → SUBMITTED → DONE | ABORTED,
 * DECLINED, FAILED) plus the eight capabilities' logic, delegating coordinator work to `Coordinator`.
 * Training text stays in this node: the trainer gets a reader, and only the clipped (noised) delta,
 * its SHA and counts leave. Explicit dependencies; index.ts wires it to the host.
 */
import { HnError } from '../core/errors.js';
import { sha256Hex } from '../core/hash.js';
import { b64url, fromB64url } from '../core/encoding.js';
import { ulidGenerator } from '../core/ulid.js';
import type { CallContext } from '../bus/types.js';
import { Coordinator, submissionBody, type JoinReceipt } from './coordinator.js';
import {
  decodeSafetensors,
  deltaMetadata,
  encodeSafetensors,
  loraParams,
  type ModelCard,
  type Tensors,
} from './delta.js';
import { loraInit } from './lora-init.js';
import {
  completeManifest,
  manifestSha,
  parseManifest,
  signManifest,
  validateManifest,
  type ManifestDraft,
  type RoundManifest,
} from './manifest.js';
import { epsilon, privatize, type NormalSource } from './privacy.js';
import { loraWeightDelta } from './aggregator.js';

export type LocalState =
  'SEEN' | 'DECLINED' | 'JOINED' | 'TRAINING' | 'SUBMITTED' | 'DONE' | 'ABORTED' | 'LATE' | 'FAILED';
const LEVELS = ['unknown', 'member', 'trusted', 'anchor'];

/** A base model the node has: its card and the SHA of its canonical weight file. */
export interface BaseModel {
  card: ModelCard & { params?: number; d_model?: number; heads?: number; ctx?: number };
  sha: string;
}
/** What the training worker gives back (a real trainer lives in workers/, next session). */
export interface TrainResult {
  tensors: Tensors; // Δ = trained − init, unclipped
  num_samples: number;
  train_loss: number;
}
export type Trainer = (
  m: RoundManifest,
  init: Tensors,
  data: { texts(topic: string): Promise<string[]> },
) => Promise<TrainResult>;

export interface DeviceLimits {
  memory_bytes?: number;
  max_tensor_bytes?: number;
  disk_bytes?: number;
  step_seconds?: number;
}

export interface ServiceSettings {
  max_round_minutes: number;
  takeover_grace_seconds: number;
  announce_min_level: string;
  submission_max_bytes: number;
  training_vram_budget_mb: number;
  training_disk_budget_mb: number;
  dp_noise_scale: number;
}

export interface ServiceDeps {
  self: string;
  sign(o: Record<string, unknown>): { signature: string };
  append(type: string, data: Record<string, unknown>): Promise<unknown>;
  now(): number;
  setTimeout(fn: () => void, ms: number): () => void;
  call(cap: string, input: unknown, peer: string): Promise<any>;
  levelOf(n: string): string | null;
  settings(): ServiceSettings;
  db: {
    get(store: string, key: string): Promise<any>;
    put(store: string, value: unknown): Promise<unknown>;
    getAll(store: string): Promise<any[]>;
  };
  log: { warn(msg: string, data?: Record<string, unknown>): void };
}

interface Known {
  manifest: RoundManifest;
  manifest_sha: string;
  local: LocalState;
  receipt?: JoinReceipt;
  delta?: { sha: string; bytes: Uint8Array };
  progress?: { step: number; total: number; loss: number };
  ended?: 'completed' | 'aborted';
  adapter_sha?: string;
  statusFailures: number;
}

const CAP = (n: string) => `experimental.fedlearn.${n}`;

export class FedLearnService {
  readonly coord: Coordinator;
  readonly known = new Map<string, Known>();
  base: BaseModel | null = null;
  trainer: Trainer | null = null;
  device: DeviceLimits = {};
  noise: NormalSource | undefined;
  readonly applied = new Map<string, string>(); // scope key → adapter sha
  private ulid: ReturnType<typeof ulidGenerator>;

  constructor(private d: ServiceDeps) {
    this.ulid = ulidGenerator(() => d.now());
    this.coord = new Coordinator({
      self: d.self,
      sign: d.sign,
      append: d.append,
      now: d.now,
      card: () => this.base?.card ?? null,
      maxBytes: () => d.settings().submission_max_bytes,
      storeAdapter: (sha, bytes, meta) => this.storeAdapter(sha, bytes, meta),
    });
  }

  // ---------- engine API for the app (local only, never on the bus) ----------
  /** The app writes this on the consent dialog's explicit button (a UI gesture). */
  async recordConsent(round_id: string, consent_text_sha256: string): Promise<void> {
    await this.d.db.put('consents', {
      round_id,
      consent_text_sha256,
      at: new Date(this.d.now()).toISOString(),
    });
  }
  async decline(round_id: string) {
    const k = this.known.get(round_id);
    if (k && k.local === 'SEEN') k.local = 'DECLINED';
  }
  /** Local training texts (IndexedDB store fedlearn_training_data); never sent anywhere. */
  async addTrainingText(topic: string, text: string): Promise<string> {
    const id = sha256Hex(`${topic}\n${text}`);
    await this.d.db.put('training_data', { id, topic, text });
    return id;
  }
  async texts(topic: string): Promise<string[]> {
    return (await this.d.db.getAll('training_data'))
      .filter((r) => r.topic === topic)
      .map((r) => r.text as string);
  }
  epsilon(round_id: string) {
    const k = this.known.get(round_id);
    return epsilon(k?.manifest.dp_noise_scale ?? 0);
  }

  // ---------- announcements from the log ----------
  ingestAnnounced(data: Record<string, unknown>) {
    let m: RoundManifest;
    try {
      m = parseManifest(data.manifest);
    } catch {
      const mm = (data.manifest ?? {}) as Record<string, unknown>;
      this.d.log.warn('fedlearn: manifest dropped', {
        round_id: String(mm.round_id ?? ''),
        coordinator: String(mm.coordinator ?? ''),
      });
      return;
    }
    if (!this.levelOk(m.coordinator)) return;
    if (!this.known.has(m.round_id))
      this.known.set(m.round_id, {
        manifest: m,
        manifest_sha: manifestSha(m),
        local: 'SEEN',
        statusFailures: 0,
      });
  }
  ingestEnded(type: 'completed' | 'aborted', data: Record<string, unknown>, author: string) {
    const k = this.known.get(String(data.round_id));
    if (!k || k.ended) return;
    if (author !== k.manifest.coordinator && type === 'completed' && k.adapter_sha) return; // coordinator wins
    k.ended = type;
    if (type === 'completed') k.adapter_sha = String(data.adapter_sha);
    if (k.local !== 'SEEN' && k.local !== 'DECLINED') k.local = type === 'completed' ? 'DONE' : 'ABORTED';
  }
  private levelOk(n: string) {
    const l = this.d.levelOf(n);
    return (
      l !== null &&
      l !== 'revoked' &&
      LEVELS.indexOf(l) >= LEVELS.indexOf(this.d.settings().announce_min_level)
    );
  }

  // ---------- capabilities ----------
  async announce(draft: ManifestDraft) {
    if (!this.levelOk(this.d.self))
      throw new HnError('unauthorized', 'announcing needs the announce_min_level');
    if ((draft as { secure?: boolean }).secure === true)
      throw new HnError('not_implemented', 'secure aggregation');
    if (!this.base || this.base.card.base_model_id !== draft.base_model_id)
      throw new HnError('base_model_mismatch', 'this node lacks the base model');
    const s = this.d.settings();
    const m0 = completeManifest(draft, {
      round_id: this.ulid(),
      coordinator: this.d.self,
      base_model_sha: this.base.sha,
    });
    validateManifest(m0, {
      now: this.d.now(),
      max_round_minutes: s.max_round_minutes,
      card: this.base.card,
      max_bytes: s.submission_max_bytes,
    });
    const manifest = signManifest(m0, this.d.sign);
    const sha = manifestSha(manifest);
    this.coord.open(manifest, sha);
    this.known.set(manifest.round_id, { manifest, manifest_sha: sha, local: 'SEEN', statusFailures: 0 });
    await this.d.append('fedlearn.round.announced', { manifest, manifest_sha: sha });
    this.d.setTimeout(
      () => void this.coord.finalize(manifest.round_id).catch(() => undefined),
      Date.parse(manifest.deadline) - this.d.now(),
    );
    return { round_id: manifest.round_id, manifest, manifest_sha: sha };
  }

  list(q: { topic?: string; include_closed?: boolean; limit?: number } = {}) {
    const limit = Math.min(100, Math.max(1, q.limit ?? 100));
    const out = [];
    for (const k of this.known.values()) {
      const cr = this.coord.rounds.get(k.manifest.round_id);
      const state =
        cr?.state ??
        (k.ended === 'completed' ? 'COMPLETED' : k.ended === 'aborted' ? 'ABORTED' : 'ANNOUNCED');
      if (!q.include_closed && (state === 'COMPLETED' || state === 'ABORTED')) continue;
      if (q.topic && k.manifest.topic !== q.topic) continue;
      out.push({
        manifest: k.manifest,
        manifest_sha: k.manifest_sha,
        state,
        joined_count: cr?.joined.size ?? 0,
        submitted_count: cr?.subs.size ?? 0,
        local_state: k.local,
      });
      if (out.length >= limit) break;
    }
    return { rounds: out };
  }

  /** §7 resource estimate; `insufficient_resources` with the limit in details. */
  estimate(m: RoundManifest) {
    const card = this.base!.card;
    const P = loraParams(card, m.lora_target_modules, m.lora_rank);
    const d = card.d_model ?? 0;
    const ctx = card.ctx ?? 0;
    const mem =
      1.5 *
      (4 * (card.params ?? 0) +
        16 * P +
        4 * m.batch_size * ctx * card.layers * (16 * d + 2 * (card.heads ?? 0) * ctx));
    const disk = 12 * P + 64 * 1024;
    const s = this.d.settings();
    const memLimit = Math.min(s.training_vram_budget_mb * 2 ** 20, this.device.memory_bytes ?? Infinity);
    const diskLimit = Math.min(s.training_disk_budget_mb * 2 ** 20, this.device.disk_bytes ?? Infinity);
    const refuse = (what: string, need: number, limit: number) =>
      new HnError('insufficient_resources', `${what} estimate exceeds the limit`, {
        details: { resource: what, need, limit },
      });
    if (mem > memLimit) throw refuse('memory', mem, memLimit);
    let biggest = 0;
    for (const mod of m.lora_target_modules)
      biggest = Math.max(biggest, 4 * m.lora_rank * Math.max(...card.modules[mod]!));
    if (this.device.max_tensor_bytes !== undefined && biggest > this.device.max_tensor_bytes)
      throw refuse('tensor', biggest, this.device.max_tensor_bytes);
    if (disk > diskLimit) throw refuse('disk', disk, diskLimit);
    const seconds = (this.device.step_seconds ?? 0) * m.train_steps;
    const left = (Date.parse(m.deadline) - 30_000 - this.d.now()) / 1000;
    if (seconds > left) throw refuse('time', seconds, left);
    return {
      mem_mb: Math.ceil(mem / 2 ** 20),
      disk_mb: Math.ceil(disk / 2 ** 20),
      seconds: Math.ceil(seconds),
    };
  }

  async join(input: Record<string, any>, ctx: Pick<CallContext, 'isLocal' | 'caller'>) {
    if (!ctx.isLocal) return this.coord.join(input as never, ctx.caller);
    const k = this.known.get(String(input.round_id)); // 2
    if (!k) throw new HnError('not_found', 'unknown round');
    const m = k.manifest;
    const textSha = sha256Hex(m.consent_text);
    const rec = await this.d.db.get('consents', m.round_id);
    if (
      input.consent !== true ||
      input.consent_text_sha256 !== textSha ||
      !rec ||
      rec.consent_text_sha256 !== textSha
    )
      throw new HnError('consent_required', 'join needs explicit consent from the consent dialog'); // 3
    parseManifest(m); // 4 invalid_signature
    if (!this.base || this.base.sha !== m.base_model_sha)
      throw new HnError('base_model_mismatch', 'local base model differs'); // 5
    const estimate = this.estimate(m); // 6
    if (k.receipt) return k.receipt;
    const consent = {
      t: 'hn.fedlearn.consent/1',
      round_id: m.round_id,
      participant: this.d.self,
      manifest_sha: k.manifest_sha,
      consent_text_sha256: textSha,
    };
    await this.d.append('fedlearn.round.consent.granted', {
      round_id: m.round_id,
      participant: this.d.self,
      manifest_sha: k.manifest_sha,
      consent_text_sha256: textSha,
    });
    const req = {
      round_id: m.round_id,
      manifest_sha: k.manifest_sha,
      consent: { ...consent, signature: this.d.sign(consent).signature },
      estimate,
    };
    const receipt: JoinReceipt =
      m.coordinator === this.d.self
        ? this.coord.join(req, this.d.self)
        : await this.d.call(CAP('round.join'), req, m.coordinator);
    k.receipt = receipt;
    k.local = 'JOINED';
    await this.d.append('fedlearn.round.joined', {
      round_id: m.round_id,
      participant: this.d.self,
      manifest_sha: k.manifest_sha,
    });
    return receipt;
  }

  async submit(input: Record<string, any>, ctx: Pick<CallContext, 'isLocal' | 'caller'>) {
    if (!ctx.isLocal) return this.coord.submit(input as never, ctx.caller);
    const k = this.known.get(String(input.round_id));
    if (!k) throw new HnError('not_found', 'unknown round');
    if (!k.receipt) throw new HnError('unauthorized', 'not joined');
    if (!this.trainer) throw new HnError('not_implemented', 'no trainer on this node');
    const m = k.manifest;
    if (!k.delta) {
      k.local = 'TRAINING';
      let r: TrainResult;
      try {
        const full = loraInit(this.base!.card, m.lora_target_modules, m.lora_rank, m.seed);
        r = await this.trainer(m, full, { texts: (t) => this.texts(t) });
      } catch (e) {
        k.local = 'FAILED';
        throw e;
      }
      if (this.d.now() > Date.parse(m.deadline) - 30_000) {
        k.local = 'LATE';
        throw new HnError('expired', 'training did not finish before the deadline', {
          details: { reason: 'late' },
        });
      }
      let t = r.tensors;
      if (m.freeze_a) t = new Map([...t].filter(([n]) => n.endsWith('.lora_B')));
      const priv = privatize(t, m.clip_norm, m.dp_noise_scale, this.noise);
      const bytes = encodeSafetensors({
        metadata: deltaMetadata({
          round_id: m.round_id,
          base_model_sha: m.base_model_sha,
          rank: m.lora_rank,
          alpha: m.lora_alpha,
          target_modules: m.lora_target_modules,
        }),
        tensors: priv,
      });
      k.delta = { sha: sha256Hex(bytes), bytes };
      k.progress = { step: m.train_steps, total: m.train_steps, loss: r.train_loss };
      (k as Known & { n?: number }).n = Math.min(r.num_samples, m.train_steps * m.batch_size);
    }
    const n = (k as Known & { n?: number }).n!;
    const body = submissionBody({
      round_id: m.round_id,
      participant: this.d.self,
      delta_sha: k.delta.sha,
      num_samples: n,
    });
    const sub = {
      ...body,
      delta: b64url(k.delta.bytes),
      train_loss: k.progress!.loss,
      submitted_at: new Date(this.d.now()).toISOString(),
      join_receipt: k.receipt,
      signature: this.d.sign(body).signature,
    };
    delete (sub as { t?: string }).t;
    const receipt =
      m.coordinator === this.d.self
        ? await this.coord.submit(sub as never, this.d.self)
        : await this.d.call(CAP('round.submit'), sub, m.coordinator);
    k.local = 'SUBMITTED';
    await this.d.append('fedlearn.round.submitted', {
      round_id: m.round_id,
      participant: this.d.self,
      delta_sha: k.delta.sha,
      num_samples: n,
    });
    return receipt;
  }

  async status(input: Record<string, any>, ctx: Pick<CallContext, 'isLocal' | 'caller'>) {
    const id = String(input.round_id);
    if (this.coord.rounds.has(id))
      return { ...this.coord.status(id, ctx.isLocal ? null : ctx.caller), local: this.localOf(id) };
    const k = this.known.get(id);
    if (!k || !ctx.isLocal) throw new HnError('not_found', 'unknown round');
    try {
      const s = await this.d.call(CAP('round.status'), { round_id: id }, k.manifest.coordinator);
      k.statusFailures = 0;
      return { ...s, local: this.localOf(id) };
    } catch (e) {
      const c = (e as HnError).code;
      if (c === 'timeout' || c === 'partition' || c === 'not_found') k.statusFailures++;
      throw e;
    }
  }
  private localOf(id: string) {
    const k = this.known.get(id);
    return k
      ? {
          state: k.local,
          step: k.progress?.step ?? 0,
          total: k.manifest.train_steps,
          loss: k.progress?.loss ?? null,
        }
      : null;
  }

  async finalize(input: Record<string, any>) {
    const id = String(input.round_id);
    if (this.coord.rounds.has(id))
      return this.coord.finalize(id, { abort: input.abort === true, reason: input.reason });
    const k = this.known.get(id);
    if (!k) throw new HnError('not_found', 'unknown round');
    if (!input.takeover) {
      try {
        await this.d.call(CAP('round.status'), { round_id: id }, k.manifest.coordinator);
      } catch (e) {
        const c = (e as HnError).code;
        if (c === 'timeout' || c === 'partition')
          throw new HnError('fedlearn_aggregator_unreachable', 'the coordinator is unreachable');
      }
      throw new HnError('unauthorized', 'only the coordinator finalizes');
    }
    throw new HnError('not_implemented', 'coordinator takeover is not implemented yet');
  }

  async fetch(input: Record<string, any>, ctx: Pick<CallContext, 'isLocal' | 'caller'>) {
    const sha = String(input.sha ?? '');
    const a = await this.d.db.get('adapters', sha);
    if (a) {
      const bytes = a.bytes as Uint8Array;
      return {
        sha,
        size_bytes: bytes.length,
        base_model_id: a.base_model_id,
        base_model_sha: a.base_model_sha,
        rank: a.rank,
        target_modules: a.target_modules,
        bytes: b64url(bytes),
      };
    }
    // raw deltas: only to joined nodes of that round, only after its deadline
    for (const k of this.known.values())
      if (k.delta && `sha256:${k.delta.sha}` === sha) {
        const cr = this.coord.rounds.get(k.manifest.round_id);
        const joinedCaller = ctx.isLocal || (cr ? cr.joined.has(ctx.caller) : false);
        if (joinedCaller && this.d.now() >= Date.parse(k.manifest.deadline))
          return {
            sha,
            size_bytes: k.delta.bytes.length,
            base_model_id: k.manifest.base_model_id,
            base_model_sha: k.manifest.base_model_sha,
            rank: k.manifest.lora_rank,
            target_modules: k.manifest.lora_target_modules,
            bytes: b64url(k.delta.bytes),
          };
      }
    throw new HnError('adapter_not_found', 'no adapter with that SHA');
  }

  /** Keep a fetched adapter locally (after checking its SHA). */
  async importAdapter(r: {
    sha: string;
    bytes: string;
    base_model_id: string;
    base_model_sha: string;
    rank: number;
    target_modules: string[];
  }) {
    const bytes = fromB64url(r.bytes);
    if (`sha256:${sha256Hex(bytes)}` !== r.sha) throw new HnError('delta_invalid', 'adapter SHA mismatch');
    await this.storeAdapter(r.sha, bytes, {
      base_model_id: r.base_model_id,
      base_model_sha: r.base_model_sha,
      rank: r.rank,
      target_modules: r.target_modules,
    });
  }

  private async storeAdapter(sha: string, bytes: Uint8Array, meta: Record<string, unknown>) {
    await this.d.db.put('adapters', { sha, bytes, ...meta });
  }

  /** adapter.apply: never automatic; scope node needs confirm:true from a UI gesture. */
  async apply(input: Record<string, any>) {
    const sha = String(input.sha ?? '');
    const scope = input.scope;
    if (scope !== 'session' && scope !== 'node')
      throw new HnError('bad_request', 'scope must be session or node', { field: 'scope' });
    if (scope === 'session' && typeof input.session_id !== 'string')
      throw new HnError('bad_request', 'session_id required', { field: 'session_id' });
    const a = await this.d.db.get('adapters', sha);
    if (!a) throw new HnError('adapter_not_found', 'no adapter with that SHA');
    const st = decodeSafetensors(a.bytes as Uint8Array);
    if (!this.base || st.metadata.base_model_sha !== this.base.sha)
      throw new HnError('base_model_mismatch', 'adapter was trained on another base');
    if (scope === 'node' && input.confirm !== true)
      throw new HnError('consent_required', 'applying to the node needs confirmation', {
        details: { reason: 'confirm_required' },
      });
    const key = scope === 'node' ? 'node' : `session:${input.session_id}`;
    const previous = this.applied.get(key);
    this.applied.set(key, sha);
    const applied_at = new Date(this.d.now()).toISOString();
    await this.d.append('fedlearn.adapter.applied', {
      sha,
      scope,
      ...(scope === 'session' ? { session_id: input.session_id } : {}),
    });
    return {
      sha,
      scope,
      ...(scope === 'session' ? { session_id: input.session_id } : {}),
      applied_at,
      ...(previous ? { previous_sha: previous } : {}),
    };
  }

  /** The weight updates ΔW = (α/r)·Aᵀ·Bᵀ per `layers.{i}.{m}` of the adapter applied to a scope (what the inference worker adds). */
  async weightDeltas(scope: string): Promise<Map<string, Float64Array> | null> {
    const sha = this.applied.get(scope) ?? this.applied.get('node');
    if (!sha) return null;
    const a = await this.d.db.get('adapters', sha);
    const st = decodeSafetensors(a.bytes as Uint8Array);
    const rank = Number(st.metadata.rank);
    const alpha = Number(st.metadata.alpha);
    const out = new Map<string, Float64Array>();
    for (const [name, A] of st.tensors) {
      if (!name.endsWith('.lora_A')) continue;
      const base = name.slice(0, -'.lora_A'.length);
      const B = st.tensors.get(`${base}.lora_B`)!;
      out.set(base, loraWeightDelta(A.data, B.data, rank, A.shape[1]!, B.shape[0]!, alpha));
    }
    return out;
  }
}
