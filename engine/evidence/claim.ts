/**
 * M30 claims: draft normalisation (digest §3.2), the ClaimID preimage and hash (§3.3), signing and
 * the four-step verification of any received record, plus attestation and dispute records (§3.4).
 * Pure: no storage, no clock (callers pass `asserted_at`).
 */
import { canonical, canonicalString } from '../core/canonical.js';
import { EVIDENCE_CLAIM_TTL_DAYS_DEFAULT } from '../core/constants.js';
import { toBase32NoPad } from '../core/encoding.js';
import { HnError } from '../core/errors.js';
import { sha256 } from '../core/hash.js';
import { NODE_ID_RE, type NodeID } from '../core/types.js';
import { isNodeId, verifyObject } from '../identity/identity.js';

export const CLAIM_ID_RE = /^[A-Z2-7]{51}[AQ]$/;
export const CLAIM_MAX_BYTES = 16 * 1024;
export const ATTEST_ROLES = ['first-hand witness', 'official record holder', 'expert'] as const;
export type AttestRole = (typeof ATTEST_ROLES)[number];
/** Predicates that may hold many objects at once: never a contradiction (§4.4). */
export const MULTI_VALUED_PREDICATES = [
  'contains_text',
  'served',
  'advertises_capability',
  'serves_shard',
  'expert_on',
  'retracted',
] as const;
export const RETRACTED = 'retracted';

export interface ClaimSource {
  source_id: string;
  accessed_at: string;
  content_sha: string | null;
  excerpt: string | null;
}
/** A normalised draft: every field present, every value canonical. */
export interface NormalDraft {
  claim_type: string;
  subject: string;
  predicate: string;
  object: string;
  modifiers: Record<string, string>;
  sources: ClaimSource[];
  confidence: number;
  derived_from: string[];
  supersedes: string[];
  ttl_days: number;
}
export interface ClaimRecord extends NormalDraft {
  schema_version: 1;
  claim_id: string;
  asserted_by: NodeID;
  asserted_at: string;
  signature: string;
}
export type UnsignedClaim = Omit<ClaimRecord, 'signature'>;

export interface Attestation {
  claim_id: string;
  attester: NodeID;
  attested_at: string;
  role: AttestRole;
  rationale: string;
  signature: string;
}
export interface Dispute {
  claim_id: string;
  counterclaim_id: string;
  disputer: NodeID;
  disputed_at: string;
  rationale: string;
  signature: string;
}

const bad = (msg: string, field?: string): never => {
  throw new HnError('bad_request', msg, field ? { field } : undefined);
};

// ---------------------------------------------------------------- strings
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001F\u007F-\u009F]/;
const cpLen = (s: string) => [...s].length;

/** NFC + trim (+ whitespace collapse); control characters and lone surrogates are refused. */
export function normText(v: unknown, field: string, max: number, collapse: boolean, min = 1): string {
  if (typeof v !== 'string') return bad(`${field} must be a string`, field);
  if (LONE_SURROGATE.test(v)) return bad(`${field} holds a lone surrogate`, field);
  let s = v.normalize('NFC');
  // whitespace collapse first (a tab or newline inside a subject is whitespace, not a refusal)
  if (collapse) s = s.replace(/\s+/gu, ' ');
  s = s.trim();
  if (CONTROL.test(s)) return bad(`${field} holds a control character`, field);
  const n = cpLen(s);
  if (n < min || n > max) return bad(`${field} must be ${min}..${max} code points`, field);
  return s;
}

const TIME_RE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?Z$/;
/** RFC 3339 UTC, whole seconds, `Z`; fractions are floored. */
export function normTime(v: unknown, field: string): string {
  if (typeof v !== 'string') return bad(`${field} must be an RFC 3339 UTC time`, field);
  const m = TIME_RE.exec(v);
  if (!m) return bad(`${field} must be an RFC 3339 UTC time`, field);
  const out = `${m[1]}Z`;
  const ms = Date.parse(out);
  if (!Number.isFinite(ms) || isoSeconds(ms) !== out) return bad(`${field} is not a valid time`, field);
  return out;
}
/** Milliseconds → RFC 3339 UTC floored to the second. */
export const isoSeconds = (ms: number): string =>
  new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

// ---------------------------------------------------------------- ids
export function isClaimId(v: unknown): v is string {
  return typeof v === 'string' && CLAIM_ID_RE.test(v);
}
export function parseClaimId(v: unknown, field = 'claim_id'): string {
  if (!isClaimId(v)) return bad(`${field} is not a canonical ClaimID`, field);
  return v;
}

