/**
 * M28 coordinator role (digest §5 coordinator machine, §6 checks, §7 aggregation): rounds this node
 * announced. ANNOUNCED → AGGREGATING (deadline timer, finalize, or everyone submitted) → COMPLETED | ABORTED.
 * Pure logic over explicit dependencies; index.ts wires it to the module host.
 */
import { HnError } from '../core/errors.js';
import { sha256Hex } from '../core/hash.js';
import { fromB64url } from '../core/encoding.js';
import type { NodeID } from '../core/types.js';
import { verifyObject } from '../identity/identity.js';
import { aggregate, encodeAdapter } from './aggregator.js';
import { decodeSafetensors, validateDelta, type DeltaExpectation, type ModelCard } from './delta.js';
import { loraInit } from './lora-init.js';
import { ChunkBuffer, type ChunkPart } from './chunks.js';
import type { RoundManifest } from './manifest.js';

export type CoordState = 'ANNOUNCED' | 'AGGREGATING' | 'COMPLETED' | 'ABORTED';

export interface JoinReceipt {
  round_id: string;
  participant: string;
  manifest_sha: string;
  joined_at: string;
  expires_at: string;
  estimate: { mem_mb: number; disk_mb: number; seconds: number };
  coordinator_sig: string;
}
export interface SubmitReceipt {
  round_id: string;
  participant: string;
  delta_sha: string;
  accepted_at: string;
  coordinator_sig: string;
}
export interface RoundResult {
  adapter_sha: string;
  n_participants: number;
  total_samples: number;
  aggregator: string;
  method: string;
  completed_at: string;
  manifest_sha: string;
  download_url: string;
  dropped: { participant: string; reason: string }[];
  takeover: boolean;
}

export interface CoordRound {
  manifest: RoundManifest;
  manifest_sha: string;
  state: CoordState;
  joined: Map<string, JoinReceipt>;
  subs: Map<string, { delta_sha: string; bytes: Uint8Array; num_samples: number; receipt: SubmitReceipt }>;
  dropped: { participant: string; reason: string }[];
  result?: RoundResult;
  abort_reason?: string;
  takeover_by?: string;
}

export interface CoordDeps {
  self: string;
  sign(o: Record<string, unknown>): { signature: string };
  append(type: string, data: Record<string, unknown>): Promise<unknown>;
  now(): number;
  card(): ModelCard | null;
  storeAdapter(sha: string, bytes: Uint8Array, meta: Record<string, unknown>): Promise<void>;
  maxBytes(): number;
  log?: { warn(msg: string, data?: Record<string, unknown>): void };
}

const iso = (t: number) => new Date(t).toISOString();

/** What a submitted delta must match: the round's manifest and the coordinator's base model. */
export const deltaExpectation = (m: RoundManifest, card: ModelCard): DeltaExpectation => ({
  round_id: m.round_id,
  base_model_sha: m.base_model_sha,
  rank: m.lora_rank,
  alpha: m.lora_alpha,
  target_modules: m.lora_target_modules,
  card,
  clip_norm: m.clip_norm,
  dp_noise_scale: m.dp_noise_scale,
  freeze_a: m.freeze_a,
});

/** §4 ParticipantSubmission signature body */
export const submissionBody = (s: {
  round_id: string;
  participant: string;
  delta_sha: string;
  num_samples: number;
}) => ({
  t: 'hn.fedlearn.submission/1',
  round_id: s.round_id,
  participant: s.participant,
  delta_sha: s.delta_sha,
  num_samples: s.num_samples,
});

export class Coordinator {
  readonly rounds = new Map<string, CoordRound>();
  readonly chunks = new ChunkBuffer();
  constructor(private d: CoordDeps) {}

  open(manifest: RoundManifest, manifest_sha: string): CoordRound {
    const r: CoordRound = {
      manifest,
      manifest_sha,
      state: 'ANNOUNCED',
      joined: new Map(),
      subs: new Map(),
      dropped: [],
    };
    this.rounds.set(manifest.round_id, r);
    return r;
  }

