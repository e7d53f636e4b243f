/**
 * The relay's wire protocol (core digest §8.3–§8.5), shared by the relay server (`relay/`) and
 * the engine's relay client: constants, message types, the forward-frame codec, the signed
 * hello, and the input bounds both sides apply (display names, hello size).
 */
import { HnError } from '../core/errors.js';
import type { NodeID } from '../core/types.js';
import { NODE_ID_RE } from '../core/types.js';
import { signObject, verifyObject, type KeyPair } from '../identity/identity.js';

// ---------------------------------------------------------------------------------------
// Protocol constants (relay wire, core §8.3–§8.5)
// ---------------------------------------------------------------------------------------

/** WebSocket subprotocol of the relay (core §8.2). */
export const RELAY_SUBPROTOCOL = 'hearthnet-relay.v1';
/** `v` of `relay.hello`. */
export const RELAY_HELLO_VERSION = 1;
/** First byte of every binary forward frame (core §8.4). */
export const RELAY_FORWARD_VERSION = 0x01;
/** Largest binary forward frame, header included (core §8.4). */
export const RELAY_FORWARD_MAX_BYTES = 128 * 1024;
/** Length of a full NodeID in ASCII ("ed25519:" + 43 chars). */
export const RELAY_NODE_ID_CHARS = 51;
/** version + addr_len + addr. */
export const RELAY_FORWARD_HEADER_BYTES = 2 + RELAY_NODE_ID_CHARS;
/** Largest payload (link frame or E2E record) in one forward frame. */
export const RELAY_FORWARD_MAX_PAYLOAD_BYTES = RELAY_FORWARD_MAX_BYTES - RELAY_FORWARD_HEADER_BYTES;
/** Largest `signal.data` (canonical JSON text, core §8.3). */
export const RELAY_SIGNAL_MAX_BYTES = 64 * 1024;
/** Largest text message the relay accepts: a maximal signal plus its envelope. */
export const RELAY_TEXT_MAX_BYTES = RELAY_SIGNAL_MAX_BYTES + 1024;
/** The client must send `hello` within this many seconds of the challenge. */
export const RELAY_HELLO_TIMEOUT_SECONDS = 10;
/** `hello.ts` must lie within ± this many seconds of the relay's clock. */
export const RELAY_HELLO_SKEW_SECONDS = 300;
/** Clock offsets smaller than this are not applied (core §8.6). */
export const RELAY_CLOCK_APPLY_THRESHOLD_MS = 2000;
/** Close codes used by the relay. */
export const RELAY_CLOSE_REPLACED = 4001;
export const RELAY_CLOSE_POLICY = 4008;
export const RELAY_CLOSE_GOING_AWAY = 1001;
/** Default send-side high-water mark of the client's socket before `forward()` waits. */
export const RELAY_CLIENT_SEND_HIGH_WATER_BYTES = 1024 * 1024;

/** Error codes the relay puts in `{t:"error"}` (core §8.3). */
export type RelayErrorCode =
  | 'bad_request'
  | 'invalid_signature'
  | 'expired'
  | 'rate_limited'
  | 'capacity_exceeded'
  | 'forward_target_offline'
  | 'revoked';
export const RELAY_ERROR_CODES: readonly RelayErrorCode[] = [
  'bad_request',
  'invalid_signature',
  'expired',
  'rate_limited',
  'capacity_exceeded',
  'forward_target_offline',
  'revoked',
];

export interface RelayPeerInfo {
  node_id: NodeID;
  display_name: string;
  joined_at: string;
}

/** Messages the relay sends (text frames). */
export type RelayServerMessage =
  | { t: 'challenge'; nonce: string; server_time: string }
  | { t: 'welcome'; room: NodeID; node_id: NodeID; peers: RelayPeerInfo[]; server_time: string }
  | { t: 'peer_joined'; node_id: NodeID; display_name: string; joined_at: string }
  | { t: 'peer_left'; node_id: NodeID }
  | { t: 'signal'; from: NodeID; data: unknown }
  | { t: 'pong'; server_time: string }
  | { t: 'error'; code: RelayErrorCode; message?: string; retry_after_ms?: number; to?: NodeID }
  /**
   * Per-destination flow (issue #18): frames to `peer` are held at the relay because `peer` is not
   * reading; the client holds further frames to it (and only to it) until `paused: false`.
   */
  | { t: 'flow'; peer: NodeID; paused: boolean };

/** Messages a client sends (text frames). `hello` is signed over every member except `signature`. */
export type RelayClientMessage =
  | {
      t: 'hello';
      v: 1;
      type: 'relay.hello';
      node_id: NodeID;
      room: NodeID;
      nonce: string;
      ts: string;
      display_name?: string;
      /** Membership pass of an invite community's room (see RelayPass); absent in open rooms. */
      pass?: RelayPass;
      signature: string;
    }
  | { t: 'signal'; to: NodeID; data: unknown }
  | { t: 'revoke'; revocation: RelayRevocation }
  | { t: 'ping' };

