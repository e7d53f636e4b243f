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
import { Coordinator, submissionBody, type JoinReceipt, type RoundResult } from './coordinator.js';
import { deltaMetadata, encodeSafetensors } from './delta.js';
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
import { adapterWeightDeltas, applyAdapter, appliedWeights, blobMeta } from './adapters.js';
import type { DecoderDims, DecoderWeights } from './base.js';
import { estimateResources } from './resources.js';
import type {
  BaseModel,
  DeviceLimits,
  ServiceDeps,
  ServiceSettings,
  Trainer,
  TrainResult,
} from './service-types.js';
import { CHUNK_BYTES, chunkCount, page, splitChunks } from './chunks.js';
import { takeover, type TakeoverDeps } from './takeover.js';

export type LocalState =
  'SEEN' | 'DECLINED' | 'JOINED' | 'TRAINING' | 'SUBMITTED' | 'DONE' | 'ABORTED' | 'LATE' | 'FAILED';
const LEVELS = ['unknown', 'member', 'trusted', 'anchor'];

export type { BaseModel, DeviceLimits, ServiceDeps, ServiceSettings, Trainer, TrainResult };

interface Known {
  manifest: RoundManifest;
  manifest_sha: string;
  local: LocalState;
  receipt?: JoinReceipt;
  delta?: { sha: string; bytes: Uint8Array };
  progress?: { step: number; total: number; loss: number };
  ended?: 'completed' | 'aborted';
  adapter_sha?: string;
  result?: RoundResult;
  statusFailures: number;
  /** from gossiped events: who joined, and who submitted which delta (takeover and raw-delta fetches) */
  peers?: Set<string>;
  submitted?: Map<string, { delta_sha: string; num_samples: number }>;
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
      log: d.log,
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
  /** `fedlearn.round.joined` / `.submitted` from the log (the author is the participant). */
  ingestParticipant(type: 'joined' | 'submitted', data: Record<string, unknown>, author: string) {
    const k = this.known.get(String(data.round_id));
    if (!k || data.participant !== author) return;
    (k.peers ??= new Set()).add(author);
    if (type === 'submitted' && typeof data.delta_sha === 'string' && Number.isSafeInteger(data.num_samples))
      (k.submitted ??= new Map()).set(author, {
        delta_sha: data.delta_sha,
        num_samples: data.num_samples as number,
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
      () =>
        void this.coord
          .finalize(manifest.round_id)
          .catch((e: unknown) => this.coord.finalizeFailed(manifest.round_id, e)),
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
    return estimateResources(this.base!.card, m, this.d.settings(), this.device, this.d.now());
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
    if (!ctx.isLocal)
      return input.chunk !== undefined
        ? this.coord.submitChunk(input as never, ctx.caller)
        : this.coord.submit(input as never, ctx.caller);
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
    const toCoord = (x: unknown) =>
      m.coordinator === this.d.self
        ? x !== null && typeof x === 'object' && 'chunk' in x
          ? this.coord.submitChunk(x as never, this.d.self)
          : this.coord.submit(x as never, this.d.self)
        : this.d.call(CAP('round.submit'), x, m.coordinator);
    const big = k.delta.bytes.length > CHUNK_BYTES; // §3: over 1 MiB travels as chunks
    if (big)
      for (const part of splitChunks(k.delta.bytes))
        await toCoord({ round_id: m.round_id, participant: this.d.self, delta_sha: k.delta.sha, ...part });
    const sub = {
      ...body,
      delta: big
        ? { chunks: chunkCount(k.delta.bytes.length), size_bytes: k.delta.bytes.length }
        : b64url(k.delta.bytes),
      train_loss: k.progress!.loss,
      submitted_at: new Date(this.d.now()).toISOString(),
      join_receipt: k.receipt,
      signature: this.d.sign(body).signature,
    };
    delete (sub as { t?: string }).t;
    const receipt = await toCoord(sub);
    k.local = 'SUBMITTED';
    (k.submitted ??= new Map()).set(this.d.self, { delta_sha: k.delta.sha, num_samples: n });
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
    return takeover(this.takeoverDeps(), k);
  }

  async fetch(input: Record<string, any>, ctx: Pick<CallContext, 'isLocal' | 'caller'>) {
    const sha = String(input.sha ?? '');
    const a = await this.d.db.get('adapters', sha);
    if (a) return { sha, size_bytes: a.bytes.length, ...blobMeta(a), ...page(a.bytes, input.offset) };
    // raw deltas: only to joined nodes of that round, only after its deadline
    for (const k of this.known.values())
      if (k.delta && `sha256:${k.delta.sha}` === sha) {
        const cr = this.coord.rounds.get(k.manifest.round_id);
        const joinedCaller =
          ctx.isLocal || (cr ? cr.joined.has(ctx.caller) : false) || (k.peers?.has(ctx.caller) ?? false);
        if (joinedCaller && this.d.now() >= Date.parse(k.manifest.deadline))
          return {
            sha,
            size_bytes: k.delta.bytes.length,
            ...blobMeta({
              ...k.manifest,
              rank: k.manifest.lora_rank,
              target_modules: k.manifest.lora_target_modules,
            }),
            ...page(k.delta.bytes, input.offset),
          };
      }
    throw new HnError('adapter_not_found', 'no adapter with that SHA');
  }

  /** Keep a fetched adapter locally (after checking its SHA). */
  async importAdapter(r: {
    sha: string;
    bytes: string | Uint8Array;
    base_model_id: string;
    base_model_sha: string;
    rank: number;
    target_modules: string[];
  }) {
    const bytes = typeof r.bytes === 'string' ? fromB64url(r.bytes) : r.bytes;
    if (`sha256:${sha256Hex(bytes)}` !== r.sha) throw new HnError('delta_invalid', 'adapter SHA mismatch');
    await this.storeAdapter(r.sha, bytes, blobMeta(r));
  }

  private takeoverDeps(): TakeoverDeps {
    return {
      self: this.d.self,
      now: this.d.now,
      append: this.d.append,
      call: this.d.call,
      settings: this.d.settings,
      card: () => this.base?.card ?? null,
      storeAdapter: (sha: string, bytes: Uint8Array, meta: Record<string, unknown>) =>
        this.storeAdapter(sha, bytes, meta),
      log: this.d.log,
    };
  }

  /** A locally kept adapter (bytes and metadata), or undefined. */
  adapterRecord(sha: string): Promise<{ bytes: Uint8Array } | undefined> {
    return this.d.db.get('adapters', sha);
  }
  private async storeAdapter(sha: string, bytes: Uint8Array, meta: Record<string, unknown>) {
    await this.d.db.put('adapters', { sha, bytes, ...meta });
  }

  /** adapter.apply: never automatic; scope node needs confirm:true from a UI gesture (adapters.ts). */
  async apply(input: Record<string, any>) {
    return applyAdapter(this.adapterDeps(), input);
  }
  /** ΔW = (α/r)·Aᵀ·Bᵀ per `layers.{i}.{m}` of the adapter applied to a scope (what the inference worker adds). */
  async weightDeltas(scope: string) {
    return adapterWeightDeltas(this.adapterDeps(), scope);
  }
  /** Base weights with the scope's adapter merged (what the ONNX inference path runs). */
  async weightsFor(scope: string, dims: DecoderDims, weights: DecoderWeights) {
    return appliedWeights(this.adapterDeps(), scope, dims, weights);
  }
  private adapterDeps() {
    return { db: this.d.db, now: this.d.now, append: this.d.append, base: this.base, applied: this.applied };
  }
}
