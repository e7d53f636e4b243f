/** Test helpers for the TF.js trainer: a small tiny-decoder config, its ONNX bytes, and ORT logits. */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { configureOrt } from '../../engine/llm/ort.js';
import { DecoderPart, WholeModelRunner } from '../../engine/llm/runtime.js';
import { encodeModel } from '../../tools/model/onnx.js';
import { buildTinyModel } from '../../tools/model/tiny-graph.js';
import { tinyConfig } from '../../tools/model/tiny-model.js';
import { makeWeights, type TinyConfig } from '../../tools/model/tiny-weights.js';
import type { DecoderWeights } from '../../engine/fedlearn/base.js';

configureOrt({ numThreads: 1 });

/** The digest §10.11 prototype size: 2 layers, d=48, MLP 192 (GQA 4/2 heads of 12). */
export const SMALL: TinyConfig = tinyConfig({
  num_hidden_layers: 2,
  hidden_size: 48,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 12,
  intermediate_size: 192,
  max_position_embeddings: 64,
  seed: 7,
  model_id: 'hn-tiny-decoder',
});
export const SMALL_WEIGHTS: DecoderWeights = makeWeights(SMALL);

/** wasm backend (the digest's Node backend); cpu when wasm cannot start. */
export async function useWasm(): Promise<string> {
  if (tf.getBackend() !== 'wasm') {
    const ok = await tf.setBackend('wasm').catch(() => false);
    if (!ok) await tf.setBackend('cpu');
  }
  await tf.ready();
  return tf.getBackend();
}

/** onnxruntime-web (WASM) logits [S·V] of the ONNX graph built from these weights. */
export async function ortLogits(c: TinyConfig, w: DecoderWeights, ids: number[]): Promise<Float32Array> {
  const bytes = encodeModel(buildTinyModel(c, w as never));
  const part = await DecoderPart.load(
    bytes,
    {
      num_kv_heads: c.num_key_value_heads,
      head_dim: c.head_dim,
      hidden_size: c.hidden_size,
      vocab_size: c.vocab_size,
      max_seq_len: c.max_position_embeddings,
    },
    'fedlearn-oracle',
    { executionProviders: ['wasm'] },
  );
  const sess = new WholeModelRunner(part).openSession();
  try {
    return (await sess.forwardAll(ids)).slice();
  } finally {
    sess.close();
    await part.release();
  }
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} ≠ ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
