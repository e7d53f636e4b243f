/**
 * M31 alerts (digest §3.3): draft normalisation with the seed's limits, the signed Alert, the
 * issuer attestation (cosign), the envelope, the role-restricted stub, and the Cancel record.
 */
import { canonical } from '../core/canonical.js';
import { CIVDEF_ALERT_BODY_MAX_CHARS, CIVDEF_ALERT_TITLE_MAX_CHARS } from '../core/constants.js';
import { HnError } from '../core/errors.js';
import { sha256Hex } from '../core/hash.js';
import type { NodeID } from '../core/types.js';
import { ULID_RE } from '../core/ulid.js';
import { decodeSignature, isNodeId, verifyObject } from '../identity/identity.js';
import { SEVERITIES, type Severity } from './regions/nrw.js';
import { TIME_RE, type RoleCertificate, type Signer } from './role.js';
import { parseTarget, type AlertTarget } from './target.js';

export const CAP_CATEGORIES = [
  'Geo',
  'Met',
  'Safety',
  'Security',
  'Rescue',
  'Fire',
  'Health',
  'Env',
  'Transport',
  'Infra',
  'CBRNE',
  'Other',
] as const;
export const STATUSES = ['actual', 'exercise', 'test'] as const;
export const URGENCIES = ['Immediate', 'Expected', 'Future', 'Past', 'Unknown'] as const;
export const CERTAINTIES = ['Observed', 'Likely', 'Possible', 'Unlikely', 'Unknown'] as const;
export const CLAIM_ID_RE = /^[A-Z2-7]{51}[AQ]$/;

export interface IssuerAttestation {
  by: NodeID;
  cert_id: string | null;
  sig: string;
}
export interface AlertBody {
  alert_id: string;
  cert_id: string;
  severity: Severity;
  title: string;
  body: string;
  target: AlertTarget;
  instructions: string[];
  expires_at: string;
  evidence_claim: string | null;
  correlation_id: string | null;
  category: (typeof CAP_CATEGORIES)[number];
  status: (typeof STATUSES)[number];
  event: string;
  urgency: (typeof URGENCIES)[number] | null;
  certainty: (typeof CERTAINTIES)[number] | null;
  language: string;
  published_at: string;
  publisher: NodeID;
  publisher_role: string;
  publisher_cert: string;
}
export interface Alert extends AlertBody {
  signature: string;
  issuer_attestation?: IssuerAttestation;
}
export interface AlertEnvelope {
  alert: Alert;
  cert_bundle: RoleCertificate[];
  federation_hops: NodeID[];
  received_at: string;
  received_via: 'bus' | 'federation' | 'lora_signal' | 'manual';
}
export interface AlertStub {
  alert_id: string;
  severity: Severity;
  target: AlertTarget;
  publisher: NodeID;
  publisher_cert: string;
  published_at: string;
  expires_at: string;
  alert_sha: string;
}
export interface Cancel {
  alert_id: string;
  reason: string;
  cancelled_at: string;
  by: NodeID;
  by_cert: string;
  signature: string;
}

const bad = (m: string): never => {
  throw new HnError('bad_request', m);
};
// eslint-disable-next-line no-control-regex
const CTRL = /[\u0000-\u0009\u000B-\u001F\u007F-\u009F]/;
// eslint-disable-next-line no-control-regex
const CTRL_NL = /[\u0000-\u001F\u007F-\u009F]/;

/** NFC text with 1..max code points; control characters rejected (`\n` only where allowed). */
export function text(v: unknown, field: string, min: number, max: number, newline = false): string {
  if (typeof v !== 'string') return bad(`${field} must be a string`);
  const s = v.normalize('NFC');
  const n = [...s].length;
  if (n < min || n > max) bad(`${field} must have ${min}..${max} characters`);
  if ((newline ? CTRL : CTRL_NL).test(s)) bad(`${field} contains control characters`);
  return s;
}

const oneOf = <T extends string>(v: unknown, field: string, list: readonly T[], dflt: T | null): T | null => {
  if (v === undefined || v === null) return dflt;
  if (!list.includes(v as T)) bad(`${field} must be one of ${list.join(', ')}`);
  return v as T;
};
export const sevOrder = (s: Severity): number => SEVERITIES.indexOf(s);

export type NormalDraft = Omit<
  AlertBody,
  'published_at' | 'publisher' | 'publisher_role' | 'publisher_cert' | 'alert_id'
> & {
  alert_id: string | null;
  issuer_attestation: IssuerAttestation | null;
};

const DRAFT_KEYS = new Set([
  'cert_id',
  'alert_id',
  'severity',
  'title',
  'body',
  'target',
  'instructions',
  'expires_at',
  'evidence_claim',
  'correlation_id',
  'issuer_attestation',
  'category',
  'status',
  'event',
  'urgency',
  'certainty',
  'language',
  'published_at',
]);