const SOURCE_RE = /^(url|node|doc|event|ebkh):/;
const SHA_RE = /^(sha256|blake3):[0-9a-f]{64}$/;
export function parseSourceId(v: unknown, field: string): string {
  const s = normText(v, field, 2048, false);
  const m = SOURCE_RE.exec(s);
  if (!m) return bad(`${field}: unknown source kind`, field);
  const rest = s.slice(m[0].length);
  if (/\s/.test(rest) || rest.length === 0) return bad(`${field}: malformed source id`, field);
  switch (m[1]) {
    case 'url':
      if (!/^https?:\/\/[^/?#]+/.test(rest)) bad(`${field}: url must be http(s)`, field);
      break;
    case 'node':
      if (!isNodeId(rest)) bad(`${field}: malformed NodeID`, field);
      break;
  }
  return s;
}

// ---------------------------------------------------------------- draft
const DRAFT_KEYS = new Set([
  'subject',
  'predicate',
  'object',
  'claim_type',
  'modifiers',
  'sources',
  'confidence',
  'derived_from',
  'supersedes',
  'ttl_days',
]);
const SOURCE_KEYS = new Set(['source_id', 'accessed_at', 'content_sha', 'excerpt']);
const PRED_RE = /^[a-z][a-z0-9_]{0,63}$/;
const TYPE_RE = /^[a-z_]{1,32}$/;
const MOD_KEY_RE = /^[a-z][a-z0-9_]{0,31}$/;

const isPlain = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' &&
  v !== null &&
  !Array.isArray(v) &&
  (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null);

function idList(v: unknown, field: string, max: number): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > max) return bad(`${field} must be ≤${max} ClaimIDs`, field);
  const ids = v.map((x, i) => parseClaimId(x, `${field}[${i}]`));
  return [...new Set(ids)].sort();
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Validate and normalise a ClaimDraft (§3.2). `asserted_at` fills missing `accessed_at`.
 * Throws `bad_request` naming the field; returns every field with its canonical value.
 */
export function normaliseDraft(
  input: unknown,
  asserted_at: string,
  ttlDefault = EVIDENCE_CLAIM_TTL_DAYS_DEFAULT,
): NormalDraft {
  if (!isPlain(input)) return bad('a ClaimDraft must be an object');
  for (const k of Object.keys(input)) if (!DRAFT_KEYS.has(k)) bad(`unknown draft field ${k}`, k);
  const subject = normText(input.subject, 'subject', 512, true);
  const predicate = typeof input.predicate === 'string' ? input.predicate.normalize('NFC').trim() : '';
  if (!PRED_RE.test(predicate)) bad('predicate must match ^[a-z][a-z0-9_]{0,63}$', 'predicate');
  const object = normText(input.object, 'object', 2048, true);
  let claim_type = 'factual';
  if (input.claim_type !== undefined) {
    claim_type = typeof input.claim_type === 'string' ? input.claim_type.normalize('NFC').trim() : '';
    if (!TYPE_RE.test(claim_type)) bad('claim_type must match ^[a-z_]{1,32}$', 'claim_type');
  }
  const modifiers: Record<string, string> = {};
  if (input.modifiers !== undefined) {
    if (!isPlain(input.modifiers)) bad('modifiers must be an object', 'modifiers');
    const entries = Object.entries(input.modifiers as Record<string, unknown>);
    if (entries.length > 8) bad('at most 8 modifiers', 'modifiers');
    for (const [k, v] of entries) {
      if (!MOD_KEY_RE.test(k)) bad(`modifier key ${JSON.stringify(k)} is malformed`, 'modifiers');
      modifiers[k] = normText(v, `modifiers.${k}`, 128, true, 0);
    }
  }
  let sources: ClaimSource[] = [];
  if (input.sources !== undefined) {
    if (!Array.isArray(input.sources) || input.sources.length > 16) bad('at most 16 sources', 'sources');
    sources = (input.sources as unknown[]).map((s, i) => {
      const f = `sources[${i}]`;
      if (!isPlain(s)) return bad(`${f} must be an object`, f);
      for (const k of Object.keys(s)) if (!SOURCE_KEYS.has(k)) bad(`unknown field ${f}.${k}`, f);
      const content_sha = s.content_sha === undefined || s.content_sha === null ? null : s.content_sha;
      if (content_sha !== null && (typeof content_sha !== 'string' || !SHA_RE.test(content_sha)))
        bad(`${f}.content_sha must be sha256:<hex64>, blake3:<hex64> or null`, f);
      return {
        source_id: parseSourceId(s.source_id, `${f}.source_id`),
        accessed_at:
          s.accessed_at === undefined || s.accessed_at === null
            ? asserted_at
            : normTime(s.accessed_at, `${f}.accessed_at`),
        content_sha: content_sha as string | null,
        excerpt:
          s.excerpt === undefined || s.excerpt === null
            ? null
            : normText(s.excerpt, `${f}.excerpt`, 280, false, 0) || null,
      };
    });
    sources.sort(
      (a, b) =>
        cmp(a.source_id, b.source_id) ||
        cmp(a.accessed_at, b.accessed_at) ||
        cmp(a.content_sha ?? '', b.content_sha ?? '') ||
        cmp(a.excerpt ?? '', b.excerpt ?? ''),
    );
    sources = sources.filter((s, i) => i === 0 || canonicalString(s) !== canonicalString(sources[i - 1]));
  }
  let confidence = 1;
  if (input.confidence !== undefined) {
    const c = input.confidence;
    if (typeof c !== 'number' || !Number.isFinite(c) || c < 0 || c > 1)
      bad('confidence must be a finite number in 0..1', 'confidence');
    confidence = Math.round((c as number) * 100000) / 100000;
  }
  const derived_from = idList(input.derived_from, 'derived_from', 32);
  const supersedes = idList(input.supersedes, 'supersedes', 8);
  let ttl_days = ttlDefault;
  if (input.ttl_days !== undefined) {
    const t = input.ttl_days;
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > 3650)
      bad('ttl_days must be an integer 1..3650', 'ttl_days');
    ttl_days = t as number;
  }
  if (predicate === RETRACTED) parseClaimId(object, 'object');
  return {
    claim_type,
    subject,
    predicate,
    object,
    modifiers,
    sources,
    confidence,
    derived_from,
    supersedes,
    ttl_days,
  };
}

