/**
 * M28 figures (Node): TF.js LoRA training throughput on the wasm backend on the demo model (the tiny
 * decoder's default dimensions), a three-participant round end to end on real nodes linked in memory
 * (announce → consent/join → real TF.js training, 10 steps each on the 2-layer prototype → submit →
 * FedAvg → COMPLETED), and FedAvg
 * throughput over 32 submissions. `m28.train_tokens_per_s_webgpu` needs a browser and is not
 * produced here.
 */
import 'fake-indexeddb/auto';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { createNode, memoryPortPair, type HearthNode } from '../../engine/index.js';
import { sha256Hex } from '../../engine/core/hash.js';
import { aggregate } from '../../engine/fedlearn/aggregator.js';
import { decoderCard } from '../../engine/fedlearn/base.js';
import { expectedShapes, type Tensors } from '../../engine/fedlearn/delta.js';
import { FEDLEARN_SERVICES } from '../../engine/fedlearn/index.js';
import { loraInit } from '../../engine/fedlearn/lora-init.js';
import { xoshiro128ss } from '../../engine/fedlearn/rng.js';
import { TfDecoder } from '../../engine/fedlearn/tf-decoder.js';
import { tfjsTrainer, trainLora } from '../../engine/fedlearn/trainer.js';
import { tinyConfig } from '../model/tiny-model.js';
import { makeWeights } from '../model/tiny-weights.js';
import type { BenchFilter } from './run.js';

export const names = [
  'm28.train_tokens_per_s_wasm',
  'm28.round_seconds_3_participants',
  'm28.aggregate_mb_per_s',
  'm28.dp_heldout_loss_ratio_fedavg',
  'm28.dp_heldout_loss_ratio_ffa',
];

const TARGETS = ['q_proj', 'v_proj', 'o_proj', 'up_proj', 'down_proj'];
const TEXT =
  'Roses bloom in june. Prune them hard in march. Tomatoes need sun and deep water. ' +
  'The mesh radio hops each packet from node to node. Knead the dough, let it rise, bake it. ';

export async function figures(want: BenchFilter): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const ok = await tf.setBackend('wasm').catch(() => false);
  if (!ok) throw new Error('tfjs wasm backend unavailable');
  const cfg = tinyConfig();
  const dec = new TfDecoder(cfg, makeWeights(cfg));
  const card = decoderCard(cfg.model_id, cfg);
  try {
    if (want('m28.train_tokens_per_s_wasm')) {
      const spec = {
        lora_rank: 4,
        lora_alpha: 8,
        lora_dropout: 0,
        learning_rate: 1e-2,
        batch_size: 8,
        lora_target_modules: TARGETS,
      };
      const init = loraInit(card, TARGETS, 4, 1);
      const rng = xoshiro128ss(5);
      await trainLora(dec, { ...spec, train_steps: 2 }, init, [TEXT.repeat(4)], { uniform: rng.float }); // warm-up
      const steps = 20;
      const t0 = performance.now();
      await trainLora(dec, { ...spec, train_steps: steps }, init, [TEXT.repeat(4)], { uniform: rng.float });
      const s = (performance.now() - t0) / 1000;
      out['m28.train_tokens_per_s_wasm'] = Math.round((steps * spec.batch_size * 32) / s);
    }
    if (want('m28.round_seconds_3_participants'))
      out['m28.round_seconds_3_participants'] = await round(dec, card);
    if (want('m28.dp_heldout_loss_ratio_fedavg') || want('m28.dp_heldout_loss_ratio_ffa')) {
      const r = await dpComparison();
      out['m28.dp_heldout_loss_ratio_fedavg'] = r.fedavg;
      out['m28.dp_heldout_loss_ratio_ffa'] = r.ffa;
    }
    if (want('m28.aggregate_mb_per_s')) {
      const shapes = expectedShapes(card, TARGETS, 8);
      const subs = Array.from({ length: 32 }, (_, i) => {
        const r = xoshiro128ss(i + 1);
        const t: Tensors = new Map();
        for (const [n, sh] of shapes)
          t.set(n, {
            shape: sh,
            data: Float32Array.from({ length: sh[0]! * sh[1]! }, () => r.float() - 0.5),
          });
        return { participant: `p${String(i).padStart(2, '0')}`, num_samples: 1 + i, tensors: t };
      });
      const bytes = subs.reduce(
        (a, s) => a + [...s.tensors.values()].reduce((b, t) => b + 4 * t.data.length, 0),
        0,
      );
      const init = loraInit(card, TARGETS, 8, 1);
      const t0 = performance.now();
      aggregate(subs, { method: 'fedavg', min_participants: 3, init });
      const s = (performance.now() - t0) / 1000;
      out['m28.aggregate_mb_per_s'] = Math.round((bytes / 2 ** 20 / s) * 10) / 10;
    }
  } finally {
    dec.dispose();
  }
  return out;
}

