/**
 * M28 coordinator takeover (digest §5 "Takeover", §10.10): a joined node finalizes a round whose
 * coordinator vanished. Allowed only when the caller joined, now ≥ deadline + grace, no completed or
 * aborted event was seen, and two `round.status` calls to the coordinator failed with timeout or
 * partition. Then: emit `fedlearn.round.takeover`, fetch each delta named in a `fedlearn.round.submitted`
 * event from its submitter (paged, SHA-checked), validate as in §6, aggregate as in §7. Aggregation is
 * deterministic, so the adapter SHA equals the coordinator's.
 */
import { HnError } from '../core/errors.js';
import {
  aggregateRound,
  deltaExpectation,
  emitCompleted,
  type CoordRound,
  type RoundResult,
} from './coordinator.js';
import { fetchAll } from './chunks.js';
import { validateDelta, type ModelCard } from './delta.js';
import type { RoundManifest } from './manifest.js';

export interface TakeoverDeps {
  self: string;
  now(): number;
  append(type: string, data: Record<string, unknown>): Promise<unknown>;
  call(cap: string, input: unknown, peer: string): Promise<any>;
  settings(): { takeover_grace_seconds: number; submission_max_bytes: number };
  card(): ModelCard | null;
  storeAdapter(sha: string, bytes: Uint8Array, meta: Record<string, unknown>): Promise<void>;
  log: { warn(msg: string, data?: Record<string, unknown>): void };
}

export interface TakeoverRound {
  manifest: RoundManifest;
  manifest_sha: string;
  receipt?: unknown;
  ended?: 'completed' | 'aborted';
  adapter_sha?: string;
  result?: RoundResult;
  delta?: { sha: string; bytes: Uint8Array };
  submitted?: Map<string, { delta_sha: string; num_samples: number }>;
}

const CAP = (n: string) => `experimental.fedlearn.${n}`;
const unauthorized = (why: string, reason: string) =>
  new HnError('unauthorized', why, { details: { reason } });

export async function takeover(d: TakeoverDeps, k: TakeoverRound): Promise<RoundResult> {
  const m = k.manifest;
  if (k.result && k.ended === 'completed') return k.result; // idempotent
  if (!k.receipt) throw unauthorized('only a joined node may take over', 'not_joined');
  if (k.ended) throw unauthorized('the round has already ended', k.ended);
  const s = d.settings();
  if (d.now() < Date.parse(m.deadline) + s.takeover_grace_seconds * 1000)
    throw unauthorized('takeover is allowed only after the deadline plus the grace period', 'grace');
  let failures = 0;
  for (let i = 0; i < 2; i++)
    try {
      await d.call(CAP('round.status'), { round_id: m.round_id }, m.coordinator);
    } catch (e) {
      const c = (e as HnError).code;
      if (c === 'timeout' || c === 'partition') failures++;
    }
  if (failures < 2) throw unauthorized('the coordinator still answers', 'coordinator_reachable');
  await d.append('fedlearn.round.takeover', {
    round_id: m.round_id,
    manifest_sha: k.manifest_sha,
    coordinator: m.coordinator,
    takeover_by: d.self,
  });
  const r: CoordRound = {
    manifest: m,
    manifest_sha: k.manifest_sha,
    state: 'AGGREGATING',
    joined: new Map(),
    subs: new Map(),
    dropped: [],
    takeover_by: d.self,
  };
  const card = d.card();
  const max = s.submission_max_bytes;
  const listed = [...(k.submitted ?? new Map())].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  for (const [participant, sub] of listed) {
    try {
      const bytes =
        participant === d.self && k.delta && k.delta.sha === sub.delta_sha
          ? k.delta.bytes
          : (
              await fetchAll(
                (input) => d.call(CAP('adapter.fetch'), input, participant),
                `sha256:${sub.delta_sha}`,
                max,
              )
            ).bytes;
      if (!card) throw new HnError('base_model_mismatch', 'no base model');
      validateDelta(bytes, deltaExpectation(m, card), max);
      if (sub.num_samples < 1 || sub.num_samples > m.train_steps * m.batch_size)
        throw new HnError('delta_invalid', 'num_samples out of range');
      r.subs.set(participant, {
        delta_sha: sub.delta_sha,
        bytes,
        num_samples: sub.num_samples,
        receipt: null as never,
      });
    } catch (e) {
      const reason = (e as HnError).code ?? 'delta_invalid';
      r.dropped.push({ participant, reason });
      d.log.warn('fedlearn: takeover dropped a delta', {
        round_id: m.round_id,
        delta_sha: sub.delta_sha,
        reason,
      });
    }
  }
  try {
    const res = await aggregateRound(r, card, true);
    await d.storeAdapter(res.sha, res.bytes, {
      round_id: m.round_id,
      base_model_id: m.base_model_id,
      base_model_sha: m.base_model_sha,
      rank: m.lora_rank,
      target_modules: m.lora_target_modules,
    });
    r.result = res.result(new Date(d.now()).toISOString());
    r.state = 'COMPLETED';
    await emitCompleted(d.append, r, m);
    k.result = r.result;
    k.ended = 'completed';
    k.adapter_sha = res.sha;
    return r.result;
  } catch (e) {
    const code = (e as HnError).code ?? 'fedlearn_aggregation_failed';
    k.ended = 'aborted';
    await d.append('fedlearn.round.aborted', {
      round_id: m.round_id,
      manifest_sha: k.manifest_sha,
      code,
      reason: (e as Error).message,
      takeover_by: d.self,
    });
    throw e;
  }
}
