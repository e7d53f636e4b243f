/**
 * The M29 beacon frame (digest §4): exactly LORA_BEACON_MAX_PAYLOAD_BYTES (32) bytes, big-endian.
 *
 *   0 version=0x01 | 1..4 sender_hash | 5..6 sequence u16 | 7 flags | 8 reserved=0 | 9..12 unix_seconds u32 | 13..31 zero
 *
 * Version 0x02 (digest §12.1, reserved there and defined here) is the authenticated beacon: 64 bytes,
 * the same first 32 bytes with version 0x02, 24 zero bytes, then an 8-byte truncated
 * HMAC-SHA256 over bytes 0..55 under the sender's beacon key. v1-only receivers drop it as
 * `lora_frame_malformed` (tolerant: counted, never a crash).
 */
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { LORA_BEACON_MAX_PAYLOAD_BYTES } from '../core/constants.js';
import { fromHex, toHex, utf8 } from '../core/encoding.js';
import { HnError } from '../core/errors.js';
import { sha256 } from '../core/hash.js';

export const FRAME_VERSION_V1 = 0x01;
export const FRAME_VERSION_AUTH = 0x02;
export const FRAME_V1_BYTES = LORA_BEACON_MAX_PAYLOAD_BYTES;
export const FRAME_AUTH_BYTES = 64;
export const FRAME_AUTH_TAG_BYTES = 8;

export const FLAG_PANIC = 0x01;
export const FLAG_OK = 0x02;
export const FLAG_GATEWAY = 0x04;
export const FLAG_LOW_BATTERY = 0x08;
export const FLAGS_DEFINED = 0x0f;
/** flags a caller of `beacon.send` may set (PANIC is reserved for `panic.send`) */
export const FLAGS_SENDABLE = FLAG_OK | FLAG_GATEWAY | FLAG_LOW_BATTERY;

const HEX8 = /^[0-9a-f]{8}$/;

export interface BeaconFields {
  /** 8 lower-case hex chars */
  sender_hash: string;
  sequence: number;
  flags: number;
  unix_seconds: number;
}

export interface DecodedFrame extends BeaconFields {
  version: 1 | 2;
  /** v2 only: bytes 0..55 (what the tag covers) and the tag */
  signed?: Uint8Array;
  tag?: Uint8Array;
}

/** sender_hash = SHA-256(UTF-8(full NodeID))[0..4], as 8 hex chars. */
export function senderHashOf(nodeId: string): string {
  return toHex(sha256(utf8(nodeId)).slice(0, 4));
}

export function isSenderHash(v: unknown): v is string {
  return typeof v === 'string' && HEX8.test(v);
}

function checkFields(f: BeaconFields): void {
  if (!isSenderHash(f.sender_hash))
    throw new HnError('bad_request', 'sender_hash must be 8 lower-case hex chars');
  if (!Number.isInteger(f.sequence) || f.sequence < 0 || f.sequence > 0xffff)
    throw new HnError('bad_request', 'sequence must be a u16');
  if (!Number.isInteger(f.flags) || f.flags < 0 || f.flags > 0xff)
    throw new HnError('bad_request', 'flags must be a u8');
  if (f.flags & ~FLAGS_DEFINED)
    throw new HnError('bad_request', 'reserved flag bits must be zero on transmit');
  if (!Number.isInteger(f.unix_seconds) || f.unix_seconds < 0 || f.unix_seconds > 0xffffffff)
    throw new HnError('bad_request', 'unix_seconds must be a u32');
}

function writeHeader(out: Uint8Array, version: number, f: BeaconFields): void {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out[0] = version;
  out.set(fromHex(f.sender_hash), 1);
  dv.setUint16(5, f.sequence);
  out[7] = f.flags;
  out[8] = 0;
  dv.setUint32(9, f.unix_seconds);
}

/** Encode a v1 frame: always exactly 32 bytes; reserved bits, byte and payload are zero. */
export function encodeFrame(f: BeaconFields): Uint8Array {
  checkFields(f);
  const out = new Uint8Array(FRAME_V1_BYTES);
  writeHeader(out, FRAME_VERSION_V1, f);
  return out;
}

