/**
 * The engine's one Ed25519 verifier (issue #11). Every signature check in the engine — events, link handshakes,
 * tokens, descriptors, and every module that verifies later (claims, alerts, beacons, manifests) — goes through
 * this file, so all of them apply the same rule.
 *
 * The rule (unchanged from before this file existed) is @noble/curves v2 `ed25519.verify(sig, msg, pk,
 * { zip215: false })`, i.e. RFC 8032 strict decoding with the COFACTORED equation [8]S·B = [8]R + [8]k·A:
 *   - public key exactly 32 bytes, signature exactly 64 bytes (noble throws otherwise: we return false);
 *   - S canonical: S < L;
 *   - A and R canonical: y < p, and never x = 0 with the sign bit set;
 *   - A not of small order (strict mode's non-repudiation rule);
 *   - the equation checked up to the 8-torsion (cofactored).
 *
 * WebCrypto's Ed25519 (OpenSSL in Node, BoringSSL in Chromium) is native and 10–50× faster, but it is
 * COFACTORLESS (it compares the encoding of S·B − k·A with R) and does not reject small-order or non-canonical
 * public keys the same way. So the fast path is: check lengths, S < L and the encodings of A and R here (A's
 * decoding and small-order test cached per key), then ask WebCrypto. With those checks passed, a WebCrypto
 * "true" implies noble's "true" (cofactorless ⇒ cofactored). A WebCrypto "false" (or any WebCrypto error) is
 * handed to noble, which gives the verdict: that covers signatures whose R or A carries a torsion component
 * (valid cofactored, invalid cofactorless). The verdict therefore equals noble strict on every input; the price
 * is that an INVALID signature costs a noble verify, as it always did.
 *
 * WebCrypto is chosen once per platform after a start-up self-test (RFC 8032 TEST 1 and 2 verify, a tampered
 * signature does not, a mixed-order R is rejected natively). Without it, everything runs on noble.
 */
import { ed25519 } from '@noble/curves/ed25519.js';

export interface VerifyItem {
  publicKey: Uint8Array;
  msg: Uint8Array;
  sig: Uint8Array;
}

export type VerifierBackend = 'webcrypto' | 'noble';

// ---------------------------------------------------------------------------------------------------------
// Encoding checks (shared by both paths)

/** Group order L = 2^252 + 27742317777372353535851937790883648493, little-endian bytes. */
const L_LE = Uint8Array.from([
  0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
]);

/** True when the 32 little-endian bytes at `off` encode an integer < L. */
export function scalarIsCanonical(b: Uint8Array, off = 0): boolean {
  for (let i = 31; i >= 0; i--) {
    const x = b[off + i]!;
    const l = L_LE[i]!;
    if (x < l) return true;
    if (x > l) return false;
  }
  return false; // equal to L
}

/**
 * A point encoding noble's strict decoder would not reject for its bytes alone: y < p = 2^255 − 19, and not
 * x = 0 with the sign bit set (y = 1 or y = p − 1 are the only y with x = 0). Whether y is on the curve is a
 * separate question (decoding).
 */
export function pointEncodingIsCanonical(b: Uint8Array, off = 0): boolean {
  const sign = (b[off + 31]! & 0x80) !== 0;
  // y ≥ p ⇔ low 255 bits are 2^255 − 19 … 2^255 − 1: bytes 1..30 all 0xff, byte 31 (sign cleared) 0x7f, byte 0 ≥ 0xed
  let allFF = (b[off + 31]! & 0x7f) === 0x7f;
  for (let i = 1; allFF && i < 31; i++) if (b[off + i] !== 0xff) allFF = false;
  if (allFF && b[off]! >= 0xed) return false;
  if (sign) {
    // y = 1: byte 0 = 1, bytes 1..30 = 0, byte 31 & 0x7f = 0
    let one = b[off] === 1 && (b[off + 31]! & 0x7f) === 0;
    for (let i = 1; one && i < 31; i++) if (b[off + i] !== 0) one = false;
    // y = p − 1 = 2^255 − 20: byte 0 = 0xec, bytes 1..30 = 0xff, byte 31 & 0x7f = 0x7f
    const minusOne = allFF && b[off] === 0xec;
    if (one || minusOne) return false;
  }
  return true;
}

const KEY_CACHE_MAX = 4096;
/** public key (hex) → decodes canonically and is not of small order */
const keyOk = new Map<string, boolean>();

function hex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += (b[i]! < 16 ? '0' : '') + b[i]!.toString(16);
  return s;
}

/** A usable under the strict rule: canonical, on the curve, not of small order (cached per key). */
export function publicKeyIsStrict(pk: Uint8Array): boolean {
  if (!(pk instanceof Uint8Array) || pk.length !== 32) return false;
  const k = hex(pk);
  const hit = keyOk.get(k);
  if (hit !== undefined) return hit;
  let ok = false;
  if (pointEncodingIsCanonical(pk)) {
    try {
      ok = !ed25519.Point.fromBytes(pk, false).isSmallOrder();
    } catch {
      ok = false;
    }
  }
  if (keyOk.size >= KEY_CACHE_MAX) keyOk.clear();
  keyOk.set(k, ok);
  return ok;
}

/**
 * Everything the strict rule decides from the bytes alone, before any curve equation: lengths, S < L, R's
 * encoding, A's decoding and order. False means the signature is invalid under the project's rule.
 */
