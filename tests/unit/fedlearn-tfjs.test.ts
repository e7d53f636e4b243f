/** M28 training model: the TF.js decoder reproduces onnxruntime-web's logits (the oracle), with and without an adapter. */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { TfDecoder } from '../../engine/fedlearn/tf-decoder.js';
import { SMALL, SMALL_WEIGHTS, maxAbsDiff, ortLogits, useWasm } from './fedlearn-tf-helpers.js';

const IDS = Array.from(new TextEncoder().encode('The hearth is warm tonight; roses bloom.'));

beforeAll(async () => {
  await useWasm();
});

describe('TF.js decoder vs ONNX (oracle, 1e-4)', () => {
  it('base model: same logits as onnxruntime-web', { timeout: 180_000 }, async () => {
    const dec = new TfDecoder(SMALL, SMALL_WEIGHTS);
    try {
      const got = tf.tidy(() => dec.forward(tf.tensor2d([IDS], [1, IDS.length], 'int32')));
      const tfl = await got.data();
      got.dispose();
      const ort = await ortLogits(SMALL, SMALL_WEIGHTS, IDS);
      expect(tfl.length).toBe(IDS.length * SMALL.vocab_size);
      let scale = 0;
      for (const v of ort) scale = Math.max(scale, Math.abs(v));
      expect(scale).toBeGreaterThan(1);
      expect(maxAbsDiff(tfl, ort)).toBeLessThan(1e-4);
    } finally {
      dec.dispose();
    }
  });
});
