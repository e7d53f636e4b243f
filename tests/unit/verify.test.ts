/**
 * The engine's one Ed25519 verifier (engine/identity/verify.ts): both paths (WebCrypto fast path with strict
 * prechecks, noble) give every Project Wycheproof verdict and never disagree with each other — on the vectors,
 * on hand-made edge cases (non-canonical S/R/A, small-order keys, torsion components where cofactored and
 * cofactorless verification part ways) and on random keys, messages and tampered signatures.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';
import {
  RFC8032_VECTORS,
  forceVerifierBackend,
  pointEncodingIsCanonical,
  scalarIsCanonical,
  verifierBackend,
  verifyAsync,
  verifyBatch,
  verifyNoble,
  verifyWebCrypto,
} from '../../engine/identity/verify.js';
import {
  keyPairFromSeed,
  signObject,
  verifyObject,
  verifyObjectAsync,
  verifyObjects,
} from '../../engine/identity/identity.js';

const hx = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));
const WY = '../shared/fixtures/wycheproof';

interface Case {
  tcId: number;
  pk: Uint8Array;
  msg: Uint8Array;
  sig: Uint8Array;
  expected: boolean;
  comment: string;
}
function load(file: string): Case[] {
  const j = JSON.parse(readFileSync(`${WY}/${file}`, 'utf8')) as {
    testGroups: {
      publicKey?: { pk: string };
      key?: { pk: string };
      tests: { tcId: number; msg: string; sig: string; result: string; comment: string }[];
    }[];
  };
  const out: Case[] = [];
  for (const g of j.testGroups)
    for (const t of g.tests) {
      expect(['valid', 'invalid']).toContain(t.result);
      out.push({
        tcId: t.tcId,
        pk: hx((g.publicKey ?? g.key)!.pk),
        msg: hx(t.msg),
        sig: hx(t.sig),
        expected: t.result === 'valid',
        comment: t.comment,
      });
    }
  return out;
}

/** Raw WebCrypto verdict (no prechecks, no fallback): to show where it differs from the project's rule. */
async function rawWebCrypto(pk: Uint8Array, msg: Uint8Array, sig: Uint8Array): Promise<boolean> {
  try {
    const k = await crypto.subtle.importKey('raw', pk as BufferSource, { name: 'Ed25519' }, false, [
      'verify',
    ]);
    return await crypto.subtle.verify('Ed25519', k, sig as BufferSource, msg as BufferSource);
  } catch {
    return false;
  }
}

