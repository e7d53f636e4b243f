/** Byte encodings used on the wire: base64url (no pad), RFC 4648 base32, hex, UTF-8. */
import { base32, base32nopad, base64urlnopad, hex as hexCodec } from '@scure/base';
import { HnError } from './errors.js';

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

export const utf8 = (s: string): Uint8Array => enc.encode(s);
export function fromUtf8(b: Uint8Array): string {
  try {
    return dec.decode(b);
  } catch {
    throw new HnError('bad_request', 'invalid UTF-8');
  }
}

export const b64url = (b: Uint8Array): string => base64urlnopad.encode(b);
/** Strict decode: rejects padding, other alphabets and non-canonical trailing bits. */
export function fromB64url(s: string): Uint8Array {
  if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*$/.test(s)) throw new HnError('bad_request', 'not base64url');
  let out: Uint8Array;
  try {
    out = base64urlnopad.decode(s);
  } catch {
    throw new HnError('bad_request', 'not base64url');
  }
  if (base64urlnopad.encode(out) !== s) throw new HnError('bad_request', 'non-canonical base64url');
  return out;
}

/** RFC 4648 base32, upper case, with padding. */
export const toBase32 = (b: Uint8Array): string => base32.encode(b);
export const fromBase32 = (s: string): Uint8Array => base32.decode(s);
/** RFC 4648 base32, upper case, no padding. */
export const toBase32NoPad = (b: Uint8Array): string => base32nopad.encode(b);
export const fromBase32NoPad = (s: string): Uint8Array => base32nopad.decode(s);

export const toHex = (b: Uint8Array): string => hexCodec.encode(b);
export const fromHex = (s: string): Uint8Array => hexCodec.decode(s);

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

/** Cryptographically strong random bytes (Web Crypto, present in browsers, workers and Node ≥ 19). */
export function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  globalThis.crypto.getRandomValues(b);
  return b;
}
