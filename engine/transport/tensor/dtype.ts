/**
 * dtype conversion for X08 tensors: fp32 ↔ fp16 ↔ bf16 ↔ int8, with defined rounding.
 *
 * - fp32 → fp16 and fp32 → bf16: IEEE round-to-nearest, ties-to-even. Overflow → ±Inf, tiny values → fp16
 *   subnormals / signed zero. NaN stays NaN (quiet, sign kept); Inf stays Inf.
 * - fp16/bf16 → fp32: exact.
 * - int8 is symmetric linear quantisation with an explicit `scale` (x ≈ q·scale): q = clamp(rne(x/scale),
 *   −128, 127); ±Inf saturate; NaN is refused (`bad_request`) because int8 has no NaN. The scale is not on the
 *   X08 wire: callers carry it with the tensor's metadata.
 * Element bytes are little-endian (core §1), on any host.
 */
import { HnError } from '../../core/errors.js';
import { DTYPE_BYTES, type Dtype, type Tensor } from '../../core/types.js';

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/** fp32 bits (u32) → fp16 bits (u16), round-to-nearest-even. */
export function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0); // NaN (quiet) / Inf
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → Inf
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal → ±0
    mant |= 0x800000; // implicit bit
    const shift = 14 - e; // 14..24
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && m & 1)) m++;
    return sign | m; // may round up into the smallest normal: bit pattern stays correct
  }
  const rest = mant & 0x1fff;
  let h = sign | (e << 10) | (mant >>> 13);
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++; // carry may ripple into the exponent (→ Inf): correct
  return h;
}

/** fp16 bits → fp32 bits (exact). */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp === 0) {
    if (mant === 0) return sign >>> 0;
    let e = -14;
    while ((mant & 0x400) === 0) {
      mant <<= 1;
      e--;
    }
    mant &= 0x3ff;
    return (sign | ((e + 127) << 23) | (mant << 13)) >>> 0;
  }
  return (sign | ((exp - 15 + 127) << 23) | (mant << 13)) >>> 0;
}

/** fp32 bits → bf16 bits, round-to-nearest-even; NaN stays a quiet NaN. */
export function f32BitsToBf16Bits(x: number): number {
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return ((x >>> 16) & 0xffff) | 0x40;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

export const bf16BitsToF32Bits = (b: number): number => (b << 16) >>> 0;

export const f32ToF16 = (v: number): number => {
  f32buf[0] = v;
  return f32BitsToF16Bits(u32buf[0]!);
};
export const f16ToF32 = (h: number): number => {
  u32buf[0] = f16BitsToF32Bits(h);
  return f32buf[0]!;
};
export const f32ToBf16 = (v: number): number => {
  f32buf[0] = v;
  return f32BitsToBf16Bits(u32buf[0]!);
};
export const bf16ToF32 = (b: number): number => {
  u32buf[0] = bf16BitsToF32Bits(b);
  return f32buf[0]!;
};

/** Round half to even (for quantisation). */
function rne(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function quantizeInt8(v: number, scale: number): number {
  if (Number.isNaN(v)) throw new HnError('bad_request', 'NaN cannot be quantised to int8');
  const q = rne(v / scale);
  return q > 127 ? 127 : q < -128 ? -128 : q;
}

/** Scale that maps max|x| to 127 (1 for an all-zero tensor). */
export function int8ScaleFor(values: Float32Array): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) {
    const a = Math.abs(values[i]!);
    if (a > m && a !== Infinity) m = a;
  }
  if (m === 0) return 1;
  const s = Math.fround(m / 127);
  return s > 0 ? s : 2 ** -149; // subnormal maxima: the smallest positive fp32 keeps the scale valid
}

function checkScale(scale: number | undefined): number {
  if (scale === undefined || !Number.isFinite(scale) || scale <= 0) {
    throw new HnError('bad_request', 'int8 conversion needs an explicit finite scale > 0');
  }
  return scale;
}

// --- byte views (little-endian on any host) ----------------------------------------------------------------

