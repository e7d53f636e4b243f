/**
 * The inference worker's `setAdapter` (workers/inference/adapter.ts) on a real whole ONNX model loaded by
 * onnxruntime-web: with an adapter the same handle computes other logits (those of the generator's model
 * from W + ΔW), `null` brings back the base logits exactly; refusals (not an adapter, a model without the
 * adapted weights, a model that is not a whole ONNX) leave the loaded model as it was.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decoderCard } from '../../engine/fedlearn/base.js';
import { ADAPTER_FORMAT, encodeSafetensors } from '../../engine/fedlearn/delta.js';
import { loraInit } from '../../engine/fedlearn/lora-init.js';
import { xoshiro128ss } from '../../engine/fedlearn/rng.js';
import { configureOrt } from '../../engine/llm/ort.js';
import { OnnxLocalLlm } from '../../engine/llm/local.js';
import { dirSource } from '../../tools/model/node-source.js';
import { writeTinyModel } from '../../tools/model/tiny-model.js';
import { adapterApi, type AdaptableEntry } from '../../workers/inference/adapter.js';
import { maxAbsDiff } from './fedlearn-tf-helpers.js';

configureOrt({ numThreads: 1 });
const OVER = {
  num_hidden_layers: 2,
  hidden_size: 32,
  head_dim: 8,
  intermediate_size: 64,
  max_position_embeddings: 64,
};
const opts = { executionProviders: ['wasm' as const] };
let dir = '';
let entry: AdaptableEntry;
const engine = () => import('../../engine/llm/local.js');

function adapterBytes(layers: number): Uint8Array {
  const w = writeTinyModel(join(dir, 'x'), OVER);
  const card = decoderCard('m', { ...w.config, num_hidden_layers: layers });
  const tensors = loraInit(card, ['q_proj', 'v_proj'], 4, 3);
  const r = xoshiro128ss(4);
  for (const [n, t] of tensors)
    if (n.endsWith('lora_B')) for (let i = 0; i < t.data.length; i++) t.data[i] = r.float() - 0.5;
  return encodeSafetensors({ metadata: { format: ADAPTER_FORMAT, rank: '4', alpha: '8' }, tensors });
}
async function logits(): Promise<Float32Array> {
  const ctx = entry.onnx!.openContext();
  try {
    return (await ctx.forward([104, 101, 108, 108, 111])).slice();
  } finally {
    ctx.close();
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hn-m28-adapter-'));
  writeTinyModel(join(dir, 'm'), OVER);
  const src = dirSource(join(dir, 'm'));
  const llm = await OnnxLocalLlm.loadWhole(src, opts);
  entry = { llm, onnx: llm, whole: { src, opts } };
}, 120_000);
afterAll(async () => {
  await entry?.onnx?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('inference worker setAdapter', () => {
  it(
    'the adapter changes the logits of the same handle; null restores the base exactly',
    { timeout: 120_000 },
    async () => {
      const api = adapterApi(() => entry, engine);
      const base = await logits();
      const a = adapterBytes(OVER.num_hidden_layers);
      const r = await api.setAdapter('m1', a);
      expect(r.adapter_sha).toMatch(/^sha256:[0-9a-f]{64}$/);
      const adapted = await logits();
      expect(maxAbsDiff(base, adapted)).toBeGreaterThan(1e-2);
      const back = await api.setAdapter('m1', null);
      expect(back.adapter_sha).toBeNull();
      expect(maxAbsDiff(base, await logits())).toBe(0);
    },
  );

  it('refusals leave the loaded model in place', { timeout: 120_000 }, async () => {
    const api = adapterApi(() => entry, engine);
    const before = entry.onnx;
    const code = (p: Promise<unknown>) =>
      p.then(
        () => 'ok',
        (e: { code?: string }) => e.code,
      );
    expect(await code(api.setAdapter('m1', new Uint8Array([1, 2, 3])))).toBe('delta_invalid');
    expect(await code(api.setAdapter('m1', adapterBytes(4)))).toBe('base_model_mismatch'); // layers 2, 3 absent
    const webllm = adapterApi(() => ({ llm: entry.llm }), engine);
    expect(await code(webllm.setAdapter('w1', adapterBytes(2)))).toBe('base_model_mismatch');
    expect(entry.onnx).toBe(before);
  });
});
