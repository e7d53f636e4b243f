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

describe('TF.js trainer behaviour', () => {
  const SPEC = {
    lora_rank: 4,
    lora_alpha: 8,
    lora_dropout: 0,
    train_steps: 6,
    learning_rate: 1e-2,
    batch_size: 2,
    lora_target_modules: ['q_proj', 'v_proj'],
  };
  const SECRET = 'my private diary: the key is under the third flowerpot, do not tell anyone.';

  it(
    'progress, Δ shapes, only B moves under freeze_a, cancel, and a too-short text never echoed',
    { timeout: 180_000 },
    async () => {
      const { trainLora } = await import('../../engine/fedlearn/trainer.js');
      const { loraInit } = await import('../../engine/fedlearn/lora-init.js');
      const { decoderCard } = await import('../../engine/fedlearn/base.js');
      const { xoshiro128ss } = await import('../../engine/fedlearn/rng.js');
      const dec = new TfDecoder(SMALL, SMALL_WEIGHTS);
      const card = decoderCard('hn-tiny-decoder', SMALL);
      const init = loraInit(card, SPEC.lora_target_modules, 4, 3);
      try {
        const seen: { step: number; total: number; steps_per_s: number; seconds_left: number }[] = [];
        const rng = xoshiro128ss(1);
        const r = await trainLora(dec, SPEC, init, [SECRET.repeat(3)], {
          ctx: 16,
          uniform: rng.float,
          onProgress: (p) => seen.push(p),
        });
        expect(seen.map((p) => p.step)).toEqual([1, 2, 3, 4, 5, 6]);
        expect(seen.every((p) => p.total === 6 && p.steps_per_s > 0 && p.seconds_left >= 0)).toBe(true);
        expect(r.num_samples).toBe(12);
        expect([...r.tensors.keys()]).toEqual([...init.keys()]);
        const moved = (n: string) => r.tensors.get(n)!.data.some((v) => v !== 0);
        expect(moved('layers.0.q_proj.lora_A') && moved('layers.0.q_proj.lora_B')).toBe(true);
        const frozen = await trainLora(dec, { ...SPEC, freeze_a: true }, init, [SECRET.repeat(3)], {
          ctx: 16,
        });
        expect(moved('layers.1.v_proj.lora_B')).toBe(true);
        expect(frozen.tensors.get('layers.1.v_proj.lora_A')!.data.every((v) => v === 0)).toBe(true);
        expect(frozen.tensors.get('layers.1.v_proj.lora_B')!.data.some((v) => v !== 0)).toBe(true);
        let n = 0;
        const cancelled = await trainLora(dec, SPEC, init, [SECRET.repeat(3)], {
          ctx: 16,
          onProgress: () => n++,
          cancelled: () => n >= 2,
        }).then(
          () => null,
          (e) => e,
        );
        expect(cancelled?.code).toBe('pipeline_cancelled');
        const short = await trainLora(dec, SPEC, init, ['diary: key'], { ctx: 16 }).then(
          () => null,
          (e) => e,
        );
        expect(short?.code).toBe('bad_request');
        expect(JSON.stringify({ m: short.message, d: short.details })).not.toContain('diary');
        expect(tf.memory().numTensors).toBeLessThan(200); // variables and optimizer state released
      } finally {
        dec.dispose();
      }
    },
  );
});