export function precheck(pk: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean {
  if (!(pk instanceof Uint8Array) || !(sig instanceof Uint8Array) || !(msg instanceof Uint8Array))
    return false;
  if (pk.length !== 32 || sig.length !== 64) return false;
  if (!scalarIsCanonical(sig, 32)) return false;
  if (!pointEncodingIsCanonical(sig, 0)) return false;
  return publicKeyIsStrict(pk);
}

// ---------------------------------------------------------------------------------------------------------
// noble (sync; the reference rule and the fallback)

/** The project's rule on noble alone; never throws. */
export function verifyNoble(pk: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean {
  if (!precheck(pk, msg, sig)) return false;
  try {
    return ed25519.verify(sig, msg, pk, { zip215: false });
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------------
// WebCrypto

type Subtle = {
  importKey(f: 'raw', k: Uint8Array, a: { name: string }, x: boolean, u: string[]): Promise<unknown>;
  verify(a: string | { name: string }, key: unknown, sig: Uint8Array, data: Uint8Array): Promise<boolean>;
};

function subtle(): Subtle | null {
  const c = (globalThis as { crypto?: { subtle?: Subtle } }).crypto;
  return c?.subtle && typeof c.subtle.verify === 'function' ? c.subtle : null;
}

const CRYPTO_KEY_CACHE_MAX = 4096;
const cryptoKeys = new Map<string, Promise<unknown>>();

function importKey(s: Subtle, pk: Uint8Array): Promise<unknown> {
  const k = hex(pk);
  let p = cryptoKeys.get(k);
  if (!p) {
    p = s.importKey('raw', pk.slice(), { name: 'Ed25519' }, false, ['verify']);
    p.catch(() => cryptoKeys.delete(k));
    if (cryptoKeys.size >= CRYPTO_KEY_CACHE_MAX) cryptoKeys.clear();
    cryptoKeys.set(k, p);
  }
  return p;
}

/** WebCrypto's raw verdict (cofactorless, no encoding checks of its own we rely on); errors read as false. */
async function webcryptoRaw(s: Subtle, pk: Uint8Array, msg: Uint8Array, sig: Uint8Array): Promise<boolean> {
  try {
    const key = await importKey(s, pk);
    return await s.verify({ name: 'Ed25519' }, key, sig, msg);
  } catch {
    return false;
  }
}

/** The project's rule with WebCrypto as the fast path (see the header); never rejects. */
export async function verifyWebCrypto(pk: Uint8Array, msg: Uint8Array, sig: Uint8Array): Promise<boolean> {
  if (!precheck(pk, msg, sig)) return false;
  const s = subtle();
  if (s && (await webcryptoRaw(s, pk, msg, sig))) return true;
  // WebCrypto said no (or is absent): noble decides, so torsion cases get the cofactored verdict
  try {
    return ed25519.verify(sig, msg, pk, { zip215: false });
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Self-test and backend choice

const hx = (s: string) => Uint8Array.from(s.match(/../g)!.map((b) => parseInt(b, 16)));
/** RFC 8032 §7.1 TEST 1 (empty message) and TEST 2 (one byte 0x72). */
export const RFC8032_VECTORS = [
  {
    pk: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    msg: '',
    sig: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    pk: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    msg: '72',
    sig: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
];

let chosen: Promise<VerifierBackend> | null = null;
let forced: VerifierBackend | null = null;
let settled: VerifierBackend | null = null;

async function selfTest(): Promise<VerifierBackend> {
  const s = subtle();
  if (!s) return 'noble';
  try {
    for (const v of RFC8032_VECTORS) {
      const pk = hx(v.pk);
      const msg = v.msg ? hx(v.msg) : new Uint8Array();
      const sig = hx(v.sig);
      if (!(await webcryptoRaw(s, pk, msg, sig))) return 'noble';
      const bad = sig.slice();
      bad[5]! ^= 1;
      if (await webcryptoRaw(s, pk, msg, bad)) return 'noble';
      const badMsg = Uint8Array.from([...msg, 0]);
      if (await webcryptoRaw(s, pk, badMsg, sig)) return 'noble';
    }
    return 'webcrypto';
  } catch {
    return 'noble';
  }
}

/** The backend this platform uses (runs the self-test once). */
export function verifierBackend(): Promise<VerifierBackend> {
  if (forced) return Promise.resolve(forced);
  if (!chosen)
    chosen = selfTest().then((b) => {
      settled = b;
      return b;
    });
  return chosen;
}

/** The backend once chosen, or null before the self-test finished. */
export const verifierBackendNow = (): VerifierBackend | null => forced ?? settled;

/** Tests and benches: force one backend (null: back to the self-tested choice). */
export function forceVerifierBackend(b: VerifierBackend | null): void {
  forced = b;
}

// ---------------------------------------------------------------------------------------------------------
// Public API

/** Verify one signature under the project's rule on this platform's backend; never rejects. */
export async function verifyAsync(pk: Uint8Array, msg: Uint8Array, sig: Uint8Array): Promise<boolean> {
  const b = await verifierBackend();
  return b === 'webcrypto' ? verifyWebCrypto(pk, msg, sig) : verifyNoble(pk, msg, sig);
}

/** Verify many signatures at once (WebCrypto calls run concurrently); verdicts in input order. */
export async function verifyBatch(items: readonly VerifyItem[]): Promise<boolean[]> {
  const b = await verifierBackend();
  if (b === 'noble') return items.map((i) => verifyNoble(i.publicKey, i.msg, i.sig));
  return Promise.all(items.map((i) => verifyWebCrypto(i.publicKey, i.msg, i.sig)));
}

/** Sync verification for call sites that cannot await (the same rule, on noble). */
export const verifySync = verifyNoble;
