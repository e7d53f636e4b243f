/** M28 delta codec (digest §6): canonical safetensors round trip, a hand-made vector, every structural check, fuzz. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  decodeSafetensors,
  deltaBytesBound,
  deltaMetadata,
  encodeSafetensors,
  validateDelta,
  type DeltaExpectation,
  type Tensors,
} from '../../engine/fedlearn/delta.js';
import { FEDLEARN_SUBMISSION_MAX_BYTES } from '../../engine/core/constants.js';
import { HnError } from '../../engine/core/errors.js';
import { BASE_SHA, TINY_CARD, randomDelta } from './fedlearn-helpers.js';

const codeOf = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return (e as HnError).code;
  }
  return 'ok';
};

const EXP: DeltaExpectation = {
  round_id: '01J0000000000000000000000R',
  base_model_sha: BASE_SHA,
  rank: 4,
  alpha: 8,
  target_modules: ['q_proj', 'v_proj'],
  card: TINY_CARD,
  clip_norm: 10,
  dp_noise_scale: 0,
};
const meta = deltaMetadata(EXP);
const enc = (t: Tensors, m: Record<string, string> = meta) => encodeSafetensors({ metadata: m, tensors: t });

/** Build raw safetensors from a header string written by hand (the spec's layout, not our encoder). */
function raw(header: string, data: number[] = [], pad = true): Uint8Array {
  let h = header;
  if (pad) while (h.length % 8) h += ' ';
  const hb = new TextEncoder().encode(h);
  const out = new Uint8Array(8 + hb.length + data.length * 4);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, hb.length, true);
  out.set(hb, 8);
  data.forEach((v, i) => dv.setFloat32(8 + hb.length + 4 * i, v, true));
  return out;
}