// ---------------------------------------------------------------------------------------
// Codec helpers shared with relay/
// ---------------------------------------------------------------------------------------

/** RFC 3339 UTC with milliseconds (`server_time`, `hello.ts`). */
export const wallClockMs = (ms: number): string => new Date(ms).toISOString();

const WALL_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;
/** Parse an RFC 3339 UTC timestamp (`YYYY-MM-DDTHH:MM:SS[.mmm]Z`); null when malformed. */
export function parseWallClock(s: unknown): number | null {
  if (typeof s !== 'string' || !WALL_RE.test(s)) return null;
  const ms = Date.parse(s);
  return Number.isFinite(ms) ? ms : null;
}

/** Build a forward frame: `[0x01][addr_len][addr ASCII][payload]`. */
export function encodeForwardFrame(addr: string, payload: Uint8Array): Uint8Array {
  if (!NODE_ID_RE.test(addr)) throw new HnError('bad_request', 'forward address is not a NodeID');
  if (RELAY_FORWARD_HEADER_BYTES + payload.length > RELAY_FORWARD_MAX_BYTES) {
    throw new HnError(
      'too_large',
      `forward payload of ${payload.length} bytes exceeds ${RELAY_FORWARD_MAX_PAYLOAD_BYTES}`,
    );
  }
  const out = new Uint8Array(RELAY_FORWARD_HEADER_BYTES + payload.length);
  out[0] = RELAY_FORWARD_VERSION;
  out[1] = RELAY_NODE_ID_CHARS;
  for (let i = 0; i < RELAY_NODE_ID_CHARS; i++) out[2 + i] = addr.charCodeAt(i);
  out.set(payload, RELAY_FORWARD_HEADER_BYTES);
  return out;
}

/** Parse a forward frame; throws `bad_request` on a malformed header. The payload is a view. */
export function decodeForwardFrame(buf: Uint8Array): { addr: NodeID; payload: Uint8Array } {
  if (buf.length < RELAY_FORWARD_HEADER_BYTES) throw new HnError('bad_request', 'forward frame too short');
  if (buf[0] !== RELAY_FORWARD_VERSION) throw new HnError('bad_request', 'unknown forward frame version');
  if (buf[1] !== RELAY_NODE_ID_CHARS) throw new HnError('bad_request', 'bad forward address length');
  let addr = '';
  for (let i = 0; i < RELAY_NODE_ID_CHARS; i++) addr += String.fromCharCode(buf[2 + i]!);
  if (!NODE_ID_RE.test(addr)) throw new HnError('bad_request', 'forward address is not a NodeID');
  return { addr: addr as NodeID, payload: buf.subarray(RELAY_FORWARD_HEADER_BYTES) };
}

/** The signed `hello` message answering a challenge. */
export function buildRelayHello(
  kp: KeyPair,
  room: NodeID,
  nonce: string,
  tsMs: number,
  displayName?: string,
  pass?: RelayPass,
): Extract<RelayClientMessage, { t: 'hello' }> {
  const body: Record<string, unknown> = {
    t: 'hello',
    v: RELAY_HELLO_VERSION,
    type: 'relay.hello',
    node_id: kp.nodeId,
    room,
    nonce,
    ts: wallClockMs(tsMs),
  };
  if (displayName !== undefined && displayName !== '') body.display_name = displayName;
  if (pass !== undefined) body.pass = pass;
  return signObject(kp, body) as unknown as Extract<RelayClientMessage, { t: 'hello' }>;
}

/** Largest `hello` text message (its known fields fit in well under 1 KiB). */
export const RELAY_HELLO_MAX_BYTES = 2048;
/** Longest display name (UTF-16 code units). */
export const RELAY_DISPLAY_NAME_MAX = 64;
// C0/C1 controls, bidi embeddings/overrides/isolates, zero-width and line/paragraph separators
// eslint-disable-next-line no-control-regex
const UNSAFE_NAME_RE = /[\u0000-\u001f\u007f-\u009f\u200b\u200e\u200f\u2028-\u202e\u2060-\u2069\ufeff]/;

/** A display name is refused when too long or when it carries controls or bidi overrides. */
export function isSafeDisplayName(v: unknown): v is string {
  return typeof v === 'string' && v.length <= RELAY_DISPLAY_NAME_MAX && !UNSAFE_NAME_RE.test(v);
}

