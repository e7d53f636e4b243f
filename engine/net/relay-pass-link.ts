/**
 * A room pass a person can carry (issue #18, attack 7): the join link of an invite community,
 * `<origin>/#join=<community id>&pass=<b64url(canonical JSON of the pass)>`, shown as text and QR.
 * The M13 invite blob stays as the spec fixes it (< 500 bytes); the pass rides next to the
 * community id in the fragment, which browsers never send to a server. `#join=<id>` without a pass
 * is the open community's link, exactly as before.
 *
 * The decoder reads bytes a stranger chose: it is bounded (RELAY_PASS_PARAM_MAX_CHARS), checks the
 * whole shape (fields, types, NodeIDs, times, signature form, chain depth) and throws
 * HnError('bad_request') for anything else. It does not verify signatures or expiry: the relay and
 * the node (checkRelayPass) do, against the room and the node that shows the pass.
 */
import { canonicalString } from '../core/canonical.js';
import { b64url, fromB64url, fromUtf8, utf8 } from '../core/encoding.js';
import { HnError } from '../core/errors.js';
import { NODE_ID_RE, SIGNATURE_RE, type NodeID } from '../core/types.js';
import { RELAY_PASS_MAX_CHAIN, parseWallClock, type RelayPass } from './relay-wire.js';

/** Longest `pass=` value accepted (a delegated pass is ~1.5 k characters). */
export const RELAY_PASS_PARAM_MAX_CHARS = 3000;
const B64URL_RE = /^[A-Za-z0-9_-]+$/;
const FIELDS = new Set(['v', 'type', 'room', 'node_id', 'expires_at', 'by', 'signature']);
const bad = (why: string) => new HnError('bad_request', `room pass in the link: ${why}`);

/** Encode a pass for a link: base64url of its canonical JSON (no padding). */
export function encodeRelayPassParam(pass: RelayPass): string {
  return b64url(utf8(canonicalString(pass)));
}

function shape(p: unknown, depth: number): RelayPass {
  if (!p || typeof p !== 'object' || Array.isArray(p)) throw bad('not an object');
  const r = p as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!FIELDS.has(k)) throw bad('unknown field');
  if (r.v !== 1 || r.type !== 'relay.pass') throw bad('not a relay.pass v1');
  if (typeof r.room !== 'string' || !NODE_ID_RE.test(r.room)) throw bad('room is not a NodeID');
  if (typeof r.node_id !== 'string' || !NODE_ID_RE.test(r.node_id)) throw bad('node_id is not a NodeID');
  if (parseWallClock(r.expires_at) === null) throw bad('expires_at is not a time');
  if (typeof r.signature !== 'string' || !SIGNATURE_RE.test(r.signature)) throw bad('malformed signature');
  if (r.by !== undefined) {
    if (depth >= RELAY_PASS_MAX_CHAIN) throw bad('chain too long');
    const by = shape(r.by, depth + 1);
    if (by.room !== r.room) throw bad('chain crosses rooms');
  }
  return r as unknown as RelayPass;
}

/** Decode a `pass=` value; HnError('bad_request') when it is not a well-formed pass. */
export function decodeRelayPassParam(s: unknown): RelayPass {
  if (typeof s !== 'string' || s.length === 0) throw bad('empty');
  if (s.length > RELAY_PASS_PARAM_MAX_CHARS) throw bad('too long');
  if (!B64URL_RE.test(s)) throw bad('not base64url');
  let json: unknown;
  try {
    json = JSON.parse(fromUtf8(fromB64url(s)));
  } catch {
    throw bad('not JSON');
  }
  return shape(json, 1);
}

/** The join link of `community`, carrying `pass` (invite communities) when given. */
export function joinLink(origin: string, community: NodeID, pass?: RelayPass): string {
  if (!NODE_ID_RE.test(community)) throw new HnError('bad_request', 'a join link names a community id');
  if (pass && pass.room !== community) throw new HnError('bad_request', 'the pass is for another room');
  return `${origin}/#join=${community}${pass ? `&pass=${encodeRelayPassParam(pass)}` : ''}`;
}

export interface JoinFragment {
  community: NodeID;
  /** the encoded pass (decode with decodeRelayPassParam), or null */
  pass: string | null;
}

/**
 * Read `#join=<community id>` or `#join=<community id>&pass=<…>`; null for any other fragment.
 * The pass is returned still encoded, so that a malformed one can be reported, not ignored.
 */
export function parseJoinFragment(hash: string): JoinFragment | null {
  const m = /^#join=(ed25519:[A-Za-z0-9_-]{43})(?:&pass=([^&]*))?$/.exec(hash);
  if (!m) return null;
  return { community: m[1] as NodeID, pass: m[2] === undefined ? null : m[2] };
}

/** Decode the fragment's pass and check it names `community` (bad_request otherwise). */
export function passForCommunity(f: JoinFragment): RelayPass | null {
  if (f.pass === null) return null;
  const p = decodeRelayPassParam(f.pass);
  if (p.room !== f.community) throw bad('the pass is for another community');
  return p;
}
