/** SHA-256 and BLAKE3 helpers (@noble/hashes). BLAKE3 for core hashes, SHA-256 where a Phase-3 spec says so. */
import { blake3 as nobleBlake3 } from '@noble/hashes/blake3.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { canonical } from './canonical.js';
import { toHex, utf8 } from './encoding.js';

export const sha256 = (b: Uint8Array): Uint8Array => nobleSha256(b);
export const blake3 = (b: Uint8Array): Uint8Array => nobleBlake3(b);
export const sha256Hex = (b: Uint8Array | string): string =>
  toHex(sha256(typeof b === 'string' ? utf8(b) : b));
export const blake3Hex = (b: Uint8Array | string): string =>
  toHex(blake3(typeof b === 'string' ? utf8(b) : b));
/** `blake3:<hex>` of the canonical bytes of a JSON value: CIDs, event hashes, schema hashes. */
export const blake3Cid = (value: unknown): string => `blake3:${toHex(blake3(canonical(value)))}`;
export const CID_RE = /^blake3:[0-9a-f]{64}$/;