describe('M28 safetensors codec', () => {
  it('hand-made vector: bytes written from the format spec decode and re-encode identically', () => {
    // header {"a":{"data_offsets":[0,8],"dtype":"F32","shape":[2]}} is 54 bytes, padded with 2 spaces to 56 = 0x38
    const hex =
      '3800000000000000' +
      Buffer.from('{"a":{"data_offsets":[0,8],"dtype":"F32","shape":[2]}}  ').toString('hex') +
      '0000803f' + // 1.0f LE
      '000000c0'; // -2.0f LE
    const bytes = new Uint8Array(Buffer.from(hex, 'hex'));
    const st = decodeSafetensors(bytes);
    expect([...st.tensors.keys()]).toEqual(['a']);
    expect(st.tensors.get('a')!.shape).toEqual([2]);
    expect([...st.tensors.get('a')!.data]).toEqual([1, -2]);
    expect(Buffer.from(encodeSafetensors(st)).toString('hex')).toBe(hex);
  });

  it('§10.3 round trip is byte-identical and keeps shapes and dtypes (property)', () => {
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.stringMatching(/^[a-z][a-z0-9._]{0,12}$/),
          fc
            .tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 5 }))
            .chain(([a, b]) =>
              fc.tuple(fc.constant([a, b]), fc.float32Array({ minLength: a * b, maxLength: a * b })),
            ),
          { maxKeys: 5 },
        ),
        fc.dictionary(fc.stringMatching(/^[a-z_]{1,8}$/), fc.string({ maxLength: 10 }), { maxKeys: 3 }),
        (dict, md) => {
          const tensors: Tensors = new Map(
            Object.entries(dict).map(([k, [shape, data]]) => [k, { shape: [...shape], data }]),
          );
          const metadata = { ...md };
          delete (metadata as Record<string, string>).__proto__;
          const b = encodeSafetensors({ metadata, tensors });
          const back = decodeSafetensors(b);
          expect(encodeSafetensors(back)).toEqual(b);
          for (const [k, t] of tensors) {
            expect(back.tensors.get(k)!.shape).toEqual(t.shape);
            expect(Buffer.from(back.tensors.get(k)!.data.buffer)).toEqual(Buffer.from(t.data.buffer));
          }
          expect(new DataView(b.buffer).getUint32(0, true) % 8).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a real delta validates; its norm is returned intact', () => {
    const d = randomDelta(1);
    const st = validateDelta(enc(d), EXP);
    expect(st.tensors.size).toBe(8);
    expect(st.tensors.get('layers.0.q_proj.lora_A')!.shape).toEqual([4, 48]);
    expect(st.tensors.get('layers.1.v_proj.lora_B')!.shape).toEqual([48, 4]);
  });

  it('§10.7 negative cases: NaN, missing, extra, bad shape, F16, wrong base, metadata, norm', () => {
    const d = randomDelta(2);
    const nan = randomDelta(2);
    nan.get('layers.0.q_proj.lora_A')!.data[3] = NaN;
    expect(codeOf(() => validateDelta(enc(nan), EXP))).toBe('delta_invalid');
    const inf = randomDelta(2);
    inf.get('layers.1.v_proj.lora_B')!.data[0] = -Infinity;
    expect(codeOf(() => validateDelta(enc(inf), EXP))).toBe('delta_invalid');
    const missing = new Map(d);
    missing.delete('layers.1.q_proj.lora_B');
    expect(codeOf(() => validateDelta(enc(missing), EXP))).toBe('delta_invalid');
    const extra = new Map(d);
    extra.set('layers.2.q_proj.lora_A', { shape: [1], data: new Float32Array(1) });
    expect(codeOf(() => validateDelta(enc(extra), EXP))).toBe('delta_invalid');
    const shape = new Map(d);
    shape.set('layers.0.q_proj.lora_A', { shape: [48, 4], data: new Float32Array(192) });
    expect(codeOf(() => validateDelta(enc(shape), EXP))).toBe('delta_invalid');
    // F16: hand-written header with dtype F16
    const f16 = raw('{"a":{"data_offsets":[0,4],"dtype":"F16","shape":[2]}}', [0]);
    expect(codeOf(() => decodeSafetensors(f16))).toBe('delta_invalid');
    expect(codeOf(() => validateDelta(enc(d, { ...meta, base_model_sha: 'b'.repeat(64) }), EXP))).toBe(
      'base_model_mismatch',
    );
    expect(codeOf(() => validateDelta(enc(d, { ...meta, rank: '8' }), EXP))).toBe('delta_invalid');
    expect(codeOf(() => validateDelta(enc(d, { ...meta, extra: 'x' }), EXP))).toBe('delta_invalid');
    // norm bound: C(1+1e-4) with σ=0
    expect(codeOf(() => validateDelta(enc(d), { ...EXP, clip_norm: 0.01 }))).toBe('delta_invalid');
  });

  it('structural checks: duplicate keys, whitespace, overlaps, holes, header length, truncation', () => {
    const ok =
      '{"a":{"data_offsets":[0,4],"dtype":"F32","shape":[1]},"b":{"data_offsets":[4,8],"dtype":"F32","shape":[1]}}';
    expect(codeOf(() => decodeSafetensors(raw(ok, [1, 2])))).toBe('ok');
    const dup =
      '{"a":{"data_offsets":[0,4],"dtype":"F32","shape":[1]},"a":{"data_offsets":[0,4],"dtype":"F32","shape":[1]}}';
    expect(codeOf(() => decodeSafetensors(raw(dup, [1])))).toBe('delta_invalid');
    expect(codeOf(() => decodeSafetensors(raw(ok.replace(':{', ': {'), [1, 2])))).toBe('delta_invalid');
    const overlap = ok.replace('[4,8]', '[0,4]');
    expect(codeOf(() => decodeSafetensors(raw(overlap, [1])))).toBe('delta_invalid');
    const hole = ok.replace('[4,8]', '[8,12]');
    expect(codeOf(() => decodeSafetensors(raw(hole, [1, 2, 3])))).toBe('delta_invalid');
    expect(codeOf(() => decodeSafetensors(raw(ok, [1, 2, 3])))).toBe('delta_invalid'); // trailing bytes
    expect(codeOf(() => decodeSafetensors(raw(ok, [1])))).toBe('delta_invalid'); // truncated data
    expect(codeOf(() => decodeSafetensors(raw(ok, [1, 2], false)))).toBe('delta_invalid'); // unpadded
    const big = raw(ok, [1, 2]);
    new DataView(big.buffer).setUint32(4, 1, true); // header length ≥ 2^32
    expect(codeOf(() => decodeSafetensors(big))).toBe('delta_invalid');
    expect(codeOf(() => decodeSafetensors(new Uint8Array(7)))).toBe('delta_invalid');
    const num = ok.replace('[0,4]', '[0,4.0]');
    expect(codeOf(() => decodeSafetensors(raw(num, [1, 2])))).toBe('delta_invalid');
  });

  it('§10.7 64 MiB + 1 is refused by size before any parsing; a lying header allocates nothing', () => {
    const over = new Uint8Array(FEDLEARN_SUBMISSION_MAX_BYTES + 1);
    expect(codeOf(() => decodeSafetensors(over))).toBe('delta_invalid');
    // a header claiming a 2^40-element tensor over 8 bytes of data: rejected from the header alone
    const liar = raw(
      '{"a":{"data_offsets":[0,4398046511104],"dtype":"F32","shape":[1099511627776]}}',
      [1, 2],
    );
    expect(codeOf(() => decodeSafetensors(liar))).toBe('delta_invalid');
    // header length larger than the buffer
    const b = raw('{}', []);
    new DataView(b.buffer).setUint32(0, 1 << 20, true);
    expect(codeOf(() => decodeSafetensors(b))).toBe('delta_invalid');
  });

  it('§4 the announce size bound: rank 64 on 8 modules of a large card exceeds 64 MiB', () => {
    const card = {
      base_model_id: 'x',
      layers: 32,
      modules: Object.fromEntries(
        ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((m) => [m, [4096, 4096] as [number, number]]),
      ),
    };
    expect(deltaBytesBound(card, Object.keys(card.modules), 64)).toBeGreaterThan(
      FEDLEARN_SUBMISSION_MAX_BYTES,
    );
    expect(deltaBytesBound(TINY_CARD, ['q_proj'], 4)).toBe(4 * 2 * 4 * 96 + 65536);
  });

  it('fuzz: random and mutated bytes give a result or delta_invalid, nothing else', () => {
    const seedBytes = enc(randomDelta(3, ['q_proj'], 4));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (b) => {
        expect(['ok', 'delta_invalid']).toContain(codeOf(() => decodeSafetensors(b)));
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        fc.option(fc.nat(), { nil: undefined }),
        (muts, cut) => {
          let b = seedBytes.slice();
          for (const [i, v] of muts) b[i % Math.min(b.length, 400)] = v; // mostly the header
          if (cut !== undefined) b = b.subarray(0, cut % (b.length + 1));
          const c = codeOf(() => validateDelta(b, { ...EXP, target_modules: ['q_proj'] }));
          expect(['ok', 'delta_invalid', 'base_model_mismatch']).toContain(c);
        },
      ),
      { numRuns: 500 },
    );
  });
});