async function round(dec: TfDecoder, card: ReturnType<typeof decoderCard>): Promise<number> {
  const seed = (n: number) => new Uint8Array(32).fill(n);
  const A = await createNode({ seed: seed(201), config: { fedlearn: { enabled: true } } });
  const P: HearthNode[] = [];
  for (const s of [202, 203, 204])
    P.push(
      await createNode({
        seed: seed(s),
        config: { fedlearn: { enabled: true }, community: { community_id: A.id } },
      }),
    );
  try {
    for (const p of P) {
      const [pa, pb] = memoryPortPair();
      await Promise.all([
        A.connect(pa, { transport: 'memory', expectedPeer: p.id }),
        p.connect(pb, { transport: 'memory', expectedPeer: A.id }),
      ]);
    }
    const svc = (n: HearthNode) => FEDLEARN_SERVICES.get(n.id)!;
    for (const n of [A, ...P]) svc(n).base = { card, sha: 'b'.repeat(64) };
    for (const [i, p] of P.entries()) {
      svc(p).trainer = tfjsTrainer(dec);
      await svc(p).addTrainingText('bench', TEXT.repeat(2 + i));
    }
    const consent = 'I agree to train on my bench notes.';
    const t0 = performance.now();
    const { round_id } = await A.call('experimental.fedlearn.round.announce', {
      base_model_id: card.base_model_id,
      lora_target_modules: TARGETS,
      lora_rank: 4,
      lora_alpha: 8,
      lora_dropout: 0,
      train_steps: 10,
      learning_rate: 1e-2,
      batch_size: 8,
      seed: 9,
      dp_noise_scale: 0,
      clip_norm: 10,
      min_participants: 3,
      max_participants: 32,
      deadline: new Date(Date.now() + 30 * 60_000).toISOString(),
      topic: 'bench',
      consent_text: consent,
    });
    for (const p of P) await p.events.sync();
    for (const p of P) {
      await svc(p).recordConsent(round_id, sha256Hex(consent));
      await p.call('experimental.fedlearn.round.join', {
        round_id,
        consent: true,
        consent_text_sha256: sha256Hex(consent),
      });
    }
    for (const p of P) await p.call('experimental.fedlearn.round.submit', { round_id });
    for (let i = 0; i < 3000; i++) {
      const st = await A.call('experimental.fedlearn.round.status', { round_id });
      if (st.state === 'COMPLETED') break;
      if (st.state === 'ABORTED') throw new Error('bench round aborted');
      await new Promise((r) => setTimeout(r, 20));
    }
    return Math.round((performance.now() - t0) / 10) / 100;
  } finally {
    for (const n of [A, ...P]) await n.close();
  }
}

const PROTO = tinyConfig({
  num_hidden_layers: 2,
  hidden_size: 48,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 12,
  intermediate_size: 192,
  max_position_embeddings: 64,
  seed: 7,
});
const CORPORA = [
  'Roses bloom in june. Prune the roses hard in march. Tomatoes need full sun and deep water. Mulch the beds. ',
  'The mesh radio hops each packet from node to node. Set the antenna high. The repeater relays at night. ',
  'Knead the bread dough, let it rise, then bake it. Simmer the soup slowly and fry the onions in butter. ',
];
const HELD = [
  'Prune the tomatoes and water the roses.',
  'The node relays each packet.',
  'Knead the dough and bake.',
];

/**
 * Issue #16 FFA-LoRA claim, measured: with DP noise on (σ = 0.02 at clip 1), held-out loss ratio
 * (merged adapter ÷ base) of FedAvg over A and B vs FFA-LoRA (A frozen, only B trained and averaged),
 * three participants with disjoint corpora, same steps, seeds and noise draws.
 */
async function dpComparison(): Promise<{ fedavg: number; ffa: number }> {
  const { privatize, seededNormal } = await import('../../engine/fedlearn/privacy.js');
  const { evalLoss } = await import('../../engine/fedlearn/trainer.js');
  const dec = new TfDecoder(PROTO, makeWeights(PROTO));
  const card = decoderCard('proto', PROTO);
  const base = await evalLoss(
    dec,
    null,
    HELD.map((h) => h.repeat(6)),
    { maxWindows: 32 },
  );
  const ratio = async (freeze: boolean) => {
    const init = loraInit(card, TARGETS, 4, 11);
    const spec = {
      lora_rank: 4,
      lora_alpha: 8,
      lora_dropout: 0,
      learning_rate: 1e-2,
      batch_size: 8,
      train_steps: 60,
      lora_target_modules: TARGETS,
      freeze_a: freeze,
    };
    const subs = [];
    for (const [i, c] of CORPORA.entries()) {
      const rng = xoshiro128ss(40 + i);
      const r = await trainLora(dec, spec, init, [c.repeat(6)], { uniform: rng.float });
      let t = r.tensors;
      if (freeze) t = new Map([...t].filter(([n]) => n.endsWith('.lora_B')));
      subs.push({
        participant: `p${i}`,
        num_samples: r.num_samples,
        tensors: privatize(t, 1, 0.02, seededNormal(90 + i)),
      });
    }
    const adapter = aggregate(subs, { method: 'fedavg', min_participants: 3, init, freeze_a: freeze });
    const l = await evalLoss(
      dec,
      { tensors: adapter, rank: 4, alpha: 8 },
      HELD.map((h) => h.repeat(6)),
      {
        maxWindows: 32,
      },
    );
    return Math.round((l / base) * 1000) / 1000;
  };
  try {
    return { fedavg: await ratio(false), ffa: await ratio(true) };
  } finally {
    dec.dispose();
  }
}
