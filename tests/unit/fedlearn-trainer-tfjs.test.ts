/**
 * M28 with the real TF.js trainer: (1) a three-participant round on real nodes in which every local
 * delta comes from `tfjsTrainer` (next-token LoRA training of the tiny decoder on the node's own text),
 * and no 16-byte substring of any training text appears in the events or the link traffic (§10.13);
 * (2) early stop: a plateau (learning rate 0, the loss cannot improve) stops after the 50-step window,
 * a run shorter than the window never stops early.
 */
import 'fake-indexeddb/auto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createNode, memoryPortPair, type HearthNode } from '../../engine/index.js';
import type { BytePort } from '../../engine/net/port.js';
import { FEDLEARN_SERVICES } from '../../engine/fedlearn/index.js';
import { decoderCard, encodeBaseWeights } from '../../engine/fedlearn/base.js';
import { loraInit } from '../../engine/fedlearn/lora-init.js';
import { TfDecoder } from '../../engine/fedlearn/tf-decoder.js';
import { tfjsTrainer, trainLora } from '../../engine/fedlearn/trainer.js';
import { sha256Hex } from '../../engine/core/hash.js';
import { seedOf } from './helpers.js';
import { SMALL, SMALL_WEIGHTS, useWasm } from './fedlearn-tf-helpers.js';