const P = ed25519.Point;
const L = ed25519.Point.Fn.ORDER;
const leToBig = (b: Uint8Array) => {
  let x = 0n;
  for (let i = b.length - 1; i >= 0; i--) x = (x << 8n) | BigInt(b[i]!);
  return x;
};
const bigToLe = (x: bigint, n = 32) => {
  const o = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    o[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return o;
};
/** A point of order 8 (the torsion generator). */
const T8 = P.fromHex('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05');

/** Sign with secret scalar `a` and nonce `r`, R and A given (possibly carrying torsion). */
function signWith(a: bigint, r: bigint, R: typeof T8, A: typeof T8, msg: Uint8Array): Uint8Array {
  const Rb = R.toBytes();
  const k = leToBig(sha512(Uint8Array.from([...Rb, ...A.toBytes(), ...msg]))) % L;
  const S = (r + k * a) % L;
  return Uint8Array.from([...Rb, ...bigToLe(S)]);
}

async function bothPaths(pk: Uint8Array, msg: Uint8Array, sig: Uint8Array): Promise<[boolean, boolean]> {
  return [verifyNoble(pk, msg, sig), await verifyWebCrypto(pk, msg, sig)];
}

describe('verifier: platform choice', () => {
  it('Node 20 passes the WebCrypto self-test; the RFC 8032 vectors verify through every entry point', async () => {
    forceVerifierBackend(null);
    expect(await verifierBackend()).toBe('webcrypto');
    for (const v of RFC8032_VECTORS) {
      const [pk, msg, sig] = [hx(v.pk), hx(v.msg), hx(v.sig)];
      expect(await bothPaths(pk, msg, sig)).toEqual([true, true]);
      expect(await verifyAsync(pk, msg, sig)).toBe(true);
      const bad = sig.slice();
      bad[40]! ^= 0x10;
      expect(await bothPaths(pk, msg, bad)).toEqual([false, false]);
      expect(
        await verifyBatch([
          { publicKey: pk, msg, sig },
          { publicKey: pk, msg, sig: bad },
        ]),
      ).toEqual([true, false]);
    }
  });
});

describe('verifier: Project Wycheproof', () => {
  for (const file of ['ed25519_test.json', 'legacy/eddsa_test.json']) {
    it(`${file}: every case gives its expected verdict on both paths, and the paths agree`, async () => {
      const cases = load(file);
      expect(cases.length).toBeGreaterThan(140);
      const wrong: string[] = [];
      for (const c of cases) {
        const [n, w] = await bothPaths(c.pk, c.msg, c.sig);
        if (n !== c.expected || w !== c.expected)
          wrong.push(`${c.tcId} ${c.comment}: expected ${c.expected}, noble ${n}, webcrypto ${w}`);
      }
      expect(wrong).toEqual([]);
      // the same through the batch API on each forced backend
      const items = cases.map((c) => ({ publicKey: c.pk, msg: c.msg, sig: c.sig }));
      for (const b of ['noble', 'webcrypto'] as const) {
        forceVerifierBackend(b);
        expect(await verifyBatch(items)).toEqual(cases.map((c) => c.expected));
      }
      forceVerifierBackend(null);
    });
  }
});

describe('verifier: cases where WebCrypto and the strict rule could part', () => {
  const a = 0x1234567890abcdef1234567890abcdefn % L;
  const r = 0xfedcba0987654321fedcba0987654321n % L;
  const A = P.BASE.multiply(a);
  const msg = new TextEncoder().encode('torsion');

  it('an honest signature built by hand verifies everywhere (the construction is right)', async () => {
    const sig = signWith(a, r, P.BASE.multiply(r), A, msg);
    expect(await rawWebCrypto(A.toBytes(), msg, sig)).toBe(true);
    expect(await bothPaths(A.toBytes(), msg, sig)).toEqual([true, true]);
  });

  it('R with a torsion component: cofactorless WebCrypto rejects, the project rule (cofactored) accepts on both paths', async () => {
    const sig = signWith(a, r, P.BASE.multiply(r).add(T8), A, msg);
    expect(await rawWebCrypto(A.toBytes(), msg, sig)).toBe(false);
    expect(await bothPaths(A.toBytes(), msg, sig)).toEqual([true, true]);
  });

  it('A with a torsion component (not small order): same — the verdict follows noble strict', async () => {
    const A2 = A.add(T8);
    const sig = signWith(a, r, P.BASE.multiply(r), A2, msg);
    const raw = await rawWebCrypto(A2.toBytes(), msg, sig);
    const noble = ed25519.verify(sig, msg, A2.toBytes(), { zip215: false });
    expect(noble).toBe(true);
    expect(await bothPaths(A2.toBytes(), msg, sig)).toEqual([noble, noble]);
    expect(typeof raw).toBe('boolean');
  });

  it('every small-order public key is refused on both paths, even with a signature WebCrypto accepts', async () => {
    // all 8 torsion points, plus the non-canonical encodings of the two with x = 0
    const pts = Array.from({ length: 8 }, (_, i) => T8.multiply(BigInt(i + 1)).toBytes());
    for (const pk of pts) {
      // S = 0, R = −[k]A… simplest universal forgery for small-order A: R = identity, S = 0 when [k]A = O
      const sig = Uint8Array.from([...P.ZERO.toBytes(), ...new Uint8Array(32)]);
      for (let i = 0; i < 8; i++) {
        const m = Uint8Array.of(i);
        expect(await bothPaths(pk, m, sig)).toEqual([false, false]);
      }
    }
  });

  it('S ≥ L (S + L, S = L, S = 2^256 − 1) is refused on both paths', async () => {
    const sig = signWith(a, r, P.BASE.multiply(r), A, msg);
    const S = leToBig(sig.subarray(32));
    for (const s of [S + L, L, 2n ** 256n - 1n]) {
      const bad = Uint8Array.from([...sig.subarray(0, 32), ...bigToLe(s)]);
      expect(scalarIsCanonical(bad, 32)).toBe(false);
      expect(await bothPaths(A.toBytes(), msg, bad)).toEqual([false, false]);
    }
    expect(scalarIsCanonical(bigToLe(L - 1n))).toBe(true);
  });

  it('non-canonical point encodings (y ≥ p, x = 0 with the sign bit) are refused for A and R', async () => {
    const p = 2n ** 255n - 19n;
    const enc = (y: bigint, sign: boolean) => {
      const b = bigToLe(y);
      if (sign) b[31]! |= 0x80;
      return b;
    };
    const bad = [
      enc(p, false),
      enc(p + 1n, false),
      enc(2n ** 255n - 1n, true),
      enc(1n, true),
      enc(p - 1n, true),
    ];
    const good = [enc(1n, false), enc(p - 1n, false), enc(p - 2n, false), A.toBytes()];
    for (const b of bad) expect(pointEncodingIsCanonical(b)).toBe(false);
    for (const g of good) expect(pointEncodingIsCanonical(g)).toBe(true);
    const sig = signWith(a, r, P.BASE.multiply(r), A, msg);
    for (const b of bad) {
      expect(await bothPaths(b, msg, sig)).toEqual([false, false]);
      const s2 = Uint8Array.from([...b, ...sig.subarray(32)]);
      expect(await bothPaths(A.toBytes(), msg, s2)).toEqual([false, false]);
    }
  });

  it('wrong lengths and non-bytes give false, never a throw', async () => {
    const sig = signWith(a, r, P.BASE.multiply(r), A, msg);
    const pk = A.toBytes();
    for (const [k, s] of [
      [pk, sig.subarray(0, 63)],
      [pk, Uint8Array.from([...sig, 0])],
      [pk.subarray(0, 31), sig],
      [Uint8Array.from([...pk, 0]), sig],
      [pk, new Uint8Array()],
    ] as [Uint8Array, Uint8Array][])
      expect(await bothPaths(k, msg, s)).toEqual([false, false]);
    expect(verifyNoble('x' as never, msg, sig)).toBe(false);
    expect(await verifyWebCrypto(pk, null as never, sig)).toBe(false);
  });
});

describe('verifier: the two paths never disagree (property)', () => {
  it('random keys and messages, signatures tampered anywhere (sig, msg, key) or random', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 300 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        fc.constantFrom('none', 'sig', 'msg', 'pk', 'random', 'torsionR'),
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        async (seed, msg, pos, x, how, rnd) => {
          const kp = keyPairFromSeed(seed);
          let pk = kp.publicKey;
          let m = msg;
          let sig = ed25519.sign(msg, seed);
          if (how === 'sig') (sig = sig.slice())[pos % 64]! ^= x;
          if (how === 'msg') {
            m = Uint8Array.from([...msg, 0]);
            m[pos % m.length]! ^= x;
          }
          if (how === 'pk') (pk = pk.slice())[pos % 32]! ^= x;
          if (how === 'random') sig = rnd;
          if (how === 'torsionR') {
            const R = P.fromBytes(sig.subarray(0, 32)).add(T8.multiply(BigInt((pos % 7) + 1)));
            sig = Uint8Array.from([...R.toBytes(), ...sig.subarray(32)]);
          }
          const n = verifyNoble(pk, m, sig);
          const w = await verifyWebCrypto(pk, m, sig);
          expect(w).toBe(n);
          expect(n).toBe(ed25519.verify(sig, m, pk, { zip215: false }));
          if (how === 'none') expect(n).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('verifier: signed objects', () => {
  it('verifyObjects / verifyObjectAsync agree with verifyObject on good, tampered and malformed objects', async () => {
    const kp = keyPairFromSeed(new Uint8Array(32).fill(9));
    const o = signObject(kp, { type: 'x', a: 1, nested: { b: [1, 2] } });
    const cases: Record<string, unknown>[] = [
      o,
      { ...o, a: 2 },
      { ...o, extra: true },
      { ...o, signature: 'garbage' },
      {
        ...o,
        signature: o.signature.slice(0, 10) + (o.signature[10] === 'A' ? 'B' : 'A') + o.signature.slice(11),
      },
    ];
    const sync = cases.map((c) => verifyObject(c, kp.nodeId));
    expect(sync).toEqual([true, false, false, false, false]);
    expect(await verifyObjects(cases.map((obj) => ({ obj, signer: kp.nodeId })))).toEqual(sync);
    for (const [i, c] of cases.entries()) expect(await verifyObjectAsync(c, kp.nodeId)).toBe(sync[i]);
    const other = keyPairFromSeed(new Uint8Array(32).fill(10));
    expect(await verifyObjectAsync(o, other.nodeId)).toBe(false);
  });
});
