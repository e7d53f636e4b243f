/**
 * M28 oracle in the training worker (workers/training/oracle.ts, the code `init` runs): on the real
 * demo model (seed 42, 259-token byte vocabulary) the TF.js forward pass reproduces onnxruntime's
 * logits of models/demo/model.onnx within 1e-4 and reports the measured max |Δ|; perturbed weights are
 * refused with base_model_mismatch and leave no decoder (tensors) behind.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DecoderWeights } from '../../engine/fedlearn/base.js';
import { DEFAULT_TINY, makeWeights } from '../../tools/model/tiny-weights.js';
import {
  CANARY_IDS,
  ORACLE_TOLERANCE,
  checkedDecoder,
  referenceOnnx,
} from '../../workers/training/oracle.js';
import { useWasm } from './fedlearn-tf-helpers.js';

const DEMO = { ...DEFAULT_TINY, model_id: 'hn-demo-tiny-llama', vocab_size: 259 };
const DEMO_ONNX = new URL('../../models/demo/model.onnx', import.meta.url);

beforeAll(async () => {
  await useWasm();
});

describe('training worker oracle (TF.js vs ONNX logits, 1e-4)', () => {
  const w = makeWeights(DEMO) as unknown as DecoderWeights;

  it('the reference graph is the demo model the inference path serves', () => {
    const ours = referenceOnnx(DEMO.model_id, DEMO, w);
    if (existsSync(DEMO_ONNX)) expect(Buffer.from(ours).equals(readFileSync(DEMO_ONNX))).toBe(true);
    expect(CANARY_IDS.length).toBeGreaterThan(32);
    expect(CANARY_IDS.every((i) => i < 256)).toBe(true);
  });

  it('demo model: passes and reports max |Δ|', { timeout: 180_000 }, async () => {
    const onnx = existsSync(DEMO_ONNX) ? new Uint8Array(readFileSync(DEMO_ONNX)) : undefined;
    const { dec, oracle_max_abs_diff } = await checkedDecoder(DEMO.model_id, DEMO, w, onnx);
    try {
      expect(oracle_max_abs_diff).toBeGreaterThanOrEqual(0);
      expect(oracle_max_abs_diff).toBeLessThanOrEqual(ORACLE_TOLERANCE);
    } finally {
      dec.dispose();
    }
  });

  it(
    'perturbed weights against the served ONNX: refused, nothing left loaded',
    { timeout: 180_000 },
    async () => {
      const onnx = referenceOnnx(DEMO.model_id, DEMO, w);
      const before = tf.memory().numTensors;
      // one weight of one layer off by 1e-2: small, but the logits move well past 1e-4
      const wq = w.layers[1]!.wq.slice();
      wq[5] = wq[5]! + 1e-2;
      const bad: DecoderWeights = { ...w, layers: w.layers.map((l, i) => (i === 1 ? { ...l, wq } : l)) };
      const err = await checkedDecoder(DEMO.model_id, DEMO, bad, onnx).then(
        () => null,
        (e) => e,
      );
      expect(err?.code).toBe('base_model_mismatch');
      const d = err.details as { max_abs_diff: number; tolerance: number; backend: string };
      expect(d.max_abs_diff).toBeGreaterThan(ORACLE_TOLERANCE);
      expect(d.tolerance).toBe(ORACLE_TOLERANCE);
      expect(d.backend).toBe(tf.getBackend());
      expect(err.message).toContain('training refused');
      expect(tf.memory().numTensors).toBe(before); // the refused decoder was disposed
      // a NaN weight is refused too (NaN never passes as "within tolerance")
      const nan = w.lm_head.slice();
      nan[0] = NaN;
      const err2 = await checkedDecoder(DEMO.model_id, DEMO, { ...w, lm_head: nan }, onnx).then(
        () => null,
        (e) => e,
      );
      expect(err2?.code).toBe('base_model_mismatch');
    },
  );
});
