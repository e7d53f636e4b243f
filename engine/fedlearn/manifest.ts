/**
 * M28 round manifests (digest §4): `t:"hn.fedlearn.manifest/1"`, JCS bytes without `coordinator_sig`;
 * `manifest_sha` = SHA-256 of those bytes; `coordinator_sig` = Ed25519 by the coordinator over them.
 * Validation gives `bad_request` with `field` (`not_implemented` for `secure:true`). Unknown fields are
 * refused so that parse → re-encode keeps the SHA.
 */
import { canonical } from '../core/canonical.js';
import { HnError } from '../core/errors.js';
import { sha256Hex } from '../core/hash.js';
import { ULID_RE } from '../core/ulid.js';
import * as C from '../core/constants.js';
import { isNodeId, verifyObject } from '../identity/identity.js';
import { deltaBytesBound, type ModelCard } from './delta.js';
import type { AggregatorKind } from './aggregator.js';

export const MANIFEST_T = 'hn.fedlearn.manifest/1';
export const TOPIC_RE = /^[a-z0-9][a-z0-9-]{0,63}$/;

export interface RoundManifest {
  t: typeof MANIFEST_T;
  round_id: string;
  coordinator: string;
  base_model_id: string;
  base_model_sha: string;
  lora_target_modules: string[];
  lora_rank: number;
  lora_alpha: number;
  lora_dropout: number;
  train_steps: number;
  learning_rate: number;
  batch_size: number;
  seed: number;
  dp_noise_scale: number;
  clip_norm: number;
  min_participants: number;
  max_participants: number;
  deadline: string;
  topic: string;
  consent_text: string;
  aggregator: AggregatorKind;
  trim_fraction: number;
  secure: false;
  objective: 'next_token_loss';
  /** FFA-LoRA (issue #16): A frozen at A₀, only B trained and averaged */
  freeze_a: boolean;
  min_trust_level?: string;
  coordinator_sig?: string;
}

/** What `round.announce` takes: the node fills in t, round_id, coordinator, base_model_sha and the signature. */
export type ManifestDraft = Omit<
  RoundManifest,
  | 't'
  | 'round_id'
  | 'coordinator'
  | 'base_model_sha'
  | 'coordinator_sig'
  | 'clip_norm'
  | 'aggregator'
  | 'trim_fraction'
  | 'secure'
  | 'objective'
  | 'freeze_a'
> &
  Partial<
    Pick<RoundManifest, 'clip_norm' | 'aggregator' | 'trim_fraction' | 'secure' | 'objective' | 'freeze_a'>
  >;

const FIELDS = new Set<string>([
  't',
  'round_id',
  'coordinator',
  'base_model_id',
  'base_model_sha',
  'lora_target_modules',
  'lora_rank',
  'lora_alpha',
  'lora_dropout',
  'train_steps',
  'learning_rate',
  'batch_size',
  'seed',
  'dp_noise_scale',
  'clip_norm',
  'min_participants',
  'max_participants',
  'deadline',
  'topic',
  'consent_text',
  'aggregator',
  'trim_fraction',
  'secure',
  'objective',
  'freeze_a',
  'min_trust_level',
  'coordinator_sig',
]);
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

export function completeManifest(
  d: ManifestDraft,
  fill: { round_id: string; coordinator: string; base_model_sha: string },
): RoundManifest {
  return {
    ...d,
    t: MANIFEST_T,
    round_id: fill.round_id,
    coordinator: fill.coordinator,
    base_model_sha: fill.base_model_sha,
    clip_norm: d.clip_norm ?? C.FEDLEARN_CLIP_NORM_DEFAULT,
    aggregator: d.aggregator ?? 'fedavg',
    trim_fraction: d.trim_fraction ?? 0.1,
    secure: (d.secure ?? false) as false,
    objective: d.objective ?? 'next_token_loss',
    freeze_a: d.freeze_a ?? false,
  };
}

export interface ManifestContext {
  /** when set, the deadline must lie in [now+5 min, now+max_round_minutes] (announce time) */
  now?: number;
  max_round_minutes?: number;
  /** the base model card: target modules must be in it, and the delta bound must fit */
  card?: ModelCard;
  dp_noise_scale_min?: number;
  max_bytes?: number;
}

const fail = (field: string, why: string) =>
  new HnError('bad_request', `manifest.${field}: ${why}`, { field });
const num = (v: unknown, lo: number, hi: number, loOpen = false) =>
  typeof v === 'number' && Number.isFinite(v) && (loOpen ? v > lo : v >= lo) && v <= hi;
const int = (v: unknown, lo: number, hi: number) =>
  Number.isSafeInteger(v) && (v as number) >= lo && (v as number) <= hi;