  private get(id: unknown): CoordRound {
    const r = typeof id === 'string' ? this.rounds.get(id) : undefined;
    if (!r) throw new HnError('not_found', 'unknown round');
    return r;
  }
  private sig<T extends Record<string, unknown>>(o: T): T & { coordinator_sig: string } {
    return { ...o, coordinator_sig: this.d.sign(o).signature };
  }

  /** remote join (§3): the participant's signed consent proves the UI gesture on its side */
  join(
    req: {
      round_id: string;
      manifest_sha: string;
      consent: Record<string, unknown>;
      estimate?: JoinReceipt['estimate'];
    },
    caller: string,
  ): JoinReceipt {
    const r = this.get(req.round_id);
    const c = req.consent;
    if (
      !c ||
      typeof c !== 'object' ||
      c.t !== 'hn.fedlearn.consent/1' ||
      c.round_id !== req.round_id ||
      c.participant !== caller ||
      c.manifest_sha !== r.manifest_sha ||
      c.consent_text_sha256 !== sha256Hex(r.manifest.consent_text) ||
      !verifyObject(c, caller as NodeID)
    )
      throw new HnError('consent_required', 'no valid consent for this round');
    if (req.manifest_sha !== r.manifest_sha) throw new HnError('bad_request', 'manifest_sha differs');
    const old = r.joined.get(caller);
    if (old) return old;
    if (r.state !== 'ANNOUNCED' || this.d.now() >= Date.parse(r.manifest.deadline))
      throw new HnError('expired', 'round closed', { details: { reason: 'round_closed' } });
    if (r.joined.size >= r.manifest.max_participants)
      throw new HnError('capacity_exceeded', 'round full', { details: { reason: 'round_full' } });
    const rec = this.sig({
      round_id: r.manifest.round_id,
      participant: caller,
      manifest_sha: r.manifest_sha,
      joined_at: iso(this.d.now()),
      expires_at: r.manifest.deadline,
      estimate: req.estimate ?? { mem_mb: 0, disk_mb: 0, seconds: 0 },
    });
    r.joined.set(caller, rec);
    return rec;
  }

  /** §3 chunked upload of a delta over 1 MiB: checks 1–4 (size before buffering), then buffers the part. */
  submitChunk(s: ChunkPart & { round_id: string; participant: string }, caller: string) {
    const r = this.get(s.round_id); // 1
    if (this.d.now() >= Date.parse(r.manifest.deadline) || r.state !== 'ANNOUNCED')
      throw new HnError('expired', 'the round deadline has passed', { details: { reason: 'round_closed' } }); // 2
    if (!r.joined.has(caller) || s.participant !== caller)
      throw new HnError('unauthorized', 'no join receipt'); // 3
    const got = this.chunks.put(`${r.manifest.round_id}/${caller}`, s, this.d.maxBytes()); // 4
    return { round_id: r.manifest.round_id, delta_sha: s.delta_sha, ...got };
  }

