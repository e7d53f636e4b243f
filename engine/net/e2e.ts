/**
 * The end-to-end key agreement and record layer of relayed links (see relayed-port.ts for the
 * protocol): signed X25519 offers, HKDF key schedule, ChaCha20-Poly1305 records with implicit
 * sequential counters.
 */
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { expand, extract } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { canonical } from '../core/canonical.js';
import { b64url, bytesEqual, concatBytes, fromB64url, randomBytes, utf8 } from '../core/encoding.js';
import { HnError } from '../core/errors.js';
import type { NodeID } from '../core/types.js';
import { isNodeId, signObject, verifyObject, type KeyPair } from '../identity/identity.js';
import { RELAY_HELLO_SKEW_SECONDS, parseWallClock, wallClockMs } from './relay-wire.js';

export const E2E_SUITE = 'x25519-hkdf-sha256-chacha20poly1305';
export const E2E_RECORD_OFFER = 0x01;
export const E2E_RECORD_SEALED = 0x02;
export const INNER_CONFIRM = 0x00;
export const INNER_DATA = 0x01;
export const INNER_CLOSE = 0x02;
const TAG_BYTES = 4;
const AEAD_TAG_BYTES = 16;
/** Bytes a sealed record adds to a payload: type + session tag + inner type + Poly1305 tag. */
export const E2E_OVERHEAD_BYTES = 1 + TAG_BYTES + 1 + AEAD_TAG_BYTES;
export const OFFER_MAX_BYTES = 2048;
export const CLOSE_REASON_MAX_BYTES = 200;
/** Messages a raw relay pipe holds before its receiver registers. */
export const PIPE_PREOPEN_MAX_MESSAGES = 1024;

const enc = (s: string) => utf8(s);
const INFO_LO_HI = enc('hearthnet/e2e/v1 key lo>hi');
const INFO_HI_LO = enc('hearthnet/e2e/v1 key hi>lo');
const INFO_TAG = enc('hearthnet/e2e/v1 session tag');
const INFO_BINDING = enc('hearthnet/e2e/v1 channel binding');

// ---------------------------------------------------------------------------------------
// Key agreement primitives (usable on their own, e.g. inside link.auth)
// ---------------------------------------------------------------------------------------

export interface E2eOffer {
  type: 'link.e2e.offer';
  v: 1;
  suite: typeof E2E_SUITE;
  from: NodeID;
  to: NodeID;
  eph: string;
  ts: string;
  signature: string;
}

export interface E2eHandshake {
  readonly offer: E2eOffer;
  /** Verify the peer's offer and derive the session; throws HnError on any failure. */
  complete(peerOffer: unknown): E2eSession;
}

export interface E2eOptions {
  self: KeyPair;
  peer: NodeID;
  /** Clock for `ts` (default Date.now); pass the relay-corrected clock where there is one. */
  now?: () => number;
}

/** Start a key agreement: a fresh X25519 ephemeral key, signed by our Ed25519 identity. */
export function createE2eHandshake(opts: E2eOptions): E2eHandshake {
  const { self, peer } = opts;
  const now = opts.now ?? Date.now;
  if (!isNodeId(peer)) throw new HnError('bad_request', 'peer is not a NodeID');
  if (peer === self.nodeId) throw new HnError('bad_request', 'no E2E session with oneself');
  const secret = randomBytes(32);
  const ephPub = x25519.getPublicKey(secret);
  const offer = signObject(self, {
    type: 'link.e2e.offer',
    v: 1,
    suite: E2E_SUITE,
    from: self.nodeId,
    to: peer,
    eph: b64url(ephPub),
    ts: wallClockMs(now()),
  }) as unknown as E2eOffer;
  let used = false;
  return {
    offer,
    complete(peerOffer: unknown): E2eSession {
      if (used) throw new HnError('bad_request', 'handshake already completed');
      const theirs = checkOffer(peerOffer, self.nodeId, peer, now());
      let shared: Uint8Array;
      try {
        shared = x25519.getSharedSecret(secret, fromB64url(theirs.eph));
      } catch {
        throw new HnError('invalid_signature', 'peer ephemeral key rejected');
      }
      used = true;
      secret.fill(0);
      return deriveSession(self.nodeId, peer, offer, theirs, shared);
    },
  };
}

