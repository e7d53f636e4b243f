/** dtype conversion: fp32 ↔ fp16 ↔ bf16 ↔ int8 with round-to-nearest-even and explicit int8 scales. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { toHex } from '../../engine/core/encoding.js';
import {
  bf16ToF32,
  convertTensor,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  fromFloat32,
  int8ScaleFor,
  quantizeInt8,
  toFloat32,
} from '../../engine/transport/tensor/dtype.js';

const f32 = (bits: number) => new Float32Array(new Uint32Array([bits]).buffer)[0]!;
const bitsOf = (v: number) => new Uint32Array(new Float32Array([v]).buffer)[0]!;
const isNaN16 = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;

/** Reference: the fp16 nearest to v (ties to even mantissa), by brute force over neighbouring fp16 values. */
function nearestF16(v: number): number {
  if (Number.isNaN(v)) return NaN;
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a >= 65520) return sign | 0x7c00; // ≥ max + half ulp → Inf
  let best = 0;
  let bestErr = Infinity;
  let lo = 0;
  let hi = 0x7bff;
  while (lo < hi) {
    // largest h with value(h) ≤ a
    const mid = (lo + hi + 1) >> 1;
    if (f16ToF32(mid) <= a) lo = mid;
    else hi = mid - 1;
  }
  for (const h of [lo, lo + 1]) {
    if (h > 0x7bff) continue;
    const err = Math.abs(f16ToF32(h) - a);
    if (err < bestErr || (err === bestErr && (h & 1) === 0)) {
      best = h;
      bestErr = err;
    }
  }
  return sign | best;
}

describe('fp16', () => {
  it('every fp16 value survives fp16 → fp32 → fp16 exactly (NaN stays NaN)', () => {
    for (let h = 0; h < 0x10000; h++) {
      const back = f32ToF16(f16ToF32(h));
      if (isNaN16(h)) expect(isNaN16(back)).toBe(true);
      else expect(back).toBe(h);
    }
  });

  it('fp32 → fp16 picks the nearest value, ties to even (property over all bit patterns)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (bits) => {
        const v = f32(bits);
        const h = f32ToF16(v);
        if (Number.isNaN(v)) expect(isNaN16(h)).toBe(true);
        else expect(h).toBe(nearestF16(v));
      }),
      { numRuns: 20000 },
    );
  });

  it('edge cases: ties, subnormals, overflow, signed zero, Inf', () => {
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00); // tie → even (down)
    expect(f32ToF16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even (up)
    expect(f32ToF16(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(f32ToF16(2 ** -25)).toBe(0x0000); // half of it: tie → even (0)
    expect(f32ToF16(3 * 2 ** -26)).toBe(0x0001);
    expect(f32ToF16(65504)).toBe(0x7bff);
    expect(f32ToF16(65519)).toBe(0x7bff);
    expect(f32ToF16(65520)).toBe(0x7c00);
    expect(f32ToF16(-0)).toBe(0x8000);
    expect(f32ToF16(-Infinity)).toBe(0xfc00);
    expect(f16ToF32(0x0001)).toBe(2 ** -24);
    expect(f16ToF32(0x03ff)).toBe(1023 * 2 ** -24);
  });
});

describe('bf16', () => {
  it('round-to-nearest-even on the upper 16 bits; exact widening; NaN stays NaN', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (bits) => {
        const v = f32(bits);
        const b = f32ToBf16(v);
        const back = bf16ToF32(b);
        if (Number.isNaN(v)) {
          expect(Number.isNaN(back)).toBe(true);
          return;
        }
        // reference on the exact bits: below half → truncate, above → next, exact half → even; overflow → ±Inf
        const r = bits & 0xffff;
        const down = bits >>> 16;
        const expected = r < 0x8000 ? down : r > 0x8000 ? down + 1 : down + (down & 1);
        expect(b).toBe(expected & 0xffff);
        expect(bitsOf(back)).toBe(((expected & 0xffff) << 16) >>> 0);
        if (Math.abs(v) < 3.3e38 && Math.abs(v) >= 2 ** -126)
          expect(Math.abs(back - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -8);
      }),
      { numRuns: 20000 },
    );
    expect(f32ToBf16(1)).toBe(0x3f80);
    expect(toHex(fromFloat32(new Float32Array([1, -2]), [2], 'bf16').data)).toBe('803f00c0');
  });
});

