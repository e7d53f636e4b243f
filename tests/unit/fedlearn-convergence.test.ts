/**
 * M28 acceptance §10.11 in Node on the wasm backend: three participants with disjoint topic corpora
 * train LoRA (rank 4 on q/v/o/up/down) with the real TF.js trainer, deltas are clipped, aggregated by
 * FedAvg, and the merged adapter's held-out loss drops; the adapter applied in the ONNX path gives the
 * TF.js adapter logits (1e-4) and visibly changes the output.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aggregate } from '../../engine/fedlearn/aggregator.js';
import { decoderCard, mergeAdapter } from '../../engine/fedlearn/base.js';
import type { Tensors } from '../../engine/fedlearn/delta.js';
import { loraInit } from '../../engine/fedlearn/lora-init.js';
import { privatize, seededNormal } from '../../engine/fedlearn/privacy.js';
import { TfDecoder } from '../../engine/fedlearn/tf-decoder.js';
import { evalLoss, trainLora, type TrainSpec } from '../../engine/fedlearn/trainer.js';
import { xoshiro128ss } from '../../engine/fedlearn/rng.js';
import { HELD_OUT, corpus } from './fedlearn-corpora.js';
import { SMALL, SMALL_WEIGHTS, maxAbsDiff, ortLogits, useWasm } from './fedlearn-tf-helpers.js';

const CARD = decoderCard('hn-tiny-decoder', SMALL);
const TARGETS = ['q_proj', 'v_proj', 'o_proj', 'up_proj', 'down_proj'];
const SPEC: TrainSpec = {
  lora_rank: 4,
  lora_alpha: 8,
  lora_dropout: 0,
  train_steps: 60,
  learning_rate: 1e-2,
  batch_size: 8,
  lora_target_modules: TARGETS,
};
const SEED = 1234;
const PEERS = ['node-a', 'node-b', 'node-c'];
const TOPICS = ['gardening', 'radio', 'kitchen'];

let dec: TfDecoder;
let base: number;
const raw: Tensors[] = []; // unclipped Δ per participant
const progress: number[][] = [];

beforeAll(async () => {
  await useWasm();
  dec = new TfDecoder(SMALL, SMALL_WEIGHTS);
  base = await evalLoss(dec, null, HELD_OUT);
  const init = loraInit(CARD, TARGETS, SPEC.lora_rank, SEED);
  for (const [i, topic] of TOPICS.entries()) {
    const rng = xoshiro128ss(100 + i);
    const losses: number[] = [];
    const r = await trainLora(dec, SPEC, init, corpus(topic), {
      uniform: () => rng.float(),
      onProgress: (p) => losses.push(p.loss),
    });
    raw.push(r.tensors);
    progress.push(losses);
  }
}, 600_000);
afterAll(() => dec?.dispose());

function roundAdapter(clip: number, sigma = 0, freezeA = false): Tensors {
  const init = loraInit(CARD, TARGETS, SPEC.lora_rank, SEED);
  const subs = raw.map((t, i) => {
    let d = t;
    if (freezeA) d = new Map([...t].filter(([n]) => n.endsWith('.lora_B')));
    return {
      participant: PEERS[i]!,
      num_samples: SPEC.train_steps * SPEC.batch_size,
      tensors: privatize(d, clip, sigma, sigma > 0 ? seededNormal(77 + i) : undefined),
    };
  });
  return aggregate(subs, { method: 'fedavg', min_participants: 3, init, freeze_a: freezeA });
}
const adapterLoss = (t: Tensors) =>
  evalLoss(dec, { tensors: t, rank: SPEC.lora_rank, alpha: SPEC.lora_alpha }, HELD_OUT);

describe('M28 convergence (Node, wasm backend, real TF.js training)', () => {
  it('each participant’s training loss goes down', () => {
    for (const l of progress) {
      expect(l.length).toBeGreaterThan(10);
      const head = l.slice(0, 5).reduce((a, b) => a + b) / 5;
      const tail = l.slice(-5).reduce((a, b) => a + b) / 5;
      expect(tail).toBeLessThan(0.8 * head);
    }
  });

  it(
    'clip 10: merged adapter held-out loss ≤ 0.85 × base; clip 1: ≤ 0.98; never above base + ln 2',
    { timeout: 120_000 },
    async () => {
      const l10 = await adapterLoss(roundAdapter(10));
      const l1 = await adapterLoss(roundAdapter(1));
      console.log(
        `m28 convergence: base ${base.toFixed(3)} clip10 ${l10.toFixed(3)} (${(l10 / base).toFixed(3)}) clip1 ${l1.toFixed(3)} (${(l1 / base).toFixed(3)})`,
      );
      expect(l10).toBeLessThanOrEqual(0.85 * base);
      expect(l1).toBeLessThanOrEqual(0.98 * base);
      expect(Math.max(l10, l1)).toBeLessThan(base + Math.LN2);
    },
  );

  it(
    'the adapter applied in the ONNX path gives the TF.js adapter logits (1e-4) and changes the output',
    { timeout: 180_000 },
    async () => {
      const adapter = roundAdapter(10);
      const ids = Array.from(new TextEncoder().encode('Knead the dough and water the roses.'));
      const set = TfDecoder.loraFromTensors(adapter);
      const t = tf.tidy(() =>
        dec.forward(tf.tensor2d([ids], [1, ids.length], 'int32'), {
          set,
          scale: SPEC.lora_alpha / SPEC.lora_rank,
          dropout: 0,
        }),
      );
      const tfl = await t.data();
      t.dispose();
      for (const p of set.values()) tf.dispose([p.A, p.B]);
      const merged = mergeAdapter(SMALL, SMALL_WEIGHTS, adapter, SPEC.lora_rank, SPEC.lora_alpha);
      const ortAdapted = await ortLogits(SMALL, merged, ids);
      const ortBase = await ortLogits(SMALL, SMALL_WEIGHTS, ids);
      expect(maxAbsDiff(tfl, ortAdapted)).toBeLessThan(1e-4);
      expect(maxAbsDiff(ortBase, ortAdapted)).toBeGreaterThan(0.5); // visibly different logits
      // greedy next bytes differ somewhere along the prompt
      const V = SMALL.vocab_size;
      const argmax = (l: ArrayLike<number>, s: number) => {
        let b = 0;
        for (let v = 1; v < V; v++) if (l[s * V + v]! > l[s * V + b]!) b = v;
        return b;
      };
      const changed = ids.filter((_, s) => argmax(ortBase, s) !== argmax(ortAdapted, s)).length;
      expect(changed).toBeGreaterThan(0);
    },
  );
});