  /** remote submit: §6 checks in order */
  async submit(
    s: {
      round_id: string;
      participant: string;
      delta: string | { chunks: number; size_bytes: number };
      delta_sha: string;
      num_samples: number;
      train_loss: number;
      signature: string;
    },
    caller: string,
  ): Promise<SubmitReceipt> {
    const r = this.get(s.round_id); // 1
    const m = r.manifest;
    if (this.d.now() >= Date.parse(m.deadline) || r.state !== 'ANNOUNCED')
      throw new HnError('expired', 'the round deadline has passed', { details: { reason: 'round_closed' } }); // 2
    const jr = r.joined.get(caller);
    if (!jr || s.participant !== caller) throw new HnError('unauthorized', 'no join receipt'); // 3
    const max = this.d.maxBytes();
    let bytes: Uint8Array;
    if (s.delta !== null && typeof s.delta === 'object') {
      bytes = this.chunks.take(`${m.round_id}/${caller}`, s.delta, String(s.delta_sha), max); // 4–5
    } else {
      if (typeof s.delta !== 'string' || (s.delta.length * 3) / 4 > max + 3)
        throw new HnError('delta_invalid', 'delta over the size limit', { details: { reason: 'too_large' } }); // 4
      try {
        bytes = fromB64url(s.delta);
      } catch {
        throw new HnError('delta_invalid', 'delta is not base64url');
      }
    }
    const sha = sha256Hex(bytes);
    if (s.delta_sha !== sha) throw new HnError('delta_invalid', 'delta_sha mismatch'); // 5
    if (!verifyObject({ ...submissionBody(s), signature: s.signature }, caller as NodeID))
      throw new HnError('invalid_signature', 'submission signature'); // 6
    const dup = r.subs.get(caller);
    if (dup) {
      if (dup.delta_sha === sha) return dup.receipt;
      throw new HnError('bad_request', 'a different delta was already submitted'); // 7
    }
    const card = this.d.card();
    if (!card) throw new HnError('base_model_mismatch', 'the coordinator has no base model');
    try {
      validateDelta(bytes, deltaExpectation(m, card), max); // 8–12
      if (
        !Number.isSafeInteger(s.num_samples) ||
        s.num_samples < 1 ||
        s.num_samples > m.train_steps * m.batch_size ||
        !Number.isFinite(s.train_loss)
      )
        throw new HnError('delta_invalid', 'num_samples or train_loss out of range'); // 13
    } catch (e) {
      r.dropped.push({ participant: caller, reason: (e as HnError).code ?? 'delta_invalid' });
      throw e;
    }
    const receipt = this.sig({
      round_id: m.round_id,
      participant: caller,
      delta_sha: sha,
      accepted_at: iso(this.d.now()),
    });
    r.subs.set(caller, { delta_sha: sha, bytes, num_samples: s.num_samples, receipt });
    if (r.subs.size === r.joined.size && r.subs.size >= m.min_participants)
      void this.finalize(m.round_id).catch((e: unknown) => this.finalizeFailed(m.round_id, e));
    return receipt;
  }

  /** A finalize nobody awaits (all submitted, or the deadline timer): its failure is logged, never lost. */
  finalizeFailed(round_id: string, e: unknown) {
    this.d.log?.warn('fedlearn: finalize failed', {
      round_id,
      code: e instanceof HnError ? e.code : 'internal',
    });
  }

  status(id: string, caller: string | null) {
    const r = this.get(id);
    const insider = caller === null || caller === this.d.self || r.joined.has(caller);
    return {
      state: r.state,
      coordinator: r.manifest.coordinator,
      deadline: r.manifest.deadline,
      min: r.manifest.min_participants,
      max: r.manifest.max_participants,
      joined: insider ? [...r.joined.keys()].sort() : [],
      submitted: insider ? [...r.subs.keys()].sort() : [],
      dropped: insider ? r.dropped : [],
      joined_count: r.joined.size,
      submitted_count: r.subs.size,
      ...(r.result ? { result: r.result } : {}),
      ...(r.abort_reason ? { abort_reason: r.abort_reason } : {}),
      ...(r.takeover_by ? { takeover_by: r.takeover_by } : {}),
    };
  }

