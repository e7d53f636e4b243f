/**
 * X08 session grants (host side of `node.tensors`): what the authorising capability hands the caller, the
 * negotiation a host offers, and the checks on what a peer sends back (purpose, capability refs, grants).
 * Pure functions and types; the stateful part is `TensorHost` (host.ts).
 */
import type { HearthnetConfig } from '../../core/config.js';
import { TENSOR_CHUNK_BYTES } from '../../core/constants.js';
import { HnError } from '../../core/errors.js';
import type { Dtype, NodeID } from '../../core/types.js';
import { ULID_RE } from '../../core/ulid.js';
import type { BytePort } from '../../net/port.js';
import type { LinkKind } from '../../tokens/session.js';
import {
  DTYPE_CODE,
  HEADER_BYTES,
  MAX_CHUNK_HEADER_BYTES,
  MAX_FLOW_WINDOW,
  type Negotiation,
} from './frame.js';
import type { TensorSession, TensorTransportConfig } from './session.js';

/** What the host needs of a peer link (a `PeerSession` fits). */
export interface TensorLink {
  readonly peer: NodeID;
  readonly kind: 'direct' | 'relay' | 'memory';
  readonly state: string;
  readonly mux: { channel(id: number): BytePort };
}

export type TensorTransportSection = HearthnetConfig['tensor_transport'];

export interface AuthoriseArgs {
  /** The bus caller (`ctx.caller`): token subject and the only node that may open the session. */
  caller: NodeID;
  /** Ref (`name@X.Y`) of the capability that authorises the session (the one whose handler calls this). */
  capability: string;
  /** X08 wire purpose (1..128 chars); a handler must be registered for it with `onSession`. */
  purpose: string;
  /** The caller's requested negotiation, if its request carried one; intersected with this node's config. */
  negotiation?: Partial<Negotiation>;
  /**
   * Capability ref the token is scoped to; default `capability`. M26 passes
   * `experimental.distributed_llm.shard.forward@1.0` to follow core §7.5 literally.
   */
  scope?: string;
  /** Token/session lifetime cap in seconds (≤ tensor_transport.max_session_lifetime_seconds). */
  ttlSeconds?: number;
}

/** What the authorising handler returns to the caller (core §7.5 shard.connect output, generic part). */
export interface TensorGrant {
  session_id: string;
  channel_id: number;
  token: string;
  negotiation: Negotiation;
  /** Unix seconds: the session is closed at this time regardless. */
  expires_at: number;
  path: LinkKind;
}

export interface OpenOptions {
  /** Ref of the authorising capability on the peer. */
  capability: string;
  /** Its request body. */
  input?: unknown;
  purpose: string;
  negotiation?: Partial<Negotiation>;
  timeout_ms?: number;
  signal?: AbortSignal;
}

export interface TensorSessionInfo {
  session: TensorSession;
  peer: NodeID;
  role: 'host' | 'caller';
  purpose: string;
  capability: string;
  channel_id: number;
  path: LinkKind;
}

export type SessionHandler = (session: TensorSession, info: Omit<TensorSessionInfo, 'session'>) => void;

export interface TensorSessionSummary {
  session_id: string;
  peer: NodeID;
  role: 'host' | 'caller';
  purpose: string;
  channel_id: number;
  path: LinkKind;
  state: string;
}

const CAP_REF_RE = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+@(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})$/;
export const MAX_CHANNEL_ID = 0xffffffff;
/** Largest X08 frame a link channel carries (LinkMux X08_CAP) less the X08 frame header overhead. */
const LINK_CHUNK_MAX = TENSOR_CHUNK_BYTES;

export function linkKindOf(kind: TensorLink['kind']): LinkKind {
  return kind === 'relay' ? 'relayed' : kind;
}

/** The node's tensor_transport config section as a TensorSession config. */
export function sessionConfig(c: TensorTransportSection): Partial<TensorTransportConfig> {
  return {
    enabled: c.enabled,
    default_dtype: c.default_dtype as Dtype,
    chunk_bytes: c.chunk_bytes,
    flow_control_window: c.flow_control_window,
    compression_threshold_bytes: c.compression_threshold_bytes,
    compression_level: c.compression_level,
    keepalive_seconds: c.keepalive_seconds,
    max_session_lifetime_seconds: c.max_session_lifetime_seconds,
    max_concurrent_sessions: c.max_concurrent_sessions,
    rx_buffer_bytes_max: c.rx_buffer_bytes_max,
  };
}

const isDtype = (x: unknown): x is Dtype =>
  typeof x === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_CODE, x);
const posInt = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 1;

/** Only well-typed negotiation fields survive (the values come from the peer). */
export function cleanNegotiation(n: unknown): Partial<Negotiation> {
  if (!n || typeof n !== 'object' || Array.isArray(n)) return {};
  const o = n as Record<string, unknown>;
  const out: Partial<Negotiation> = {};
  if (isDtype(o.preferred_dtype)) out.preferred_dtype = o.preferred_dtype;
  if (o.compression === 'zstd' || o.compression === 'none') out.compression = o.compression;
  if (posInt(o.max_chunk_bytes)) out.max_chunk_bytes = o.max_chunk_bytes;
  if (posInt(o.flow_window)) out.flow_window = o.flow_window;
  return out;
}

/** This node's offer for a session, intersected with a requested negotiation. */
export function hostNegotiation(
  c: TensorTransportSection,
  channelMax: number,
  req: Partial<Negotiation> = {},
): Negotiation {
  const r = cleanNegotiation(req);
  const portMax = Math.max(1, channelMax - HEADER_BYTES - MAX_CHUNK_HEADER_BYTES);
  return {
    preferred_dtype: r.preferred_dtype ?? (isDtype(c.default_dtype) ? c.default_dtype : 'fp32'),
    compression: r.compression ?? 'zstd',
    max_chunk_bytes: Math.max(
      1,
      Math.min(r.max_chunk_bytes ?? c.chunk_bytes, c.chunk_bytes, LINK_CHUNK_MAX, portMax),
    ),
    flow_window: Math.max(
      1,
      Math.min(r.flow_window ?? c.flow_control_window, c.flow_control_window, MAX_FLOW_WINDOW),
    ),
  };
}

export function checkPurpose(p: unknown): void {
  if (typeof p !== 'string' || p.length < 1 || p.length > 128)
    throw new HnError('bad_request', 'purpose must be 1..128 characters');
}

export function checkRef(ref: unknown, what: string): string {
  if (typeof ref !== 'string' || ref.length > 140 || !CAP_REF_RE.test(ref))
    throw new HnError('bad_request', `${what} must be a capability ref name@MAJOR.MINOR`);
  return ref;
}

export function parseGrant(out: unknown): {
  session_id: string;
  channel_id: number;
  token: string;
  negotiation: Partial<Negotiation>;
} {
  const o = (out && typeof out === 'object' ? out : {}) as Record<string, unknown>;
  if (typeof o.session_id !== 'string' || !ULID_RE.test(o.session_id))
    throw new HnError('bad_request', 'the peer returned no valid session_id');
  if (
    !Number.isInteger(o.channel_id) ||
    (o.channel_id as number) < 1 ||
    (o.channel_id as number) > MAX_CHANNEL_ID
  )
    throw new HnError('bad_request', 'the peer returned no valid channel_id');
  if (typeof o.token !== 'string' || o.token.length < 1 || o.token.length > 2048)
    throw new HnError('bad_request', 'the peer returned no valid session token');
  return {
    session_id: o.session_id,
    channel_id: o.channel_id as number,
    token: o.token,
    negotiation: cleanNegotiation(o.negotiation),
  };
}