/** `"1.00000"` or `"0."` + n zero-padded to 5 digits, n = round(c·100000). */
export function confidence5dp(c: number): string {
  const n = Math.round(c * 100000);
  if (n === 100000) return '1.00000';
  return `0.${String(n).padStart(5, '0')}`;
}

/** The exact ClaimID preimage (§3.3): no floats, no excerpts. */
export function claimPreimage(r: Omit<UnsignedClaim, 'claim_id'>): Record<string, unknown> {
  return {
    asserted_at: r.asserted_at,
    asserted_by: r.asserted_by,
    claim_type: r.claim_type,
    confidence_5dp: confidence5dp(r.confidence),
    derived_from: r.derived_from,
    modifiers: r.modifiers,
    object: r.object,
    predicate: r.predicate,
    schema_version: 1,
    sources: r.sources.map((s) => ({
      accessed_at: s.accessed_at,
      content_sha: s.content_sha,
      source_id: s.source_id,
    })),
    subject: r.subject,
    supersedes: r.supersedes,
    ttl_days: r.ttl_days,
  };
}

export const claimIdOf = (r: Omit<UnsignedClaim, 'claim_id'>): string =>
  toBase32NoPad(sha256(canonical(claimPreimage(r))));

/** The unsigned record of a normalised draft. */
export function buildClaim(d: NormalDraft, asserted_by: NodeID, asserted_at: string): UnsignedClaim {
  const base = { schema_version: 1 as const, ...d, asserted_by, asserted_at };
  return { ...base, claim_id: claimIdOf(base) };
}

// ---------------------------------------------------------------- verification
const RECORD_KEYS = [
  'schema_version',
  'claim_id',
  'claim_type',
  'subject',
  'predicate',
  'object',
  'modifiers',
  'asserted_by',
  'asserted_at',
  'sources',
  'confidence',
  'derived_from',
  'supersedes',
  'ttl_days',
  'signature',
];

const sigInvalid = (detail: string, claim_id?: unknown): never => {
  throw new HnError('claim_signature_invalid', `claim record rejected: ${detail}`, {
    details: { detail, ...(typeof claim_id === 'string' && CLAIM_ID_RE.test(claim_id) ? { claim_id } : {}) },
  });
};