const ID = 'hn-tiny-decoder';
const CARD = decoderCard(ID, SMALL);
const BASE = encodeBaseWeights(ID, SMALL, SMALL_WEIGHTS);
const traffic: Uint8Array[] = [];
const tap = (p: BytePort): BytePort =>
  new Proxy(p, {
    get(t, k) {
      if (k === 'send')
        return (m: Uint8Array) => {
          traffic.push(m.slice());
          return t.send(m);
        };
      const v = Reflect.get(t, k);
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });
async function link(A: HearthNode, B: HearthNode) {
  const [pa, pb] = memoryPortPair();
  await Promise.all([
    A.connect(tap(pa), { transport: 'memory', expectedPeer: B.id }),
    B.connect(tap(pb), { transport: 'memory', expectedPeer: A.id }),
  ]);
}
const svc = (n: HearthNode) => FEDLEARN_SERVICES.get(n.id)!;

beforeAll(async () => {
  await useWasm();
});

describe('M28 with the TF.js trainer', () => {
  it('a round of real TF.js deltas completes; no 16-byte substring of any text leaves a node', async () => {
    const dec = new TfDecoder(SMALL, SMALL_WEIGHTS);
    const nodes: HearthNode[] = [];
    try {
      const A = await createNode({ seed: seedOf(141), config: { fedlearn: { enabled: true } } });
      nodes.push(A);
      for (const s of [142, 143, 144])
        nodes.push(
          await createNode({
            seed: seedOf(s),
            config: { fedlearn: { enabled: true }, community: { community_id: A.id } },
          }),
        );
      const P = nodes.slice(1);
      for (const p of P) await link(A, p);
      for (const n of nodes) svc(n).base = { card: CARD, sha: BASE.sha };
      const texts = [
        'Zq7#canary-16B!x roses bloom in june; prune them hard in march, feed them in may.',
        'tomatoes need sun and deep water, and a stake before the first fruit sets in july.',
        'basil hates cold nights and wet feet. mint spreads fast; keep it in a pot by the door.',
      ];
      for (const [i, p] of P.entries()) {
        svc(p).trainer = tfjsTrainer(dec, { ctx: 16 });
        await svc(p).addTrainingText('gardening', texts[i]!);
      }
      const consent_text = 'I agree to train on my gardening notes.';
      const { round_id } = await A.call('experimental.fedlearn.round.announce', {
        base_model_id: ID,
        lora_target_modules: ['q_proj', 'v_proj'],
        lora_rank: 4,
        lora_alpha: 8,
        lora_dropout: 0,
        train_steps: 3,
        learning_rate: 0.01,
        batch_size: 2,
        seed: 5,
        dp_noise_scale: 0,
        clip_norm: 10,
        min_participants: 3,
        max_participants: 32,
        deadline: new Date(Date.now() + 30 * 60_000).toISOString(),
        topic: 'gardening',
        consent_text,
      });
      for (const p of P) await p.events.sync();
      const textSha = sha256Hex(consent_text);
      for (const p of P) {
        await svc(p).recordConsent(round_id, textSha);
        await p.call('experimental.fedlearn.round.join', {
          round_id,
          consent: true,
          consent_text_sha256: textSha,
        });
      }
      const shas: string[] = [];
      for (const p of P)
        shas.push((await p.call('experimental.fedlearn.round.submit', { round_id })).delta_sha);
      expect(new Set(shas).size).toBe(3);
      let st: { state: string; result?: { adapter_sha: string } } = { state: '' };
      for (let i = 0; i < 200 && st.state !== 'COMPLETED'; i++) {
        st = await P[0]!.call('experimental.fedlearn.round.status', { round_id });
        if (st.state !== 'COMPLETED') await new Promise((r) => setTimeout(r, 25));
      }
      expect(st.state).toBe('COMPLETED');
      expect(st.result!.adapter_sha).toMatch(/^sha256:[0-9a-f]{64}$/);
      const hay = [
        ...(await Promise.all(nodes.map(async (n) => JSON.stringify(await n.events.list())))),
        ...traffic.map((m) => Buffer.from(m).toString('latin1')),
      ].join('\n');
      expect(hay.includes(round_id)).toBe(true); // positive control: the haystack holds the round
      expect(traffic.length).toBeGreaterThan(0);
      for (const text of texts)
        for (let i = 0; i + 16 <= text.length; i++) expect(hay.includes(text.slice(i, i + 16))).toBe(false);
    } finally {
      for (const n of nodes) await n.close();
      dec.dispose();
    }
  }, 240_000);

  it('early stop: a plateau stops after the 50-step window; a run within the window never does', async () => {
    const dec = new TfDecoder(SMALL, SMALL_WEIGHTS);
    try {
      const init = loraInit(CARD, ['q_proj'], 2, 9);
      const spec = {
        lora_rank: 2,
        lora_alpha: 4,
        lora_dropout: 0,
        learning_rate: 0, // nothing can improve: the loss (one repeated window) is flat
        batch_size: 1,
        lora_target_modules: ['q_proj'],
      };
      const flat = ['ab'.repeat(40)];
      const uniform = () => 0; // always the first window: identical loss every step
      const short = await trainLora(dec, { ...spec, train_steps: 50 }, init, flat, { ctx: 8, uniform });
      expect(short.steps).toBe(50);
      expect(short.stopped_early).toBe(false);
      const long = await trainLora(dec, { ...spec, train_steps: 300 }, init, flat, { ctx: 8, uniform });
      expect(long.stopped_early).toBe(true);
      expect(long.steps).toBe(51);
      // a learning run on the same budget keeps improving past the window at first
      const learn = await trainLora(
        dec,
        { ...spec, learning_rate: 0.05, train_steps: 60 },
        loraInit(CARD, ['q_proj'], 2, 9),
        flat,
        { ctx: 8, uniform },
      );
      expect(learn.train_loss).toBeLessThan(long.train_loss);
    } finally {
      dec.dispose();
    }
  }, 240_000);
  it('tick: a cancel that arrives as a macrotask (a worker message) stops the run early', async () => {
    const dec = new TfDecoder(SMALL, SMALL_WEIGHTS);
    try {
      const spec = {
        lora_rank: 2,
        lora_alpha: 4,
        lora_dropout: 0,
        learning_rate: 0.01,
        batch_size: 1,
        train_steps: 200,
        lora_target_modules: ['q_proj'],
      };
      let stop = false;
      let steps = 0;
      setTimeout(() => (stop = true), 0); // what a comlink `cancel` message does in the worker
      const e = await trainLora(dec, spec, loraInit(CARD, ['q_proj'], 2, 9), ['ab'.repeat(40)], {
        ctx: 8,
        cancelled: () => stop,
        onProgress: (p) => (steps = p.step),
        tick: () => new Promise<void>((r) => setTimeout(r, 0)),
      }).then(
        () => null,
        (err) => err,
      );
      expect(e?.code).toBe('pipeline_cancelled');
      expect(steps).toBeLessThan(200);
    } finally {
      dec.dispose();
    }
  }, 120_000);
});
