/**
 * Branded types for every alias of seed §4 (and the earlier-phase ones it reuses),
 * with strict parsers. A parser either returns the branded value or throws
 * `HnError('bad_request')` naming what is wrong.
 */
import { HnError } from './errors.js';
import { ULID_RE } from './ulid.js';

declare const brand: unique symbol;
export type Brand<T, B extends string> = T & { readonly [brand]: B };

export type NodeID = Brand<string, 'NodeID'>;
export type EventID = Brand<string, 'EventID'>;
export type AuthToken = Brand<string, 'AuthToken'>;
export type ShardID = Brand<string, 'ShardID'>; // "model:layer_range[:tier]"
export type ExpertID = Brand<string, 'ExpertID'>; // "human:..." | "model:..." | "service:..." | "external:..."
export type ExpertKind = 'human' | 'model' | 'service' | 'external';
export type ClaimID = Brand<string, 'ClaimID'>; // base32 of SHA-256 canonical claim
export type SourceID = Brand<string, 'SourceID'>;
export type EvidenceLevel = 'unverified' | 'cited' | 'cross_referenced' | 'attested' | 'disputed';
export type RoundID = Brand<string, 'RoundID'>; // ULID
export type LoraBeaconID = Brand<string, 'LoraBeaconID'>;
export type LoraDeviceID = Brand<string, 'LoraDeviceID'>;
export type AlertID = Brand<string, 'AlertID'>; // ULID
export type AlertSeverity = 'info' | 'advisory' | 'warning' | 'emergency' | 'extreme';
export type AckStatus = 'received' | 'acting' | 'need_help' | 'standing_down' | 'mistaken';
/** [west, south, east, north], WGS84 degrees (RFC 7946 order). */
export type Bbox = readonly [number, number, number, number];
export type TrustLevel = 'unknown' | 'member' | 'trusted' | 'anchor';
export type TrustRequired = TrustLevel | 'self';
export type Stability = 'experimental' | 'provisional' | 'beta' | 'stable' | 'deprecated';
export type Dtype = 'fp16' | 'fp32' | 'bf16' | 'int8';

export interface ProtocolVersion {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  readonly suffix: string;
}

export interface Tensor {
  dtype: Dtype;
  shape: number[];
  data: Uint8Array; // row-major, little-endian elements
}

export const EXPERT_KINDS: readonly ExpertKind[] = ['human', 'model', 'service', 'external'];
export const EVIDENCE_LEVELS: readonly EvidenceLevel[] = [
  'unverified',
  'cited',
  'cross_referenced',
  'attested',
  'disputed',
];
export const ALERT_SEVERITIES: readonly AlertSeverity[] = [
  'info',
  'advisory',
  'warning',
  'emergency',
  'extreme',
];
export const ACK_STATUSES: readonly AckStatus[] = [
  'received',
  'acting',
  'need_help',
  'standing_down',
  'mistaken',
];
export const TRUST_ORDER: readonly TrustLevel[] = ['unknown', 'member', 'trusted', 'anchor'];
export const DTYPE_BYTES: Record<Dtype, number> = { fp16: 2, fp32: 4, bf16: 2, int8: 1 };

function bad(what: string, v: unknown): never {
  const shown = typeof v === 'string' ? JSON.stringify(v.slice(0, 80)) : typeof v;
  throw new HnError('bad_request', `malformed ${what}: ${shown}`);
}

function str(what: string, v: unknown, re: RegExp, max = 256): string {
  if (typeof v !== 'string' || v.length > max || !re.test(v)) bad(what, v);
  return v;
}

export const NODE_ID_RE = /^ed25519:[A-Za-z0-9_-]{43}$/;
export const SIGNATURE_RE = /^ed25519:[A-Za-z0-9_-]{86}$/;