/** The destination of a forward frame, read in place; null when the header is malformed. */
export function forwardFrameAddr(buf: Uint8Array): NodeID | null {
  if (
    buf.length < RELAY_FORWARD_HEADER_BYTES ||
    buf[0] !== RELAY_FORWARD_VERSION ||
    buf[1] !== RELAY_NODE_ID_CHARS
  )
    return null;
  let addr = '';
  for (let i = 0; i < RELAY_NODE_ID_CHARS; i++) addr += String.fromCharCode(buf[2 + i]!);
  return NODE_ID_RE.test(addr) ? (addr as NodeID) : null;
}

/** Rewrite a forward frame's address in place (same length): relay → receiver names the sender. */
export function rewriteForwardAddr(buf: Uint8Array, addr: NodeID): void {
  for (let i = 0; i < RELAY_NODE_ID_CHARS; i++) buf[2 + i] = addr.charCodeAt(i);
}

// ---------------------------------------------------------------------------------------
// Room passes (issue #18, attack 7): membership proof the relay can check without state
// ---------------------------------------------------------------------------------------

/**
 * A room pass: the community key (the founder's key, whose NodeID is the community id and the
 * room name) signs "`node_id` is a member of `room` until `expires_at`". A hello that carries a
 * valid pass joins the room's members; a hello without one joins the room's open side, which
 * never sees, signals or forwards to the members. The relay checks it with the room id alone
 * (no community state, no keys), so an invite community's room tells a stranger who knows its
 * id nothing about who is inside.
 */
export interface RelayPass {
  v: 1;
  type: 'relay.pass';
  room: NodeID;
  node_id: NodeID;
  expires_at: string;
  /**
   * Delegation: the issuer's own pass, signed by the community key. Present, this pass is signed
   * by `by.node_id` (a member inviting someone), not by the community key; absent, by the founder.
   */
  by?: RelayPass;
  signature: string;
}
/** Longest pass chain: community key → member → invitee (a delegated pass cannot delegate). */
export const RELAY_PASS_MAX_CHAIN = 2;
/** Longest lifetime of a delegated pass (an invite's admission until the founder sends its own). */
export const RELAY_PASS_DELEGATED_MAX_TTL_SECONDS = 7 * 24 * 3600;
/** Longest pass lifetime the relay accepts (a pass names its own expiry; the founder renews). */
export const RELAY_PASS_MAX_TTL_SECONDS = 90 * 24 * 3600;
/** Default lifetime of a pass issued by `issueRelayPass`. */
export const RELAY_PASS_DEFAULT_TTL_SECONDS = 30 * 24 * 3600;

/** The founder (holder of the community key) issues a pass for `nodeId` in its community's room. */
export function issueRelayPass(
  community: KeyPair,
  nodeId: NodeID,
  nowMs: number,
  ttlSeconds = RELAY_PASS_DEFAULT_TTL_SECONDS,
): RelayPass {
  if (!NODE_ID_RE.test(nodeId)) throw new HnError('bad_request', 'a pass names a NodeID');
  if (!(ttlSeconds > 0 && ttlSeconds <= RELAY_PASS_MAX_TTL_SECONDS))
    throw new HnError('bad_request', `pass lifetime must be in (0, ${RELAY_PASS_MAX_TTL_SECONDS}] s`);
  const body = {
    v: 1 as const,
    type: 'relay.pass' as const,
    room: community.nodeId,
    node_id: nodeId,
    expires_at: wallClockMs(nowMs + ttlSeconds * 1000),
  };
  return signObject(community, body) as unknown as RelayPass;
}

const PASS_KEYS = new Set(['v', 'type', 'room', 'node_id', 'expires_at', 'by', 'signature']);

/**
 * A member holding a founder-signed pass (`own`) delegates admission to `invitee`: the pass is
 * signed by the member and carries `own` as `by`; it expires at the earlier of `own` and
 * `ttlSeconds` (≤ RELAY_PASS_DELEGATED_MAX_TTL_SECONDS). `unauthorized` when `own` is not a
 * direct pass of `member`, `expired` when it has run out.
 */
export function delegateRelayPass(
  member: KeyPair,
  own: RelayPass,
  invitee: NodeID,
  nowMs: number,
  ttlSeconds = RELAY_PASS_DELEGATED_MAX_TTL_SECONDS,
): RelayPass {
  if (!NODE_ID_RE.test(invitee)) throw new HnError('bad_request', 'a pass names a NodeID');
  if (!(ttlSeconds > 0 && ttlSeconds <= RELAY_PASS_DELEGATED_MAX_TTL_SECONDS))
    throw new HnError(
      'bad_request',
      `delegated lifetime must be in (0, ${RELAY_PASS_DELEGATED_MAX_TTL_SECONDS}] s`,
    );
  if (own.by !== undefined || own.node_id !== member.nodeId)
    throw new HnError('unauthorized', 'only a direct pass of this node can be delegated');
  const bad = checkRelayPass(own, own.room, member.nodeId, nowMs);
  if (bad) throw new HnError(bad === 'expired' ? 'expired' : 'unauthorized', `own pass: ${bad}`);
  const until = Math.min(nowMs + ttlSeconds * 1000, parseWallClock(own.expires_at)!);
  const body = {
    v: 1 as const,
    type: 'relay.pass' as const,
    room: own.room,
    node_id: invitee,
    expires_at: wallClockMs(until),
    by: own,
  };
  return signObject(member, body) as unknown as RelayPass;
}

