/**
 * The suite's own codecs, written from the protocol documents (never imported from engine/):
 * RFC 8785 JCS, base64url, NodeIDs, Ed25519 sign/verify, SHA-256, BLAKE3 CIDs, hex.
 * An engine bug therefore cannot become the suite's oracle.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { blake3 } from '@noble/hashes/blake3.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { base64urlnopad, hex } from '@scure/base';

export function jcs(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error('non-finite number');
    return Object.is(v, -0) ? '0' : String(v);
  }
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(jcs).join(',')}]`;
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort(); // UTF-16 code unit order, as RFC 8785 §3.2.3 asks
    return `{${keys.map((k) => `${JSON.stringify(k)}:${jcs(o[k])}`).join(',')}}`;
  }
  throw new Error(`not JSON: ${typeof v}`);
}

const te = new TextEncoder();
export const utf8 = (s: string): Uint8Array => te.encode(s);
export const toHex = (b: Uint8Array): string => hex.encode(b);
export const fromHex = (s: string): Uint8Array => hex.decode(s);
export const b64u = (b: Uint8Array): string => base64urlnopad.encode(b);
export const fromB64u = (s: string): Uint8Array => base64urlnopad.decode(s);
export const sha256Hex = (b: Uint8Array): string => toHex(sha256(b));
export const blake3Cid = (v: unknown): string => `blake3:${toHex(blake3(utf8(jcs(v))))}`;
export { sha256 };

export const NODE_ID_RE = /^ed25519:[A-Za-z0-9_-]{43}$/;

export interface SuiteKey {
  seed: Uint8Array;
  publicKey: Uint8Array;
  nodeId: string;
}
export function keyFromSeed(seed: Uint8Array): SuiteKey {
  const publicKey = ed25519.getPublicKey(seed);
  return { seed, publicKey, nodeId: `ed25519:${b64u(publicKey)}` };
}
export function publicKeyOfNodeId(id: string): Uint8Array | null {
  if (typeof id !== 'string' || !NODE_ID_RE.test(id)) return null;
  try {
    const pk = fromB64u(id.slice(8));
    return pk.length === 32 && b64u(pk) === id.slice(8) ? pk : null;
  } catch {
    return null;
  }
}
export const signBytes = (k: SuiteKey, msg: Uint8Array): string =>
  `ed25519:${b64u(ed25519.sign(msg, k.seed))}`;

/** Signature over JCS of the object without `signature`. */
export function signObj<T extends Record<string, unknown>>(k: SuiteKey, obj: T): T & { signature: string } {
  const { signature: _s, ...rest } = obj as Record<string, unknown>;
  return { ...(rest as T), signature: signBytes(k, utf8(jcs(rest))) };
}

/** Verify `obj.signature` by `signer` over JCS of the object without `signature` (strict RFC 8032). */
export function verifyObj(obj: unknown, signer: string): boolean {
  if (!obj || typeof obj !== 'object') return false;
  const { signature, ...rest } = obj as Record<string, unknown>;
  const pk = publicKeyOfNodeId(signer);
  if (!pk || typeof signature !== 'string' || !/^ed25519:[A-Za-z0-9_-]{86}$/.test(signature)) return false;
  try {
    return ed25519.verify(fromB64u(signature.slice(8)), utf8(jcs(rest)), pk, { zip215: false });
  } catch {
    return false;
  }
}
