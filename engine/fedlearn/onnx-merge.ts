/**
 * M28 adapter application on the ONNX path (digest §9 "Apply"): the model.onnx bytes with W + ΔW
 * written into the float32 initializers of the adapted modules (`model.layers.{i}.self_attn.q_proj.weight`
 * … `model.layers.{i}.mlp.down_proj.weight`, the Optimum/tools-model names, layout [d_in, d_out]).
 * Patched in place in a copy (raw_data keeps its length), so nothing else of the graph changes; the
 * result equals the model the generator writes from the merged weights (W' = fround(W + ΔW)).
 * A model without such a weight (another base, a quantized or external-data export) is
 * `base_model_mismatch`: the adapter cannot be applied to it.
 */
import { fromUtf8 } from '../core/encoding.js';
import { HnError } from '../core/errors.js';
import { Reader, sub } from '../llm/onnx-external.js';
import { MODULE_WEIGHT, type ModuleName } from './base.js';

const ONNX_MODULE: Record<ModuleName, string> = {
  q_proj: 'self_attn.q_proj',
  k_proj: 'self_attn.k_proj',
  v_proj: 'self_attn.v_proj',
  o_proj: 'self_attn.o_proj',
  gate_proj: 'mlp.gate_proj',
  up_proj: 'mlp.up_proj',
  down_proj: 'mlp.down_proj',
};

/** `layers.{i}.{module}` → the ONNX initializer name of that weight. */
export function onnxWeightName(key: string): string {
  const m = /^layers\.(\d+)\.([a-z_]+)$/.exec(key);
  const mod = m?.[2] as ModuleName | undefined;
  if (!m || !mod || !(mod in MODULE_WEIGHT))
    throw new HnError('delta_invalid', `adapter module ${key} is not a decoder weight`);
  return `model.layers.${m[1]}.${ONNX_MODULE[mod]}.weight`;
}

interface TensorAt {
  name: string;
  dims: number[];
  dtype: number;
  raw: [number, number] | null;
}

function readTensor(b: Uint8Array, s: number, e: number): TensorAt {
  const t: TensorAt = { name: '', dims: [], dtype: 0, raw: null };
  const r = new Reader(b, s, e);
  while (!r.done) {
    const [f, wt, fs, fe] = r.field();
    if (f === 8 && wt === 2) t.name = fromUtf8(b.subarray(fs, fe));
    else if (f === 1 && wt === 0) t.dims.push(new Reader(b, fs, fe).varint());
    else if (f === 1 && wt === 2) {
      const p = new Reader(b, fs, fe);
      while (!p.done) t.dims.push(p.varint());
    } else if (f === 2 && wt === 0) t.dtype = new Reader(b, fs, fe).varint();
    else if (f === 9 && wt === 2) t.raw = [fs, fe];
  }
  return t;
}

/**
 * A copy of `model` with ΔW (per `layers.{i}.{module}`, row-major [d_in, d_out], e.g. from
 * `weightDeltasOf`) added to the matching float32 initializers. The input bytes stay untouched.
 */
export function mergeIntoOnnx(model: Uint8Array, deltas: ReadonlyMap<string, Float64Array>): Uint8Array {
  const want = new Map<string, Float64Array>();
  for (const [key, d] of deltas) want.set(onnxWeightName(key), d);
  const out = new Uint8Array(model); // a copy (a Node Buffer's slice() would be a view)
  const done = new Set<string>();
  sub(model, 0, model.length, 7, (gs, ge) =>
    sub(model, gs, ge, 5, (ts, te) => {
      const t = readTensor(model, ts, te);
      const d = want.get(t.name);
      if (!d) return;
      const n = t.dims.reduce((a, x) => a * x, 1);
      if (t.dtype !== 1 || !t.raw || t.dims.length !== 2 || n !== d.length || t.raw[1] - t.raw[0] !== 4 * n)
        throw new HnError('base_model_mismatch', `${t.name} is not a float32 weight of the adapter's shape`);
      const dv = new DataView(out.buffer, out.byteOffset + t.raw[0], 4 * n);
      for (let i = 0; i < n; i++) dv.setFloat32(4 * i, dv.getFloat32(4 * i, true) + d[i]!, true);
      done.add(t.name);
    }),
  );
  for (const name of want.keys())
    if (!done.has(name))
      throw new HnError('base_model_mismatch', `the model has no float32 initializer ${name}`, {
        details: { reason: 'weight_missing' },
      });
  return out;
}