/** §4.2 step 1: shape and lengths → bad_request; malformed target → civdef_alert_target_invalid. */
export function normaliseDraft(v: unknown, now: number): NormalDraft {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad('draft must be an object');
  const d = v as Record<string, unknown>;
  for (const k of Object.keys(d)) if (!DRAFT_KEYS.has(k)) bad(`unknown field ${k}`);
  if (typeof d.cert_id !== 'string' || !/^[A-Z2-7]{52}$/.test(d.cert_id)) bad('cert_id required');
  if (d.alert_id !== undefined && (typeof d.alert_id !== 'string' || !ULID_RE.test(d.alert_id)))
    bad('alert_id must be a ULID');
  const severity = oneOf(d.severity, 'severity', SEVERITIES, null);
  if (!severity) bad('severity required');
  const title = text(d.title, 'title', 1, CIVDEF_ALERT_TITLE_MAX_CHARS);
  const body = text(d.body, 'body', 1, CIVDEF_ALERT_BODY_MAX_CHARS, true);
  const ins = d.instructions ?? [];
  if (!Array.isArray(ins) || ins.length > 10) bad('instructions: ≤10 lines');
  const instructions = (ins as unknown[]).map((l, i) => text(l, `instructions[${i}]`, 1, 200));
  let expires_at: string;
  if (d.expires_at === undefined || d.expires_at === null) expires_at = isoS(now + 86400_000);
  else {
    if (typeof d.expires_at !== 'string' || !TIME_RE.test(d.expires_at))
      bad('expires_at must be RFC 3339 UTC seconds');
    const t = Date.parse(d.expires_at as string);
    if (!(t > now && t <= now + 7 * 86400_000)) bad('expires_at must be in (now, now+7d]');
    expires_at = d.expires_at as string;
  }
  const evidence_claim = d.evidence_claim ?? null;
  if (evidence_claim !== null && (typeof evidence_claim !== 'string' || !CLAIM_ID_RE.test(evidence_claim)))
    bad('evidence_claim must be a ClaimID');
  const correlation_id =
    d.correlation_id === undefined || d.correlation_id === null
      ? null
      : text(d.correlation_id, 'correlation_id', 1, 128);
  const language = d.language === undefined ? 'de-DE' : (d.language as string);
  if (typeof language !== 'string' || !/^[a-zA-Z]{2,3}(-[A-Za-z0-9]{2,8})*$/.test(language))
    bad('language must be a BCP 47 tag');
  let att: IssuerAttestation | null = null;
  if (d.issuer_attestation !== undefined && d.issuer_attestation !== null) {
    const a = d.issuer_attestation as Record<string, unknown>;
    if (
      typeof a !== 'object' ||
      !isNodeId(a.by) ||
      typeof a.sig !== 'string' ||
      !(a.cert_id === null || typeof a.cert_id === 'string')
    )
      bad('issuer_attestation must be {by, cert_id, sig}');
    att = { by: a.by as NodeID, cert_id: (a.cert_id as string | null) ?? null, sig: a.sig as string };
  }
  const target = parseTarget(d.target);
  return {
    cert_id: d.cert_id as string,
    alert_id: (d.alert_id as string | undefined) ?? null,
    severity: severity!,
    title,
    body,
    target,
    instructions,
    expires_at,
    evidence_claim: evidence_claim as string | null,
    correlation_id,
    category: oneOf(d.category, 'category', CAP_CATEGORIES, 'Safety')!,
    status: oneOf(d.status, 'status', STATUSES, 'actual')!,
    event: d.event === undefined ? title.slice(0, 64) : text(d.event, 'event', 1, 64),
    urgency: oneOf(d.urgency, 'urgency', URGENCIES, null),
    certainty: oneOf(d.certainty, 'certainty', CERTAINTIES, null),
    language,
    issuer_attestation: att,
  };
}

export const isoS = (ms: number): string =>
  new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

/** The bytes both the publisher and the cosigner sign: JCS(alert − signature − issuer_attestation). */
export const alertBodyOf = (a: Alert | AlertBody): AlertBody => {
  const { signature: _s, issuer_attestation: _a, ...rest } = a as Alert;
  return rest;
};

/** A cosigner signs a body (the authority app exports the unsigned body as JSON/QR for this). */
export function cosign(sign: Signer, by: NodeID, body: AlertBody, cert_id: string | null): IssuerAttestation {
  const s = sign(alertBodyOf(body) as unknown as Record<string, unknown>);
  return { by, cert_id, sig: s.signature };
}

export function verifyAlertSig(a: Alert): boolean {
  try {
    return verifyObject({ ...alertBodyOf(a), signature: a.signature } as never, a.publisher);
  } catch {
    return false;
  }
}
export function verifyAttestation(a: Alert): boolean {
  if (!a.issuer_attestation) return false;
  try {
    decodeSignature(a.issuer_attestation.sig);
    return verifyObject(
      { ...alertBodyOf(a), signature: a.issuer_attestation.sig } as never,
      a.issuer_attestation.by,
    );
  } catch {
    return false;
  }
}

export const alertSha = (a: Alert): string => sha256Hex(canonical(a));

export function stubOf(a: Alert): AlertStub {
  return {
    alert_id: a.alert_id,
    severity: a.severity,
    target: a.target,
    publisher: a.publisher,
    publisher_cert: a.publisher_cert,
    published_at: a.published_at,
    expires_at: a.expires_at,
    alert_sha: alertSha(a),
  };
}

export function verifyCancel(c: Cancel): boolean {
  try {
    return verifyObject(c as never, c.by);
  } catch {
    return false;
  }
}