/**
 * Verify any received ClaimRecord (§3.3): schema, re-normalisation (any change → reject),
 * ID recomputation (`claim_signature_invalid`, detail `id_mismatch`), Ed25519 signature by the
 * key inside `asserted_by`. Never throws anything but HnError; returns the record typed.
 */
export function verifyClaimRecord(v: unknown): ClaimRecord {
  if (!isPlain(v)) return bad('a claim record must be an object');
  const keys = Object.keys(v);
  if (keys.length !== RECORD_KEYS.length || !RECORD_KEYS.every((k) => k in v))
    bad('claim record has missing or unknown fields');
  if (v.schema_version !== 1) bad('unsupported schema_version');
  parseClaimId(v.claim_id);
  if (typeof v.asserted_by !== 'string' || !NODE_ID_RE.test(v.asserted_by) || !isNodeId(v.asserted_by))
    sigInvalid('malformed asserted_by', v.claim_id);
  if (typeof v.signature !== 'string') sigInvalid('missing signature', v.claim_id);
  let bytes: number;
  try {
    bytes = canonical(v).length;
  } catch {
    return bad('claim record is not canonicalisable');
  }
  if (bytes > CLAIM_MAX_BYTES) bad('claim record exceeds 16 KiB');
  const asserted_at = normTime(v.asserted_at, 'asserted_at');
  const draft: Record<string, unknown> = {};
  for (const k of DRAFT_KEYS) draft[k] = v[k];
  const norm = normaliseDraft(draft, asserted_at, typeof v.ttl_days === 'number' ? v.ttl_days : 1);
  const rebuilt = buildClaim(norm, v.asserted_by as NodeID, asserted_at);
  const { claim_id: _a, signature: _b, ...given } = v;
  const { claim_id, ...again } = rebuilt;
  if (asserted_at !== v.asserted_at || canonicalString(again) !== canonicalString(given))
    bad('claim record is not in normal form');
  if (claim_id !== v.claim_id) sigInvalid('id_mismatch', v.claim_id);
  if (!verifyObject(v, v.asserted_by as NodeID)) sigInvalid('bad_signature', v.claim_id);
  return v as unknown as ClaimRecord;
}

export function verifyAttestation(v: unknown): Attestation {
  if (!isPlain(v)) return bad('an attestation must be an object');
  const keys = ['claim_id', 'attester', 'attested_at', 'role', 'rationale', 'signature'];
  if (Object.keys(v).length !== keys.length || !keys.every((k) => k in v))
    bad('attestation has missing or unknown fields');
  parseClaimId(v.claim_id);
  normTime(v.attested_at, 'attested_at');
  if (normTime(v.attested_at, 'attested_at') !== v.attested_at) bad('attested_at not normal');
  if (!ATTEST_ROLES.includes(v.role as AttestRole)) bad('unknown role', 'role');
  if (normText(v.rationale, 'rationale', 1000, false) !== v.rationale) bad('rationale not normal');
  if (!isNodeId(v.attester)) sigInvalid('malformed attester');
  if (!verifyObject(v, v.attester as NodeID)) sigInvalid('bad_signature', v.claim_id);
  return v as unknown as Attestation;
}

export function verifyDispute(v: unknown): Dispute {
  if (!isPlain(v)) return bad('a dispute must be an object');
  const keys = ['claim_id', 'counterclaim_id', 'disputer', 'disputed_at', 'rationale', 'signature'];
  if (Object.keys(v).length !== keys.length || !keys.every((k) => k in v))
    bad('dispute has missing or unknown fields');
  parseClaimId(v.claim_id);
  parseClaimId(v.counterclaim_id, 'counterclaim_id');
  if (normTime(v.disputed_at, 'disputed_at') !== v.disputed_at) bad('disputed_at not normal');
  if (normText(v.rationale, 'rationale', 1000, false) !== v.rationale) bad('rationale not normal');
  if (!isNodeId(v.disputer)) sigInvalid('malformed disputer');
  if (!verifyObject(v, v.disputer as NodeID)) sigInvalid('bad_signature', v.claim_id);
  return v as unknown as Dispute;
}

/** The `geo:<lat>,<lon>` object of a spatial claim (RFC 5870), or null. */
export function geoOf(object: string): [number, number] | null {
  const m = /^geo:(-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?)(?:[;,].*)?$/.exec(object);
  if (!m) return null;
  const lat = Number(m[1]);
  const lon = Number(m[2]);
  if (!(lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180)) return null;
  return [lat, lon];
}