describe('int8 with an explicit scale', () => {
  it('quantises with round-half-even, saturates, refuses NaN', () => {
    expect(quantizeInt8(2.5, 1)).toBe(2);
    expect(quantizeInt8(3.5, 1)).toBe(4);
    expect(quantizeInt8(-2.5, 1)).toBe(-2);
    expect(quantizeInt8(1000, 1)).toBe(127);
    expect(quantizeInt8(-Infinity, 1)).toBe(-128);
    expect(() => quantizeInt8(NaN, 1)).toThrow(/NaN/);
    expect(int8ScaleFor(new Float32Array([0.5, -12.7, 3]))).toBe(Math.fround(12.7 / 127));
  });

  it('needs a scale in both directions', () => {
    const t = fromFloat32(new Float32Array([1, -1]), [2], 'int8', 0.5);
    expect(Array.from(new Int8Array(t.data.buffer))).toEqual([2, -2]);
    expect(() => toFloat32(t)).toThrow(/scale/);
    expect(Array.from(toFloat32(t, 0.5))).toEqual([1, -1]);
    expect(() => fromFloat32(new Float32Array([1]), [1], 'int8')).toThrow(/scale/);
  });

  it('quantisation error is at most scale/2 inside the range (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.float({ min: -100, max: 100, noNaN: true }), { minLength: 1, maxLength: 64 }),
        (xs) => {
          const v = new Float32Array(xs);
          const scale = int8ScaleFor(v);
          const back = toFloat32(fromFloat32(v, [v.length], 'int8', scale), scale);
          for (let i = 0; i < v.length; i++)
            expect(Math.abs(back[i]! - v[i]!)).toBeLessThanOrEqual(
              scale / 2 + 1e-6 * Math.abs(v[i]!) + 1e-30,
            );
        },
      ),
    );
  });
});

describe('tensor conversion', () => {
  it('fp32 → fp16 → fp32 → bf16 keeps shape, little-endian bytes, and the documented precision', () => {
    const vals = new Float32Array([1, -2, 0.5, 0, 3.14159, 65504, 1e-8, -0]);
    const t32 = fromFloat32(vals, [2, 4], 'fp32');
    expect(toHex(t32.data.subarray(0, 4))).toBe('0000803f');
    const t16 = convertTensor(t32, 'fp16');
    expect(t16.shape).toEqual([2, 4]);
    expect(toHex(t16.data.subarray(0, 8))).toBe('003c00c000380000');
    const back = toFloat32(t16);
    for (let i = 0; i < vals.length; i++)
      expect(Math.abs(back[i]! - vals[i]!)).toBeLessThanOrEqual(Math.abs(vals[i]!) * 2 ** -11 + 2 ** -25);
    const tb = convertTensor(t16, 'bf16');
    expect(toFloat32(tb)[0]).toBe(1);
    // fp16 → bf16 is one rounding of the exact fp16 value
    for (let h = 0; h < 0x7c00; h += 97) {
      const src = { dtype: 'fp16' as const, shape: [1], data: new Uint8Array([h & 0xff, h >> 8]) };
      expect(toFloat32(convertTensor(src, 'bf16'))[0]).toBe(bf16ToF32(f32ToBf16(f16ToF32(h))));
    }
    // unaligned views are handled
    const buf = new Uint8Array(9);
    buf.set(t32.data.subarray(0, 8), 1);
    expect(Array.from(toFloat32({ dtype: 'fp32', shape: [2], data: buf.subarray(1) }))).toEqual([1, -2]);
    expect(bitsOf(toFloat32(fromFloat32(new Float32Array([NaN]), [1], 'fp16'))[0]!) & 0x7fc00000).toBe(
      0x7fc00000,
    );
  });
});
