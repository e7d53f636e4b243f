/**
 * M01 identity: Ed25519 keys (@noble/curves), NodeID = "ed25519:" + base64url(pubkey),
 * short display id, signing over canonical JSON, strict verification.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { canonical } from '../core/canonical.js';
import { b64url, fromB64url, randomBytes, toBase32NoPad, toHex } from '../core/encoding.js';
import { HnError } from '../core/errors.js';
import { blake3, sha256 } from '../core/hash.js';
import { NODE_ID_RE, SIGNATURE_RE, type NodeID } from '../core/types.js';
import { verifyBatch, verifySync } from './verify.js';

export {
  verifyAsync,
  verifyBatch,
  verifierBackend,
  verifySync,
  type VerifierBackend,
  type VerifyItem,
} from './verify.js';

export interface KeyPair {
  readonly seed: Uint8Array; // 32-byte secret seed; never logged, exported or sent
  readonly publicKey: Uint8Array;
  readonly nodeId: NodeID;
}

export function keyPairFromSeed(seed: Uint8Array): KeyPair {
  if (!(seed instanceof Uint8Array) || seed.length !== 32)
    throw new HnError('keys_invalid', 'seed must be 32 bytes');
  const publicKey = ed25519.getPublicKey(seed);
  return { seed, publicKey, nodeId: nodeIdFromPublicKey(publicKey) };
}

export const generateKeyPair = (): KeyPair => keyPairFromSeed(randomBytes(32));

export function nodeIdFromPublicKey(pk: Uint8Array): NodeID {
  if (pk.length !== 32) throw new HnError('bad_node_id', 'public key must be 32 bytes');
  return `ed25519:${b64url(pk)}` as NodeID;
}

/** Parse a full NodeID; rejects short forms, padding, wrong lengths and non-canonical trailing bits. */
export function parseNodeId(v: unknown): NodeID {
  if (typeof v !== 'string' || !NODE_ID_RE.test(v)) throw new HnError('bad_request', 'malformed NodeID');
  const pk = fromB64url(v.slice(8));
  if (pk.length !== 32) throw new HnError('bad_request', 'malformed NodeID');
  return v as NodeID;
}

export function isNodeId(v: unknown): v is NodeID {
  try {
    parseNodeId(v);
    return true;
  } catch {
    return false;
  }
}

export const publicKeyOf = (id: NodeID): Uint8Array => fromB64url(parseNodeId(id).slice(8));

/** Display-only short id: base32 of the first 10 key bytes, grouped XXXX-XXXX-XXXX-XXXX. */
export function shortNodeId(id: NodeID): string {
  const s = toBase32NoPad(publicKeyOf(id).slice(0, 10));
  return `ed25519:${s.match(/.{4}/g)!.join('-')}`;
}

/** LoRa sender hash (M29): first 4 bytes of SHA-256 over the full NodeID string, hex. */
export const senderHash = (id: NodeID): string => toHex(sha256(new TextEncoder().encode(id)).slice(0, 4));

export const encodeSignature = (sig: Uint8Array): string => `ed25519:${b64url(sig)}`;
export function decodeSignature(s: unknown): Uint8Array {
  if (typeof s !== 'string' || !SIGNATURE_RE.test(s))
    throw new HnError('invalid_signature', 'malformed signature');
  try {
    const b = fromB64url(s.slice(8));
    if (b.length !== 64) throw new Error();
    return b;
  } catch {
    throw new HnError('invalid_signature', 'malformed signature');
  }
}

export const signBytes = (kp: KeyPair, msg: Uint8Array): Uint8Array => ed25519.sign(msg, kp.seed);

/**
 * Strict (RFC 8032, non-ZIP-215) verification, sync (noble) path of the engine's one verifier (verify.ts);
 * never throws, returns false on any malformed input. Call sites that can await use `verifyAsync`/`verifyBatch`.
 */
export const verifyBytes = (pk: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean =>
  verifySync(pk, msg, sig);

type Signed<T> = T & { signature: string };

/** Sign an object: signature over canonical bytes of the object without its `signature` member. */
export function signObject<T extends Record<string, unknown>>(kp: KeyPair, obj: T): Signed<T> {
  const { signature: _drop, ...rest } = obj as Record<string, unknown>;
  const sig = signBytes(kp, canonical(rest));
  return { ...(rest as T), signature: encodeSignature(sig) };
}

// Verified-signature cache: blake3(message) ‖ signature → expiry. Verification is the hot path of sync.
const VERIFY_CACHE = new Map<string, number>();
const VERIFY_CACHE_MAX = 50_000;
const VERIFY_CACHE_MS = 60_000;

interface Prepared {
  key: string;
  pk: Uint8Array;
  msg: Uint8Array;
  sig: Uint8Array;
}

/** Decode signer, signature and canonical message of a signed object; null when any is malformed. */
function prepare(obj: Record<string, unknown>, signer: NodeID): Prepared | null {
  const { signature, ...rest } = obj;
  try {
    const sig = decodeSignature(signature);
    const pk = publicKeyOf(signer);
    const msg = canonical(rest);
    return { key: `${signer}|${toHex(blake3(msg))}|${signature as string}`, pk, msg, sig };
  } catch {
    return null;
  }
}

function cached(key: string): boolean {
  const hit = VERIFY_CACHE.get(key);
  return hit !== undefined && hit > Date.now();
}

function remember(key: string): void {
  if (VERIFY_CACHE.size >= VERIFY_CACHE_MAX) VERIFY_CACHE.clear();
  VERIFY_CACHE.set(key, Date.now() + VERIFY_CACHE_MS);
}

/**
 * Verify an object signed by `signer` (default: its `author`/`from`/`node_id` field must be passed explicitly).
 * The object is canonicalised as received, all members included. Sync (noble) path.
 */
export function verifyObject(obj: Record<string, unknown>, signer: NodeID): boolean {
  const p = prepare(obj, signer);
  if (!p) return false;
  if (cached(p.key)) return true;
  const ok = verifySync(p.pk, p.msg, p.sig);
  if (ok) remember(p.key);
  return ok;
}

/** `verifyObject` for many objects at once on the platform's fastest path (WebCrypto when it passed its self-test). */
export async function verifyObjects(
  items: readonly { obj: Record<string, unknown>; signer: NodeID }[],
): Promise<boolean[]> {
  const out: boolean[] = new Array<boolean>(items.length).fill(false);
  const todo: { i: number; p: Prepared }[] = [];
  items.forEach((it, i) => {
    const p = prepare(it.obj, it.signer);
    if (!p) return;
    if (cached(p.key)) out[i] = true;
    else todo.push({ i, p });
  });
  const verdicts = await verifyBatch(todo.map(({ p }) => ({ publicKey: p.pk, msg: p.msg, sig: p.sig })));
  todo.forEach(({ i, p }, j) => {
    if (verdicts[j]) {
      out[i] = true;
      remember(p.key);
    }
  });
  return out;
}

/** `verifyObject` on the platform's fastest path. */
export async function verifyObjectAsync(obj: Record<string, unknown>, signer: NodeID): Promise<boolean> {
  return (await verifyObjects([{ obj, signer }]))[0]!;
}
