import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  generateKeyPairSync,
  createPublicKey,
  verify as nodeVerify,
  sign as nodeSign,
  createPrivateKey,
} from 'node:crypto';
import { canonical, canonicalString, jcs } from '../../engine/core/canonical.js';

/** JSON values inside the signable subset (no integers beyond ±(2^53−1)). */
const signableJson = () =>
  fc.jsonValue().filter((v) => {
    try {
      canonicalString(v);
      return true;
    } catch {
      return false;
    }
  });
import { blake3Hex } from '../../engine/core/hash.js';
import { fromHex, toHex, b64url, fromB64url, toBase32, fromBase32 } from '../../engine/core/encoding.js';
import { ulidGenerator, ULID_RE } from '../../engine/core/ulid.js';
import {
  keyPairFromSeed,
  parseNodeId,
  shortNodeId,
  senderHash,
  signBytes,
  signObject,
  verifyObject,
  verifyBytes,
} from '../../engine/identity/identity.js';

const TEST1_SEED = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';

describe('RFC 8785 (JCS) vectors', () => {
  it('main example of §3.2.2', () => {
    const input = JSON.parse(
      '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],' +
        '"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}',
    );
    expect(jcs(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });
  it('property sorting of §3.2.3 (UTF-16 code units)', () => {
    const input = JSON.parse(
      '{"\\u20ac":"Euro Sign","\\r":"Carriage Return","\\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One",' +
        '"\\ud83d\\ude00":"Emoji: Grinning Face","\\u0080":"Control","\\u00f6":"Latin Small Letter O With Diaeresis"}',
    );
    expect(jcs(input)).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
        '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });
  it('number serialisation of Appendix B', () => {
    const cases: [string, string][] = [
      ['0000000000000000', '0'],
      ['8000000000000000', '0'],
      ['0000000000000001', '5e-324'],
      ['8000000000000001', '-5e-324'],
      ['7fefffffffffffff', '1.7976931348623157e+308'],
      ['ffefffffffffffff', '-1.7976931348623157e+308'],
      ['4340000000000000', '9007199254740992'],
      ['c340000000000000', '-9007199254740992'],
      ['4430000000000000', '295147905179352830000'],
      ['44b52d02c7e14af5', '9.999999999999997e+22'],
      ['44b52d02c7e14af6', '1e+23'],
      ['44b52d02c7e14af7', '1.0000000000000001e+23'],
      ['3eb0c6f7a0b5ed8d', '0.000001'],
      ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
      ['41b3de4355555555', '333333333.3333333'],
      ['4037000000000000', '23'],
      ['c050000000000000', '-64'],
      ['3ff0000000000000', '1'],
      ['3fb999999999999a', '0.1'],
    ];
    for (const [bits, want] of cases) {
      const v = new DataView(fromHex(bits).buffer).getFloat64(0);
      expect(jcs(v), bits).toBe(want);
    }
    expect(() => jcs(NaN)).toThrow();
    expect(() => jcs(Infinity)).toThrow();
  });
  it('core digest vector: canonical bytes, BLAKE3 and TEST-1 signature', () => {
    const text = '{"b":1.00,"a":{"z":"Grüße","y":[1.5,0.10,1e-7,-0]},"c":null}';
    const c = canonical(JSON.parse(text));
    expect(new TextDecoder().decode(c)).toBe('{"a":{"y":[1.5,0.1,1e-7,0],"z":"Grüße"},"b":1,"c":null}');
    expect(blake3Hex(c)).toBe('2222a91466a7d5ab4f9da84534d56364a540a363191c0f9cb55eb8ec3d9fc6ba');
    const kp = keyPairFromSeed(fromHex(TEST1_SEED));
    expect('ed25519:' + b64url(signBytes(kp, c))).toBe(
      'ed25519:bkiXHaqAZ80xGsD__3YYvxKh0hV2V_If2Gj5IyYbIWKkePU4cwI0KARFG4LVU_gu2-WkxXPfUaK0J-rmUNu-Bg',
    );
    expect(blake3Hex(new Uint8Array())).toBe(
      'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262',
    );
  });
  it('1, 1.0 and 1.00 canonicalise identically', () => {
    expect(canonicalString(JSON.parse('[1,1.0,1.00]'))).toBe('[1,1,1]');
  });
  it('refuses what it cannot represent', () => {
    const bad: unknown[] = [
      NaN,
      Infinity,
      -Infinity,
      undefined,
      10n,
      2 ** 53,
      '\ud800',
      { a: '\udc00x' },
      new Date(0),
      new Map(),
      new Uint8Array(2),
      () => 1,
      Symbol('x'),
    ];
    for (const b of bad)
      expect(() => canonical(b), String(b)).toThrow(expect.objectContaining({ code: 'bad_request' }));
    expect(() => canonical({ a: undefined })).toThrow();
    expect(canonicalString(2 ** 53 - 1)).toBe('9007199254740991');
  });
  it('property: canonical(parse(canonical(x))) == canonical(x) and key order is irrelevant', () => {
    fc.assert(
      fc.property(signableJson(), (x) => {
        const once = canonicalString(x);
        expect(canonicalString(JSON.parse(once))).toBe(once);
        if (x && typeof x === 'object' && !Array.isArray(x)) {
          const reversed = Object.fromEntries(Object.entries(x).reverse());
          expect(canonicalString(reversed)).toBe(once);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('identity (RFC 8032 TEST 1)', () => {
  const kp = keyPairFromSeed(fromHex(TEST1_SEED));
  it('derives the digest vectors', () => {
    expect(toHex(kp.publicKey)).toBe('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    expect(kp.nodeId).toBe('ed25519:11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo');
    expect(shortNodeId(kp.nodeId)).toBe('ed25519:25NJ-QAMC-WEFL-PVKL');
    expect(toHex(signBytes(kp, new Uint8Array()))).toBe(
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    );
    expect(senderHash(kp.nodeId)).toBe('34c9b166');
  });
  it('NodeID parser rejects malformed forms', () => {
    const good = kp.nodeId;
    const bad = [
      shortNodeId(good),
      good + '=',
      good.slice(0, -1),
      good + 'A',
      'ed448:' + good.slice(8),
      'ED25519:' + good.slice(8),
      good.slice(0, -1) + 'p', // 'o' → 'p' changes the two unused trailing bits: non-canonical
      '',
      42,
    ];
    expect(parseNodeId(good)).toBe(good);
    for (const b of bad) expect(() => parseNodeId(b), String(b)).toThrow();
  });
  it('signatures verify with an independent Ed25519 implementation (node:crypto) and vice versa', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), signableJson(), (seed, payload) => {
        const k = keyPairFromSeed(seed);
        const msg = canonical({ payload, type: 'test' });
        const sig = signBytes(k, msg);
        const spki = Buffer.concat([
          Buffer.from('302a300506032b6570032100', 'hex'),
          Buffer.from(k.publicKey),
        ]);
        const pub = createPublicKey({ key: spki, format: 'der', type: 'spki' });
        expect(nodeVerify(null, msg, pub, sig)).toBe(true);
        const pkcs8 = Buffer.concat([
          Buffer.from('302e020100300506032b657004220420', 'hex'),
          Buffer.from(seed),
        ]);
        const theirs = nodeSign(null, msg, createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }));
        expect(verifyBytes(k.publicKey, msg, new Uint8Array(theirs))).toBe(true);
      }),
      { numRuns: 200 },
    );
    expect(generateKeyPairSync).toBeTypeOf('function');
  });
  it('tampering any single byte of message or signature fails verification', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 200 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (msg, pos, x) => {
          const sig = signBytes(kp, msg);
          expect(verifyBytes(kp.publicKey, msg, sig)).toBe(true);
          const m2 = msg.slice();
          m2[pos % m2.length]! ^= x;
          expect(verifyBytes(kp.publicKey, m2, sig)).toBe(false);
          const s2 = sig.slice();
          s2[pos % 64]! ^= x;
          expect(verifyBytes(kp.publicKey, msg, s2)).toBe(false);
        },
      ),
      { numRuns: 1000 },
    );
  }, 180_000); // 3,000 strict verifications: 30 s was not enough on a loaded machine
  it('strict mode rejects a non-canonical S (S + L)', () => {
    const msg = new Uint8Array([1, 2, 3]);
    const sig = signBytes(kp, msg);
    const L = 2n ** 252n + 27742317777372353535851937790883648493n;
    let s = 0n;
    for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(sig[32 + i]!);
    s += L;
    const s2 = sig.slice();
    for (let i = 0; i < 32; i++) {
      s2[32 + i] = Number(s & 0xffn);
      s >>= 8n;
    }
    expect(verifyBytes(kp.publicKey, msg, s2)).toBe(false);
  });
  it('signObject/verifyObject cover every member as received', () => {
    const o = signObject(kp, { type: 'x', a: 1, nested: { b: [1, 2] } });
    expect(verifyObject(o, kp.nodeId)).toBe(true);
    expect(verifyObject({ ...o, extra: 1 }, kp.nodeId)).toBe(false);
    expect(verifyObject({ ...o, a: 2 }, kp.nodeId)).toBe(false);
    expect(verifyObject({ ...o, signature: 'garbage' }, kp.nodeId)).toBe(false);
  });
});

describe('codecs', () => {
  it('base64url and base32 roundtrip (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        expect(fromB64url(b64url(b))).toEqual(b);
        expect(fromBase32(toBase32(b))).toEqual(b);
      }),
    );
    expect(() => fromB64url('AAA=')).toThrow();
    expect(() => fromB64url('A+/A')).toThrow();
  });
  it('RFC 4648 base32 test vectors', () => {
    const enc = (s: string) => toBase32(new TextEncoder().encode(s));
    expect(enc('f')).toBe('MY======');
    expect(enc('foobar')).toBe('MZXW6YTBOI======');
  });
  it('10 000 ULIDs in one millisecond are strictly increasing', () => {
    const gen = ulidGenerator(() => 1_700_000_000_000);
    let prev = '';
    for (let i = 0; i < 10_000; i++) {
      const id = gen();
      expect(ULID_RE.test(id)).toBe(true);
      expect(id > prev).toBe(true);
      prev = id;
    }
  });
});