function checkOffer(o: unknown, self: NodeID, peer: NodeID, nowMs: number): E2eOffer {
  if (!o || typeof o !== 'object' || Array.isArray(o))
    throw new HnError('bad_request', 'offer is not an object');
  const r = o as Record<string, unknown>;
  if (r.type !== 'link.e2e.offer' || r.v !== 1) throw new HnError('bad_request', 'not an E2E offer');
  if (r.suite !== E2E_SUITE) throw new HnError('bad_request', 'unsupported E2E suite');
  if (r.from !== peer) throw new HnError('invalid_signature', 'offer is not from the expected peer');
  if (r.to !== self) throw new HnError('invalid_signature', 'offer is addressed to another node');
  if (typeof r.eph !== 'string') throw new HnError('bad_request', 'offer lacks an ephemeral key');
  let eph: Uint8Array;
  try {
    eph = fromB64url(r.eph);
  } catch {
    throw new HnError('bad_request', 'ephemeral key is not base64url');
  }
  if (eph.length !== 32) throw new HnError('bad_request', 'ephemeral key must be 32 bytes');
  const ts = parseWallClock(r.ts);
  if (ts === null) throw new HnError('bad_request', 'offer ts is malformed');
  if (Math.abs(ts - nowMs) > RELAY_HELLO_SKEW_SECONDS * 1000)
    throw new HnError('expired', 'offer ts outside ±300 s');
  if (!verifyObject(r, peer)) throw new HnError('invalid_signature', 'offer signature does not verify');
  return r as unknown as E2eOffer;
}

/** The per-session AEAD state: one key and one counter per direction. */
export class E2eSession {
  readonly tag: Uint8Array;
  /** Same on both ends, unique per session: can bind a signed link.auth to this channel. */
  readonly channelBinding: string;
  private readonly sendKey: Uint8Array;
  private readonly recvKey: Uint8Array;
  private sendCtr = 0;
  private recvCtr = 0;

  constructor(sendKey: Uint8Array, recvKey: Uint8Array, tag: Uint8Array, binding: Uint8Array) {
    this.sendKey = sendKey;
    this.recvKey = recvKey;
    this.tag = tag;
    this.channelBinding = b64url(binding);
  }

  /** Seal one record: `[0x02][tag][ciphertext ‖ poly1305 tag]`. */
  seal(inner: number, payload: Uint8Array): Uint8Array {
    if (this.sendCtr >= Number.MAX_SAFE_INTEGER) throw new HnError('closed', 'E2E send counter exhausted');
    const header = new Uint8Array(1 + TAG_BYTES);
    header[0] = E2E_RECORD_SEALED;
    header.set(this.tag, 1);
    const pt = new Uint8Array(1 + payload.length);
    pt[0] = inner;
    pt.set(payload, 1);
    const ct = chacha20poly1305(this.sendKey, nonceFor(this.sendCtr++), header).encrypt(pt);
    return concatBytes(header, ct);
  }

  /** True when the record carries this session's tag (records of other sessions are ignored). */
  isOurs(rec: Uint8Array): boolean {
    return (
      rec.length >= 1 + TAG_BYTES &&
      rec[0] === E2E_RECORD_SEALED &&
      bytesEqual(rec.subarray(1, 1 + TAG_BYTES), this.tag)
    );
  }

  /** Open the next record in sequence; throws HnError('invalid_signature') on any failure. */
  open(rec: Uint8Array): { inner: number; payload: Uint8Array } {
    if (rec.length < 1 + TAG_BYTES + AEAD_TAG_BYTES + 1)
      throw new HnError('invalid_signature', 'E2E record too short');
    let pt: Uint8Array;
    try {
      pt = chacha20poly1305(this.recvKey, nonceFor(this.recvCtr), rec.subarray(0, 1 + TAG_BYTES)).decrypt(
        rec.subarray(1 + TAG_BYTES),
      );
    } catch {
      throw new HnError('invalid_signature', 'E2E record failed authentication');
    }
    this.recvCtr++;
    return { inner: pt[0]!, payload: pt.subarray(1) };
  }
}

function nonceFor(ctr: number): Uint8Array {
  const n = new Uint8Array(12);
  const v = new DataView(n.buffer);
  v.setUint32(4, Math.floor(ctr / 2 ** 32));
  v.setUint32(8, ctr >>> 0);
  return n;
}

function deriveSession(
  self: NodeID,
  peer: NodeID,
  mine: E2eOffer,
  theirs: E2eOffer,
  shared: Uint8Array,
): E2eSession {
  const selfIsLo = self < peer;
  const lo = selfIsLo ? mine : theirs;
  const hi = selfIsLo ? theirs : mine;
  const salt = sha256(canonical({ lo, hi }));
  const prk = extract(sha256, shared, salt);
  shared.fill(0);
  const kLoHi = expand(sha256, prk, INFO_LO_HI, 32);
  const kHiLo = expand(sha256, prk, INFO_HI_LO, 32);
  const tag = expand(sha256, prk, INFO_TAG, TAG_BYTES);
  const binding = expand(sha256, prk, INFO_BINDING, 32);
  prk.fill(0);
  return selfIsLo ? new E2eSession(kLoHi, kHiLo, tag, binding) : new E2eSession(kHiLo, kLoHi, tag, binding);
}
