/**
 * The M28 oracle in the training worker (issue #16): before any training result is trusted, the TF.js
 * forward pass of the base model — on the backend the worker picked (webgpu, wasm or cpu) — must
 * reproduce the logits onnxruntime-web computes from the ONNX graph of the same weights within
 * ORACLE_TOLERANCE, for a fixed canary input. A decoder that fails is refused (`base_model_mismatch`:
 * the model the worker would train is not the base model the inference path runs) and disposed.
 * The ONNX graph is the one tools/model writes from these weights — for the demo model that is
 * byte for byte models/demo/model.onnx (tested) — and onnxruntime runs it on WASM, as a reference.
 * No Vite-only imports here, so Node tests run exactly this code.
 */
import * as tf from '@tensorflow/tfjs';
import { HnError } from '../../engine/core/errors.js';
import type { DecoderDims, DecoderWeights } from '../../engine/fedlearn/base.js';
import { TfDecoder } from '../../engine/fedlearn/tf-decoder.js';
import { DecoderPart, WholeModelRunner } from '../../engine/llm/runtime.js';
import { encodeModel } from '../../tools/model/onnx.js';
import { buildTinyModel } from '../../tools/model/tiny-graph.js';
import { DEFAULT_TINY } from '../../tools/model/tiny-weights.js';

/** The oracle's bound on max |Δ| between TF.js and ONNX logits (issue #16, digest §10). */
export const ORACLE_TOLERANCE = 1e-4;

/** The fixed canary input: byte tokens of this text (ids < 256, valid for every byte vocabulary). */
export const CANARY_TEXT = 'HearthNet oracle canary: the hearth is warm tonight, 42 roses.';
export const CANARY_IDS: readonly number[] = Array.from(new TextEncoder().encode(CANARY_TEXT));

/** The ONNX graph tools/model writes for these weights (plain fp32, unfused). */
export function referenceOnnx(base_model_id: string, d: DecoderDims, w: DecoderWeights): Uint8Array {
  const c = { ...DEFAULT_TINY, ...d, model_id: base_model_id, fused: false, quantized: false };
  return encodeModel(buildTinyModel(c, w as never));
}

/** onnxruntime-web (WASM EP) logits [S·V] of `onnx` for `ids`. */
export async function onnxLogits(
  onnx: Uint8Array,
  d: DecoderDims,
  ids: readonly number[],
): Promise<Float32Array> {
  const part = await DecoderPart.load(
    onnx,
    {
      num_kv_heads: d.num_key_value_heads,
      head_dim: d.head_dim,
      hidden_size: d.hidden_size,
      vocab_size: d.vocab_size,
      max_seq_len: d.max_position_embeddings,
    },
    'fedlearn-oracle',
    { executionProviders: ['wasm'] },
  );
  const sess = new WholeModelRunner(part).openSession();
  try {
    return (await sess.forwardAll([...ids])).slice();
  } finally {
    sess.close();
    await part.release();
  }
}

/** max |Δ| between the decoder's TF.js logits for `ids` (current backend) and `reference`. */
export async function oracleDiff(
  dec: TfDecoder,
  ids: readonly number[],
  reference: Float32Array,
): Promise<number> {
  const out = tf.tidy(() => dec.forward(tf.tensor2d([[...ids]], [1, ids.length], 'int32')));
  let got: Float32Array;
  try {
    got = (await out.data()) as Float32Array;
  } finally {
    out.dispose();
  }
  if (got.length !== reference.length)
    throw new HnError('base_model_mismatch', 'the TF.js logits and the ONNX logits differ in shape', {
      details: { tf: got.length, onnx: reference.length },
    });
  let m = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i]! - reference[i]!);
    // NaN compares false: count it as an unbounded difference
    m = Number.isNaN(d) ? Infinity : Math.max(m, d);
    if (m === Infinity) break;
  }
  return m;
}

/**
 * A TF.js decoder of `weights` that passed the oracle on the current backend against the ONNX logits
 * of `onnx` (default: the graph tools/model writes for the same weights); otherwise it is disposed
 * and `base_model_mismatch` is thrown with the measured max |Δ|.
 */
export async function checkedDecoder(
  base_model_id: string,
  dims: DecoderDims,
  weights: DecoderWeights,
  onnx?: Uint8Array,
): Promise<{ dec: TfDecoder; oracle_max_abs_diff: number }> {
  const ids = CANARY_IDS.slice(0, dims.max_position_embeddings);
  const reference = await onnxLogits(onnx ?? referenceOnnx(base_model_id, dims, weights), dims, ids);
  const dec = new TfDecoder(dims, weights);
  try {
    const diff = await oracleDiff(dec, ids, reference);
    if (!(diff <= ORACLE_TOLERANCE))
      throw new HnError(
        'base_model_mismatch',
        `base_model_mismatch: the TF.js forward pass (${tf.getBackend()}) differs from the ONNX logits by ${diff.toExponential(2)} (> ${ORACLE_TOLERANCE}); training refused`,
        { details: { max_abs_diff: diff, tolerance: ORACLE_TOLERANCE, backend: tf.getBackend() } },
      );
    return { dec, oracle_max_abs_diff: diff };
  } catch (e) {
    dec.dispose();
    throw e;
  }
}
