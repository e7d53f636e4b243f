/**
 * Activations on the wire (B5): `Hidden` (ORT side, fp32 values or raw fp16 bits) ⇄ X08 `Tensor` (little-endian
 * bytes, fp16 default or fp32), plus the input checks a host and the orchestrator apply to every tensor.
 */
import { HnError } from '../core/errors.js';
import type { Tensor } from '../core/types.js';
import type { Hidden, HiddenDtype } from '../llm/runtime.js';
import { halfToFloat } from '../llm/runtime.js';
import { fromFloat32, toFloat32 } from '../transport/tensor/dtype.js';

export type WireDtype = 'fp16' | 'fp32';

export function hiddenToFloat32(h: Hidden): Float32Array {
  return h.dtype === 'float32' ? (h.data as Float32Array) : halfToFloat(h.data as Uint16Array);
}

/** Encode an activation for the wire. */
export function toWire(h: Hidden, dtype: WireDtype): Tensor {
  return fromFloat32(hiddenToFloat32(h), h.dims, dtype);
}

/** Decode a wire tensor into the compute dtype of the receiving graph (fp32 graphs get fp32 values). */
export function fromWire(t: Tensor, compute: HiddenDtype): Hidden {
  const f = toFloat32(t);
  if (compute === 'float32') return { dtype: 'float32', dims: [...t.shape], data: f };
  return { dtype: 'float16', dims: [...t.shape], data: u16(fromFloat32(f, t.shape, 'fp16').data) };
}

function u16(b: Uint8Array): Uint16Array {
  const c = b.slice();
  return new Uint16Array(c.buffer, 0, c.length / 2);
}

/** Shape/dtype check of an incoming activation: [1,S,E], fp16|fp32, S ≥ 1, length consistent. */
export function checkWireTensor(t: Tensor, hidden: number, maxS: number): number {
  if (t.dtype !== 'fp16' && t.dtype !== 'fp32')
    throw new HnError('bad_request', 'activation dtype must be fp16 or fp32', {
      details: { reason: 'shape' },
    });
  const [b, s, e] = t.shape;
  if (t.shape.length !== 3 || b !== 1 || e !== hidden || !Number.isInteger(s) || s! < 1)
    throw new HnError('bad_request', `activation must be [1,S,${hidden}]`, { details: { reason: 'shape' } });
  if (s! > maxS) throw new HnError('tensor_too_large', `activation of ${s} positions exceeds ${maxS}`);
  if (t.data.length !== s! * hidden * (t.dtype === 'fp16' ? 2 : 4))
    throw new HnError('bad_request', 'activation data length does not match its shape');
  return s!;
}

/** 'nan' | 'inf' when any element is not finite (checked on raw fp16 bits or fp32 values), else null. */
export function nonFinite(t: Tensor): 'nan' | 'inf' | null {
  if (t.dtype === 'fp16') {
    const n = t.data.length >> 1;
    for (let i = 0; i < n; i++) {
      const h = t.data[2 * i]! | (t.data[2 * i + 1]! << 8);
      if ((h & 0x7c00) === 0x7c00) return h & 0x3ff ? 'nan' : 'inf';
    }
    return null;
  }
  const f = toFloat32(t);
  for (let i = 0; i < f.length; i++) {
    const v = f[i]!;
    if (Number.isNaN(v)) return 'nan';
    if (!Number.isFinite(v)) return 'inf';
  }
  return null;
}

/** Per-position RMS of a [1,S,E] fp32 activation. */
export function rmsPerPosition(values: Float32Array, S: number, E: number): number[] {
  const out: number[] = [];
  for (let s = 0; s < S; s++) {
    let acc = 0;
    for (let e = 0; e < E; e++) acc += values[s * E + e]! ** 2;
    out.push(Math.sqrt(acc / E));
  }
  return out;
}