/** Check every §4 rule; throws `bad_request` (field set) or `not_implemented` (secure). */
export function validateManifest(m: unknown, ctx: ManifestContext = {}): RoundManifest {
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw fail('', 'not an object');
  const r = m as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!FIELDS.has(k)) throw fail(k, 'unknown field');
  if (r.t !== MANIFEST_T) throw fail('t', 'wrong type tag');
  if (typeof r.round_id !== 'string' || !ULID_RE.test(r.round_id)) throw fail('round_id', 'not a ULID');
  if (!isNodeId(r.coordinator)) throw fail('coordinator', 'not a NodeID');
  if (typeof r.base_model_id !== 'string' || !r.base_model_id || r.base_model_id.length > 128)
    throw fail('base_model_id', '1..128 chars');
  if (typeof r.base_model_sha !== 'string' || !/^[0-9a-f]{64}$/.test(r.base_model_sha))
    throw fail('base_model_sha', 'SHA-256 hex');
  const mods = r.lora_target_modules;
  if (
    !Array.isArray(mods) ||
    mods.length < 1 ||
    mods.length > C.FEDLEARN_MAX_LORA_TARGET_MODULES ||
    new Set(mods).size !== mods.length ||
    !mods.every((x) => typeof x === 'string' && /^[a-z][a-z0-9_]{0,63}$/.test(x))
  )
    throw fail('lora_target_modules', '1..8 unique names');
  if (ctx.card && !mods.every((x) => ctx.card!.modules[x as string]))
    throw fail('lora_target_modules', 'not in the model card');
  if (!int(r.lora_rank, 4, C.FEDLEARN_MAX_LORA_RANK)) throw fail('lora_rank', '4..64');
  if (!num(r.lora_alpha, 1, 1024)) throw fail('lora_alpha', '1..1024');
  if (!num(r.lora_dropout, 0, 0.5)) throw fail('lora_dropout', '0..0.5');
  if (!int(r.train_steps, 1, C.FEDLEARN_MAX_TRAIN_STEPS)) throw fail('train_steps', '1..1000');
  if (!num(r.learning_rate, 0, 1, true)) throw fail('learning_rate', '(0,1]');
  if (!int(r.batch_size, 1, 256)) throw fail('batch_size', '1..256');
  if (!int(r.seed, 0, 0xffffffff)) throw fail('seed', 'u32');
  if (!num(r.dp_noise_scale, ctx.dp_noise_scale_min ?? 0, 10))
    throw fail('dp_noise_scale', '0..10 and ≥ the community minimum');
  if (!num(r.clip_norm, 0, 1000, true)) throw fail('clip_norm', '(0,1000]');
  if (!int(r.min_participants, C.FEDLEARN_MIN_PARTICIPANTS, C.FEDLEARN_MAX_PARTICIPANTS))
    throw fail('min_participants', '3..32');
  if (!int(r.max_participants, r.min_participants as number, C.FEDLEARN_MAX_PARTICIPANTS))
    throw fail('max_participants', 'min..32');
  if (typeof r.deadline !== 'string' || !RFC3339.test(r.deadline) || Number.isNaN(Date.parse(r.deadline)))
    throw fail('deadline', 'RFC 3339 UTC');
  if (ctx.now !== undefined) {
    const t = Date.parse(r.deadline);
    if (t < ctx.now + 5 * 60_000 || t > ctx.now + (ctx.max_round_minutes ?? 120) * 60_000)
      throw fail('deadline', 'must be between now+5 min and now+max_round_minutes');
  }
  if (typeof r.topic !== 'string' || !TOPIC_RE.test(r.topic)) throw fail('topic', 'pattern');
  if (typeof r.consent_text !== 'string' || r.consent_text.length > 4000)
    throw fail('consent_text', '≤4000 chars');
  if (!['fedavg', 'trimmed_mean', 'median'].includes(r.aggregator as string))
    throw fail('aggregator', 'unknown');
  if (!num(r.trim_fraction, 0, 0.45)) throw fail('trim_fraction', '≤0.45');
  if (r.secure === true) throw new HnError('not_implemented', 'secure aggregation is not implemented');
  if (r.secure !== false) throw fail('secure', 'boolean');
  if (r.objective !== 'next_token_loss') throw fail('objective', 'next_token_loss');
  if (typeof r.freeze_a !== 'boolean') throw fail('freeze_a', 'boolean');
  if (r.min_trust_level !== undefined && typeof r.min_trust_level !== 'string')
    throw fail('min_trust_level', 'string');
  if (r.coordinator_sig !== undefined && typeof r.coordinator_sig !== 'string')
    throw fail('coordinator_sig', 'string');
  if (
    ctx.card &&
    deltaBytesBound(ctx.card, mods as string[], r.lora_rank as number) >
      (ctx.max_bytes ?? C.FEDLEARN_SUBMISSION_MAX_BYTES)
  )
    throw fail('lora_rank', 'the delta would exceed the submission limit');
  return r as unknown as RoundManifest;
}

const unsigned = (m: RoundManifest) => {
  const { coordinator_sig: _s, ...rest } = m;
  return rest;
};
/** The JCS bytes the SHA and the signature cover. */
export const manifestBytes = (m: RoundManifest): Uint8Array => canonical(unsigned(m));
export const manifestSha = (m: RoundManifest): string => sha256Hex(manifestBytes(m));

/** Sign with the node key (`sign` = ModuleComponents.sign: Ed25519 over canonical JSON without `signature`). */
export function signManifest(
  m: RoundManifest,
  sign: (o: Record<string, unknown>) => { signature: string },
): RoundManifest {
  return { ...unsigned(m), coordinator_sig: sign(unsigned(m)).signature } as RoundManifest;
}

/** true iff `coordinator_sig` is the coordinator's Ed25519 signature over the manifest bytes. */
export function verifyManifest(m: RoundManifest): boolean {
  if (typeof m.coordinator_sig !== 'string' || !isNodeId(m.coordinator)) return false;
  return verifyObject({ ...unsigned(m), signature: m.coordinator_sig }, m.coordinator);
}

/** Parse a received manifest: structure (§4), then signature → `invalid_signature`. */
export function parseManifest(v: unknown, ctx: ManifestContext = {}): RoundManifest {
  const m = validateManifest(v, ctx);
  if (!verifyManifest(m)) throw new HnError('invalid_signature', 'manifest signature does not verify');
  return m;
}
