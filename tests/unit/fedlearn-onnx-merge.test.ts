/**
 * M28 adapter application on the ONNX path: the inference worker's `setAdapter` patches W + ΔW into
 * model.onnx's float32 initializers (engine/fedlearn/onnx-merge.ts). The patched bytes are exactly the
 * model the generator writes from the merged weights, onnxruntime runs them with changed logits, and
 * a model without the adapted weights (quantized, another shape) is refused while its bytes stay intact.
 */
import { describe, expect, it } from 'vitest';
import { weightDeltasOf } from '../../engine/fedlearn/adapters.js';
import { decoderCard, mergeAdapter } from '../../engine/fedlearn/base.js';
import { ADAPTER_FORMAT, encodeSafetensors, type Tensors } from '../../engine/fedlearn/delta.js';
import { loraInit } from '../../engine/fedlearn/lora-init.js';
import { mergeIntoOnnx, onnxWeightName } from '../../engine/fedlearn/onnx-merge.js';
import { xoshiro128ss } from '../../engine/fedlearn/rng.js';
import { DecoderPart, WholeModelRunner } from '../../engine/llm/runtime.js';
import { encodeModel } from '../../tools/model/onnx.js';
import { buildTinyModel } from '../../tools/model/tiny-graph.js';
import { tinyConfig } from '../../tools/model/tiny-model.js';
import { SMALL, SMALL_WEIGHTS, maxAbsDiff, ortLogits } from './fedlearn-tf-helpers.js';

const TARGETS = ['q_proj', 'v_proj', 'o_proj', 'down_proj'];
const RANK = 4;
const ALPHA = 8;

function adapter(seed: number): { tensors: Tensors; bytes: Uint8Array } {
  const tensors = loraInit(decoderCard('hn-tiny-decoder', SMALL), TARGETS, RANK, seed);
  const rng = xoshiro128ss(seed);
  for (const [n, t] of tensors)
    if (n.endsWith('.lora_B')) for (let i = 0; i < t.data.length; i++) t.data[i] = (rng.float() - 0.5) * 0.2;
  const metadata = {
    format: ADAPTER_FORMAT,
    base_model_sha: 'b'.repeat(64),
    rank: String(RANK),
    alpha: String(ALPHA),
  };
  return { tensors, bytes: encodeSafetensors({ metadata, tensors }) };
}
async function logitsOf(bytes: Uint8Array, ids: number[]): Promise<Float32Array> {
  const dims = {
    num_kv_heads: SMALL.num_key_value_heads,
    head_dim: SMALL.head_dim,
    hidden_size: SMALL.hidden_size,
    vocab_size: SMALL.vocab_size,
    max_seq_len: SMALL.max_position_embeddings,
  };
  const part = await DecoderPart.load(bytes, dims, 'onnx-merge', { executionProviders: ['wasm'] });
  const sess = new WholeModelRunner(part).openSession();
  try {
    return (await sess.forwardAll(ids)).slice();
  } finally {
    sess.close();
    await part.release();
  }
}
const code = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return 'no error';
};

describe('M28 adapter merged into model.onnx', () => {
  const base = encodeModel(buildTinyModel(SMALL, SMALL_WEIGHTS as never));

  it('patched bytes equal the generator’s model from W + ΔW; the input is untouched', () => {
    const a = adapter(5);
    const before = new Uint8Array(base);
    const patched = mergeIntoOnnx(base, weightDeltasOf(a.bytes));
    const merged = mergeAdapter(SMALL, SMALL_WEIGHTS, a.tensors, RANK, ALPHA);
    const want = encodeModel(buildTinyModel(SMALL, merged as never));
    expect(patched.length).toBe(want.length);
    expect(Buffer.from(patched).equals(Buffer.from(want))).toBe(true);
    expect(Buffer.from(base).equals(Buffer.from(before))).toBe(true);
    expect(Buffer.from(patched).equals(Buffer.from(base))).toBe(false);
  });

  it('onnxruntime runs the patched bytes: the adapter changes the logits; the base bytes give the base logits', async () => {
    const a = adapter(6);
    const ids = Array.from(new TextEncoder().encode('Water the roses.'));
    const merged = mergeAdapter(SMALL, SMALL_WEIGHTS, a.tensors, RANK, ALPHA);
    const patched = await logitsOf(mergeIntoOnnx(base, weightDeltasOf(a.bytes)), ids);
    expect(maxAbsDiff(patched, await ortLogits(SMALL, merged, ids))).toBe(0);
    expect(maxAbsDiff(patched, await logitsOf(base, ids))).toBeGreaterThan(1e-2);
  });

  it('refusals: no such weight, quantized model, wrong shape, not a decoder module, not an adapter', () => {
    const a = adapter(7);
    const d = weightDeltasOf(a.bytes);
    const keep = new Uint8Array(base);
    expect(code(() => mergeIntoOnnx(base, new Map([['layers.9.q_proj', d.get('layers.0.q_proj')!]])))).toBe(
      'base_model_mismatch',
    );
    expect(code(() => mergeIntoOnnx(base, new Map([['layers.0.q_proj', new Float64Array(3)]])))).toBe(
      'base_model_mismatch',
    );
    expect(code(() => mergeIntoOnnx(base, new Map([['layers.0.lm_head', new Float64Array(3)]])))).toBe(
      'delta_invalid',
    );
    const q = encodeModel(
      buildTinyModel(tinyConfig({ ...SMALL, hidden_size: 64, head_dim: 16, quantized: true })),
    );
    expect(code(() => mergeIntoOnnx(q, new Map([['layers.0.q_proj', new Float64Array(64 * 64)]])))).toBe(
      'base_model_mismatch',
    );
    expect(code(() => weightDeltasOf(new Uint8Array([1, 2, 3])))).not.toBe('no error');
    expect(
      code(() =>
        weightDeltasOf(encodeSafetensors({ metadata: { rank: '4', alpha: '8' }, tensors: new Map() })),
      ),
    ).toBe('delta_invalid');
    expect(Buffer.from(base).equals(Buffer.from(keep))).toBe(true);
    expect(onnxWeightName('layers.3.down_proj')).toBe('model.layers.3.mlp.down_proj.weight');
  });
});
