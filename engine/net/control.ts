/**
 * The CONTROL channel's messages (core digest §5.3–§5.6, §6.6) as one typed union, plus the
 * small validators the handshake, RPC and sync parts of a PeerSession share. Every field that
 * comes from the peer is `unknown` until checked: the union says what we send and what a
 * well-formed peer sends, never what we trust.
 */
import { HnError, isErrorCode, type ErrorObject } from '../core/errors.js';
import type { NodeID } from '../core/types.js';
import type { EventEnvelope, Heads } from '../events/log.js';

export interface LinkHello {
  type: 'link.hello';
  v: 1;
  from: NodeID;
  to: NodeID | null;
  community_id: NodeID;
  nonce: string;
  transport: string;
  app_version: string;
  contract_version: string;
  protocol_versions?: string[];
  descriptor?: Record<string, unknown>;
}
export interface LinkAuth {
  type: 'link.auth';
  from: NodeID;
  to: NodeID;
  community_id: NodeID;
  my_nonce: string;
  peer_nonce: string;
  dtls_local: string | null;
  dtls_remote: string | null;
  ts: number;
  signature: string;
}
export interface CallMsg {
  type: 'call';
  id: string;
  capability: string;
  version: string;
  from: NodeID;
  community: NodeID;
  timestamp: number;
  body: unknown;
  signature: string;
  stream: boolean;
  timeout_ms: number;
}
export interface ResMsg {
  type: 'res';
  id: string;
  from: NodeID;
  timestamp: number;
  body: { output: unknown; meta: Record<string, unknown> };
  signature: string;
}
export interface SyncHeadsRes {
  type: 'sync.heads.res';
  id: string;
  heads?: Heads;
  /** set instead of `heads` when the request was refused (rate_limited) */
  error?: ErrorObject;
  /** our reply was capped at SYNC_REPLY_MAX_BYTES: ask again for the rest */
  more?: true;
}

export type ControlMessage =
  | LinkHello
  | LinkAuth
  | { type: 'link.close'; reason: string; code?: string }
  | { type: 'ping'; nonce: string; ts: number }
  | { type: 'pong'; nonce: unknown; ts: unknown }
  | CallMsg
  | ResMsg
  | { type: 'err'; id: string; error: ErrorObject }
  | { type: 'frame'; id: string; seq: number; event: string; data: unknown }
  | { type: 'ack'; id: string; upto: number }
  | { type: 'cancel'; id: string }
  /** a module's link message (module kit), routed by the module host */
  | { type: 'mod.msg'; t: string; p: unknown }
  | { type: 'ev.push'; community_id: NodeID; events: EventEnvelope[] }
  | { type: 'sync.heads'; id: string; heads: Heads }
  | SyncHeadsRes
  | {
      type: 'sync.events';
      id: string;
      batch: number;
      community_id: NodeID;
      events: EventEnvelope[];
    }
  | {
      type: 'sync.events.res';
      id: string;
      batch: unknown;
      accepted: number;
      duplicates: number;
      rejected: unknown[];
    };

export type ControlType = ControlMessage['type'];

/** What arrives: a `type` we switch on, every other field unchecked. */
export type Incoming = { type: string } & Record<string, any>;

/** Largest link.hello we read (the fields we know fit in well under 1 KiB; the rest is padding). */
export const LINK_HELLO_MAX_BYTES = 4096;

export function checkHeads(h: unknown): Heads {
  if (
    !h ||
    typeof h !== 'object' ||
    typeof (h as Heads).authors !== 'object' ||
    (h as Heads).authors === null ||
    Array.isArray((h as Heads).authors)
  )
    throw new HnError('bad_request', 'malformed heads');
  return h as Heads;
}

/** An error object from a peer, reduced to the fields and sizes we pass on. */
export function sanitizeError(e: unknown): ErrorObject {
  const o = (e && typeof e === 'object' ? e : {}) as Record<string, unknown>;
  const out: ErrorObject = { error: isErrorCode(o.error) ? o.error : 'internal_error' };
  if (typeof o.message === 'string') out.message = o.message.slice(0, 500);
  if (typeof o.retry_after_ms === 'number' && Number.isFinite(o.retry_after_ms))
    out.retry_after_ms = Math.max(0, Math.min(3_600_000, o.retry_after_ms));
  if (typeof o.field === 'string') out.field = o.field.slice(0, 200);
  if (typeof o.schema_hash_expected === 'string')
    out.schema_hash_expected = o.schema_hash_expected.slice(0, 200);
  if (Array.isArray(o.alt_capabilities))
    out.alt_capabilities = o.alt_capabilities
      .filter((x) => typeof x === 'string' && x.length <= 140)
      .slice(0, 32) as string[];
  return out;
}