/** The beacon key of a node: HKDF-SHA256 of its Ed25519 seed; shared with trusted neighbours out of band. */
export function beaconKeyFromSeed(seed: Uint8Array): Uint8Array {
  return hkdf(nobleSha256, seed, utf8('hearthnet-lora-beacon'), utf8('hn-lora-v2-beacon-key'), 32);
}

function tagOf(key: Uint8Array, signed: Uint8Array): Uint8Array {
  return hmac(nobleSha256, key, signed).slice(0, FRAME_AUTH_TAG_BYTES);
}

/** Encode an authenticated (v2) frame: 64 bytes, 8-byte truncated HMAC-SHA256 at the end. */
export function encodeAuthFrame(f: BeaconFields, key: Uint8Array): Uint8Array {
  checkFields(f);
  if (key.length !== 32) throw new HnError('bad_request', 'beacon key must be 32 bytes');
  const out = new Uint8Array(FRAME_AUTH_BYTES);
  writeHeader(out, FRAME_VERSION_AUTH, f);
  out.set(
    tagOf(key, out.subarray(0, FRAME_AUTH_BYTES - FRAME_AUTH_TAG_BYTES)),
    FRAME_AUTH_BYTES - FRAME_AUTH_TAG_BYTES,
  );
  return out;
}

/** Constant-time check of a v2 frame's tag under `key`. */
export function verifyAuthFrame(frame: DecodedFrame, key: Uint8Array): boolean {
  if (frame.version !== 2 || !frame.signed || !frame.tag || key.length !== 32) return false;
  const want = tagOf(key, frame.signed);
  let diff = 0;
  for (let i = 0; i < FRAME_AUTH_TAG_BYTES; i++) diff |= want[i]! ^ frame.tag[i]!;
  return diff === 0;
}

export interface DecodeOptions {
  /** accept the authenticated v2 frame (default true); a v1-only receiver passes false */
  acceptAuth?: boolean;
}

/**
 * Decode a received frame. Length ≠ 32 (or ≠ 64 for v2) or an unknown version → `lora_frame_malformed`.
 * Reserved byte, reserved bits and payload are ignored (forward compatibility).
 */
export function decodeFrame(b: Uint8Array, opts: DecodeOptions = {}): DecodedFrame {
  const acceptAuth = opts.acceptAuth ?? true;
  if (!(b instanceof Uint8Array))
    throw new HnError('lora_frame_malformed', 'frame is not bytes', { details: { reason: 'type' } });
  const version = b[0];
  if (b.length === FRAME_V1_BYTES && version === FRAME_VERSION_V1) {
    // fallthrough to parse
  } else if (acceptAuth && b.length === FRAME_AUTH_BYTES && version === FRAME_VERSION_AUTH) {
    // parse below
  } else if (b.length !== FRAME_V1_BYTES && !(acceptAuth && b.length === FRAME_AUTH_BYTES)) {
    throw new HnError('lora_frame_malformed', `frame length ${b.length}`, {
      details: { reason: 'length', length: b.length },
    });
  } else {
    throw new HnError('lora_frame_malformed', `frame version ${version}`, {
      details: { reason: 'version', version },
    });
  }
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: DecodedFrame = {
    version: version === FRAME_VERSION_AUTH ? 2 : 1,
    sender_hash: toHex(b.subarray(1, 5)),
    sequence: dv.getUint16(5),
    flags: b[7]!,
    unix_seconds: dv.getUint32(9),
  };
  if (out.version === 2) {
    out.signed = b.slice(0, FRAME_AUTH_BYTES - FRAME_AUTH_TAG_BYTES);
    out.tag = b.slice(FRAME_AUTH_BYTES - FRAME_AUTH_TAG_BYTES);
  }
  return out;
}

/** LoraBeaconID: 16 hex chars = sender_hash(4) ‖ seq(2) ‖ unix_seconds & 0xFFFF (2). Same for every panic repeat. */
export function beaconIdOf(f: BeaconFields): string {
  return (
    f.sender_hash +
    f.sequence.toString(16).padStart(4, '0') +
    (f.unix_seconds & 0xffff).toString(16).padStart(4, '0')
  );
}