  /** Aggregate (idempotent). `abort` → ABORTED. Fewer than min valid → ABORTED + fedlearn_min_participants_unmet. */
  async finalize(id: string, o: { abort?: boolean; reason?: string } = {}): Promise<RoundResult> {
    const r = this.get(id);
    if (r.state === 'COMPLETED') return r.result!;
    if (r.state === 'ABORTED')
      throw new HnError('fedlearn_min_participants_unmet', r.abort_reason ?? 'aborted');
    if (r.state === 'AGGREGATING') throw new HnError('capacity_exceeded', 'aggregation in progress');
    r.state = 'AGGREGATING';
    const m = r.manifest;
    const abort = async (code: string, reason: string) => {
      r.state = 'ABORTED';
      r.abort_reason = reason;
      await this.d.append('fedlearn.round.aborted', {
        round_id: m.round_id,
        manifest_sha: r.manifest_sha,
        code,
        reason,
      });
    };
    if (o.abort) {
      await abort('aborted', o.reason ?? 'aborted by the coordinator');
      throw new HnError('fedlearn_aggregation_failed', 'round aborted', { details: { reason: 'aborted' } });
    }
    try {
      const res = await aggregateRound(r, this.d.card(), false);
      await this.d.storeAdapter(res.sha, res.bytes, {
        round_id: m.round_id,
        base_model_id: m.base_model_id,
        base_model_sha: m.base_model_sha,
        rank: m.lora_rank,
        target_modules: m.lora_target_modules,
      });
      r.result = res.result(iso(this.d.now()));
      r.state = 'COMPLETED';
      await emitCompleted(this.d.append, r, m);
      return r.result;
    } catch (e) {
      const code = (e as HnError).code ?? 'fedlearn_aggregation_failed';
      await abort(code, (e as Error).message);
      throw e;
    }
  }
}

/** §7: aggregation of a round's accepted deltas (each was validated on submit). */
export async function aggregateRound(r: CoordRound, card: ModelCard | null, takeover: boolean) {
  const m = r.manifest;
  if (!card) throw new HnError('base_model_mismatch', 'no base model');
  const subs = [...r.subs].map(([participant, s]) => ({
    participant,
    num_samples: s.num_samples,
    tensors: decodeSafetensors(s.bytes).tensors,
  }));
  const init = loraInit(card, m.lora_target_modules, m.lora_rank, m.seed);
  const t = aggregate(subs, {
    method: m.aggregator,
    trim_fraction: m.trim_fraction,
    min_participants: m.min_participants,
    init,
    freeze_a: m.freeze_a,
  });
  const method = `${m.aggregator}${m.freeze_a ? '+ffa' : ''}`;
  const { bytes, sha } = encodeAdapter(t, {
    card,
    base_model_sha: m.base_model_sha,
    rank: m.lora_rank,
    alpha: m.lora_alpha,
    target_modules: m.lora_target_modules,
    round_id: m.round_id,
    manifest_sha: r.manifest_sha,
    method,
  });
  const total = subs.reduce((a, s) => a + s.num_samples, 0);
  return {
    bytes,
    sha,
    result: (at: string): RoundResult => ({
      adapter_sha: sha,
      n_participants: subs.length,
      total_samples: total,
      aggregator: m.aggregator,
      method,
      completed_at: at,
      manifest_sha: r.manifest_sha,
      download_url: `hn://cap/experimental.fedlearn.adapter.fetch?sha=${sha}`,
      dropped: r.dropped,
      takeover,
    }),
  };
}

export async function emitCompleted(append: CoordDeps['append'], r: CoordRound, m: RoundManifest) {
  const res = r.result!;
  await append('fedlearn.round.aggregated', {
    round_id: m.round_id,
    adapter_sha: res.adapter_sha,
    n_participants: res.n_participants,
    total_samples: res.total_samples,
    method: res.method,
    takeover: res.takeover,
  });
  await append('fedlearn.adapter.published', {
    round_id: m.round_id,
    base_model: m.base_model_id,
    base_model_sha: m.base_model_sha,
    adapter_id: res.adapter_sha,
    version: 1,
    participants: res.n_participants,
    objective: m.objective,
    dp_noise_scale: m.dp_noise_scale,
  });
  await append('fedlearn.round.completed', {
    round_id: m.round_id,
    adapter_sha: res.adapter_sha,
    manifest_sha: r.manifest_sha,
  });
}