function u16View(bytes: Uint8Array): Uint16Array {
  const n = bytes.length >> 1;
  if (LITTLE_ENDIAN && bytes.byteOffset % 2 === 0) return new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = bytes[2 * i]! | (bytes[2 * i + 1]! << 8);
  return out;
}
function u32View(bytes: Uint8Array): Uint32Array {
  const n = bytes.length >> 2;
  if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) return new Uint32Array(bytes.buffer, bytes.byteOffset, n);
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const o = 4 * i;
    out[i] = (bytes[o]! | (bytes[o + 1]! << 8) | (bytes[o + 2]! << 16) | (bytes[o + 3]! << 24)) >>> 0;
  }
  return out;
}
function leBytes(a: Uint16Array | Uint32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const w = a.BYTES_PER_ELEMENT;
  const out = new Uint8Array(a.byteLength);
  for (let i = 0; i < a.length; i++) for (let k = 0; k < w; k++) out[i * w + k] = (a[i]! >>> (8 * k)) & 0xff;
  return out;
}

/** Element values of a tensor as fp32 (int8 needs its scale). */
export function toFloat32(t: Tensor, scale?: number): Float32Array {
  const n = t.data.length / DTYPE_BYTES[t.dtype];
  switch (t.dtype) {
    case 'fp32': {
      const u = u32View(t.data);
      return new Float32Array(u.buffer.slice(u.byteOffset, u.byteOffset + u.byteLength));
    }
    case 'fp16': {
      const h = u16View(t.data);
      const out = new Uint32Array(n);
      for (let i = 0; i < n; i++) out[i] = f16BitsToF32Bits(h[i]!);
      return new Float32Array(out.buffer);
    }
    case 'bf16': {
      const h = u16View(t.data);
      const out = new Uint32Array(n);
      for (let i = 0; i < n; i++) out[i] = h[i]! << 16;
      return new Float32Array(out.buffer);
    }
    case 'int8': {
      const s = checkScale(scale);
      const q = new Int8Array(t.data.buffer, t.data.byteOffset, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = q[i]! * s;
      return out;
    }
  }
}

/** Build a tensor of `dtype` from fp32 values (int8 needs its scale). */
export function fromFloat32(values: Float32Array, shape: number[], dtype: Dtype, scale?: number): Tensor {
  const n = values.length;
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  switch (dtype) {
    case 'fp32':
      return { dtype, shape: [...shape], data: leBytes(new Uint32Array(bits)) };
    case 'fp16': {
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = f32BitsToF16Bits(bits[i]!);
      return { dtype, shape: [...shape], data: leBytes(out) };
    }
    case 'bf16': {
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = f32BitsToBf16Bits(bits[i]!);
      return { dtype, shape: [...shape], data: leBytes(out) };
    }
    case 'int8': {
      const s = checkScale(scale);
      const out = new Int8Array(n);
      for (let i = 0; i < n; i++) out[i] = quantizeInt8(values[i]!, s);
      return { dtype, shape: [...shape], data: new Uint8Array(out.buffer) };
    }
  }
}

export interface ConvertOptions {
  /** Scale of the source when it is int8. */
  fromScale?: number;
  /** Scale of the target when it is int8. */
  toScale?: number;
}

/**
 * Convert a tensor to another dtype. Conversions go through fp32, which is exact for fp16/bf16 sources, so
 * fp16 → bf16 is a single rounding of the exact value (no double-rounding surprise).
 */
export function convertTensor(t: Tensor, to: Dtype, opts: ConvertOptions = {}): Tensor {
  if (t.dtype === to && to !== 'int8') return { dtype: to, shape: [...t.shape], data: t.data.slice() };
  if (t.dtype === 'int8' && to === 'int8' && opts.fromScale === opts.toScale) {
    return { dtype: to, shape: [...t.shape], data: t.data.slice() };
  }
  return fromFloat32(toFloat32(t, opts.fromScale), t.shape, to, opts.toScale);
}