/**
 * Check a pass for (`room`, `nodeId`) at `nowMs`: null when valid, else the relay error code
 * (`bad_request` malformed, for another room/node, or a chain longer than RELAY_PASS_MAX_CHAIN
 * or outliving its parent; `expired`; `invalid_signature` on any link of the chain).
 */
export function checkRelayPass(
  p: unknown,
  room: NodeID,
  nodeId: NodeID,
  nowMs: number,
  depth = 1,
): RelayErrorCode | null {
  if (depth > RELAY_PASS_MAX_CHAIN) return 'bad_request';
  if (!p || typeof p !== 'object' || Array.isArray(p)) return 'bad_request';
  const r = p as Record<string, unknown>;
  if (Object.keys(r).some((k) => !PASS_KEYS.has(k))) return 'bad_request';
  if (r.v !== 1 || r.type !== 'relay.pass' || r.room !== room || r.node_id !== nodeId) return 'bad_request';
  if (typeof r.signature !== 'string') return 'bad_request';
  const exp = parseWallClock(r.expires_at);
  if (exp === null) return 'bad_request';
  if (exp <= nowMs) return 'expired';
  if (r.by === undefined) {
    if (exp - nowMs > (RELAY_PASS_MAX_TTL_SECONDS + RELAY_HELLO_SKEW_SECONDS) * 1000) return 'bad_request';
    return verifyObject(r, room) ? null : 'invalid_signature';
  }
  // delegated: the parent is a valid pass of the signer, and this one ends no later than it
  const by = r.by as Record<string, unknown> | null;
  if (!by || typeof by !== 'object' || !NODE_ID_RE.test(String(by.node_id))) return 'bad_request';
  const issuer = by.node_id as NodeID;
  const parent = checkRelayPass(by, room, issuer, nowMs, depth + 1);
  if (parent) return parent;
  if (exp > parseWallClock(by.expires_at)!) return 'bad_request';
  if (exp - nowMs > (RELAY_PASS_DELEGATED_MAX_TTL_SECONDS + RELAY_HELLO_SKEW_SECONDS) * 1000)
    return 'bad_request';
  return verifyObject(r, issuer) ? null : 'invalid_signature';
}

/**
 * Early revocation of a room pass: the community key signs "`node_id` holds no pass for `room`
 * from `revoked_at`". The relay checks it with the room id alone (as a pass), then refuses that
 * node's passes and the passes it delegated, and closes its members-side connection. The founder's
 * node sends one per revoked member (client → relay `{t:"revoke", revocation}`).
 */
export interface RelayRevocation {
  v: 1;
  type: 'relay.revoke';
  room: NodeID;
  node_id: NodeID;
  revoked_at: string;
  signature: string;
}
const REVOCATION_KEYS = new Set(['v', 'type', 'room', 'node_id', 'revoked_at', 'signature']);

/** The founder (community key) revokes `nodeId`'s room passes. */
export function revokeRelayPass(community: KeyPair, nodeId: NodeID, nowMs: number): RelayRevocation {
  if (!NODE_ID_RE.test(nodeId)) throw new HnError('bad_request', 'a revocation names a NodeID');
  const body = {
    v: 1 as const,
    type: 'relay.revoke' as const,
    room: community.nodeId,
    node_id: nodeId,
    revoked_at: wallClockMs(nowMs),
  };
  return signObject(community, body) as unknown as RelayRevocation;
}

/** Check a revocation for `room`: null when valid, else `bad_request` or `invalid_signature`. */
export function checkRelayRevocation(r: unknown, room: NodeID): RelayErrorCode | null {
  if (!r || typeof r !== 'object' || Array.isArray(r)) return 'bad_request';
  const o = r as Record<string, unknown>;
  if (Object.keys(o).some((k) => !REVOCATION_KEYS.has(k))) return 'bad_request';
  if (o.v !== 1 || o.type !== 'relay.revoke' || o.room !== room) return 'bad_request';
  if (typeof o.node_id !== 'string' || !NODE_ID_RE.test(o.node_id) || o.node_id === room)
    return 'bad_request';
  if (parseWallClock(o.revoked_at) === null || typeof o.signature !== 'string') return 'bad_request';
  return verifyObject(o, room) ? null : 'invalid_signature';
}
