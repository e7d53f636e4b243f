/**
 * M29 beacon frame: the hand-derived vectors of conformance/vectors/lora/frames.json, round trips
 * over random fields, the sender hash against SHA-256 computed independently, the authenticated
 * v2 frame, and a fuzz of the decoder.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HnError } from '../../engine/core/errors.js';
import { fromHex, toHex } from '../../engine/core/encoding.js';
import { generateKeyPair, nodeIdFromPublicKey } from '../../engine/identity/identity.js';
import {
  beaconIdOf,
  beaconKeyFromSeed,
  decodeFrame,
  encodeAuthFrame,
  encodeFrame,
  FLAGS_DEFINED,
  senderHashOf,
  verifyAuthFrame,
} from '../../engine/lora/frame.js';

const here = dirname(fileURLToPath(import.meta.url));
const V = JSON.parse(readFileSync(resolve(here, '../../conformance/vectors/lora/frames.json'), 'utf8'));

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return e instanceof HnError ? e.code : `non-HnError: ${String(e)}`;
  }
  return undefined;
}

const fields = fc.record({
  sender_hash: fc.uint8Array({ minLength: 4, maxLength: 4 }).map(toHex),
  sequence: fc.integer({ min: 0, max: 0xffff }),
  flags: fc.integer({ min: 0, max: FLAGS_DEFINED }),
  unix_seconds: fc.integer({ min: 0, max: 0xffffffff }),
});

describe('M29 frame vectors (hand-derived, digest §4)', () => {
  it('sender_hash of the digest NodeID is 5bd4e337', () => {
    for (const v of V.sender_hash) expect(senderHashOf(v.node_id)).toBe(v.sender_hash);
  });
  it.each(V.valid as any[])('encodes and decodes $name', (v: any) => {
    const bytes = encodeFrame(v.fields);
    expect(bytes.length).toBe(32);
    expect(toHex(bytes)).toBe(v.hex);
    expect(decodeFrame(fromHex(v.hex))).toEqual({ version: 1, ...v.fields });
    expect(beaconIdOf(v.fields)).toBe(v.beacon_id);
  });
  it.each(V.tolerant as any[])('decodes tolerantly: $name', (v: any) => {
    expect(decodeFrame(fromHex(v.hex))).toEqual({ version: 1, ...v.fields });
  });
  it.each(V.malformed as any[])('rejects $name with lora_frame_malformed', (v: any) => {
    expect(codeOf(() => decodeFrame(fromHex(v.hex)))).toBe(v.error);
  });
  it.each(V.encode_rejects as any[])('refuses to encode $name', (v: any) => {
    expect(codeOf(() => encodeFrame(v.fields))).toBe(v.error);
  });
});

describe('M29 frame properties', () => {
  it('random fields always give exactly 32 bytes and round-trip', () => {
    fc.assert(
      fc.property(fields, (f) => {
        const b = encodeFrame(f);
        expect(b.length).toBe(32);
        expect(b[8]).toBe(0);
        expect(b.subarray(13).every((x) => x === 0)).toBe(true);
        expect(decodeFrame(b)).toEqual({ version: 1, ...f });
      }),
      { numRuns: 2000 },
    );
  });
  it('sender_hash = SHA-256(UTF-8(NodeID))[0..4], checked against node:crypto', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (pk) => {
        const id = nodeIdFromPublicKey(pk);
        const want = createHash('sha256').update(id, 'utf8').digest().subarray(0, 4).toString('hex');
        expect(senderHashOf(id)).toBe(want);
      }),
      { numRuns: 300 },
    );
  });
  it('any reserved flag bit is refused on transmit', () => {
    fc.assert(
      fc.property(fields, fc.integer({ min: 0x10, max: 0xff }), (f, flags) => {
        expect(codeOf(() => encodeFrame({ ...f, flags }))).toBe('bad_request');
      }),
    );
  });
  it('fuzz: 10,000 random byte strings decode or fail with lora_frame_malformed, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 80 }), fc.boolean(), (b, v1only) => {
        const code = codeOf(() => decodeFrame(b, { acceptAuth: !v1only }));
        if (code === undefined) expect([32, 64]).toContain(b.length);
        else expect(code).toBe('lora_frame_malformed');
      }),
      { numRuns: 10_000 },
    );
  });
});

describe('M29 authenticated beacon (v2, digest §12.1)', () => {
  const kp = generateKeyPair();
  const key = beaconKeyFromSeed(kp.seed);
  it('encodes 64 bytes whose tag verifies under the sender key only', () => {
    fc.assert(
      fc.property(fields, (f) => {
        const b = encodeAuthFrame(f, key);
        expect(b.length).toBe(64);
        expect(b[0]).toBe(2);
        const d = decodeFrame(b);
        expect(d).toMatchObject({ version: 2, ...f });
        expect(verifyAuthFrame(d, key)).toBe(true);
        expect(verifyAuthFrame(d, beaconKeyFromSeed(generateKeyPair().seed))).toBe(false);
      }),
      { numRuns: 200 },
    );
  });
  it('any flipped bit in the signed part or the tag fails verification (a forged panic is caught)', () => {
    const b = encodeAuthFrame(
      { sender_hash: senderHashOf(kp.nodeId), sequence: 7, flags: 3, unix_seconds: 1767225600 },
      key,
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 63 }), fc.integer({ min: 0, max: 7 }), (i, bit) => {
        const t = b.slice();
        t[i]! ^= 1 << bit;
        expect(verifyAuthFrame(decodeFrame(t), key)).toBe(false);
      }),
    );
  });
  it('a v1-only receiver drops the v2 frame as lora_frame_malformed without crashing', () => {
    const b = encodeAuthFrame({ sender_hash: 'deadbeef', sequence: 1, flags: 2, unix_seconds: 5 }, key);
    expect(codeOf(() => decodeFrame(b, { acceptAuth: false }))).toBe('lora_frame_malformed');
  });
});