export const asEventID = (v: unknown): EventID => str('EventID', v, ULID_RE) as EventID;
export const asRoundID = (v: unknown): RoundID => str('RoundID', v, ULID_RE) as RoundID;
export const asAlertID = (v: unknown): AlertID => str('AlertID', v, ULID_RE) as AlertID;
/** ClaimID: RFC 4648 base32 (upper, no padding) of a 32-byte SHA-256: 52 characters. */
export const asClaimID = (v: unknown): ClaimID => str('ClaimID', v, /^[A-Z2-7]{52}$/) as ClaimID;
export const asSourceID = (v: unknown): SourceID => str('SourceID', v, /^\S{1,256}$/) as SourceID;
export const asLoraBeaconID = (v: unknown): LoraBeaconID =>
  str('LoraBeaconID', v, /^[0-9a-f]{8,64}$/) as LoraBeaconID;
export const asLoraDeviceID = (v: unknown): LoraDeviceID =>
  str('LoraDeviceID', v, /^[\x21-\x7e]{1,128}$/) as LoraDeviceID;
/** ShardID: "model:start-end[:tier]". */
export const SHARD_ID_RE = /^[A-Za-z0-9._\-/]{1,128}:\d{1,4}-\d{1,4}(:[a-z0-9_]{1,32})?$/;
export function asShardID(v: unknown): ShardID {
  const s = str('ShardID', v, SHARD_ID_RE);
  const range = s.split(':')[1]!.split('-').map(Number);
  if (range[0]! > range[1]!) bad('ShardID (range start > end)', v);
  return s as ShardID;
}
export const EXPERT_ID_RE = /^(human|model|service|external):[^\s]{1,200}$/;
export const asExpertID = (v: unknown): ExpertID => str('ExpertID', v, EXPERT_ID_RE) as ExpertID;
export const expertKindOf = (id: ExpertID): ExpertKind => id.slice(0, id.indexOf(':')) as ExpertKind;

export function asOneOf<T extends string>(what: string, allowed: readonly T[], v: unknown): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) bad(what, v);
  return v as T;
}
export const asEvidenceLevel = (v: unknown): EvidenceLevel => asOneOf('EvidenceLevel', EVIDENCE_LEVELS, v);
export const asAlertSeverity = (v: unknown): AlertSeverity => asOneOf('AlertSeverity', ALERT_SEVERITIES, v);
export const asAckStatus = (v: unknown): AckStatus => asOneOf('AckStatus', ACK_STATUSES, v);
export const asExpertKind = (v: unknown): ExpertKind => asOneOf('ExpertKind', EXPERT_KINDS, v);

export function asBbox(v: unknown): Bbox {
  if (!Array.isArray(v) || v.length !== 4 || !v.every((x) => typeof x === 'number' && Number.isFinite(x)))
    bad('Bbox', v);
  const [w, s, e, n] = v as number[];
  if (!(-180 <= w! && w! < e! && e! <= 180 && -90 <= s! && s! < n! && n! <= 90)) bad('Bbox (range)', v);
  return [w!, s!, e!, n!];
}

const PV_RE = /^(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})(?:-([0-9A-Za-z.-]{1,64}))?$/;
export function parseProtocolVersion(v: unknown): ProtocolVersion {
  const s = str('ProtocolVersion', v, PV_RE, 100);
  const m = PV_RE.exec(s)!;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), suffix: m[4] ?? '' };
}
export function formatProtocolVersion(v: ProtocolVersion): string {
  return `${v.major}.${v.minor}.${v.patch}${v.suffix ? `-${v.suffix}` : ''}`;
}
/** Semver-style precedence: a pre-release suffix sorts before the release. */
export function compareProtocolVersions(a: ProtocolVersion, b: ProtocolVersion): number {
  if (a.major !== b.major) return a.major - b.major;
  if (a.minor !== b.minor) return a.minor - b.minor;
  if (a.patch !== b.patch) return a.patch - b.patch;
  if (a.suffix === b.suffix) return 0;
  if (!a.suffix) return 1;
  if (!b.suffix) return -1;
  return a.suffix < b.suffix ? -1 : 1;
}

export function trustAtLeast(have: TrustLevel, need: TrustLevel): boolean {
  return TRUST_ORDER.indexOf(have) >= TRUST_ORDER.indexOf(need);
}

/** Community level of a node: null = not a member, 'revoked' = revoked. */
export type MembershipLookup = (nodeId: NodeID) => TrustLevel | 'revoked' | null;
