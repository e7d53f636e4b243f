/** M28 as a module of real nodes linked in memory: gating, consent, a three-participant round end to end, no leak. */
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { createNode, memoryPortPair, type HearthNode } from '../../engine/index.js';
import type { BytePort } from '../../engine/net/port.js';
import { CAPABILITIES, FEDLEARN_SERVICES } from '../../engine/fedlearn/index.js';
import type { Trainer } from '../../engine/fedlearn/participant.js';
import type { Tensors } from '../../engine/fedlearn/delta.js';
import { sha256Hex } from '../../engine/core/hash.js';
import { fromB64url } from '../../engine/core/encoding.js';
import { decodeSafetensors } from '../../engine/fedlearn/delta.js';
import { seedOf } from './helpers.js';
import { BASE_SHA, TINY_CARD } from './fedlearn-helpers.js';

const CANARY = 'Zq7#canary-16B!x'; // 16 bytes
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

/**
 * A real (small) local computation: one gradient step of the LoRA-B factor on a linear next-byte
 * objective ‖y − (α/r)·B·A·x‖² at B = 0, over the node's own texts. x, y: the bytes at positions t, t+1
 * spread over d_in / d_out by their value. ΔA = 0 here (the step only moves B); num_samples = windows.
 */
const byteTrainer: Trainer = async (m, init, data) => {
  const texts = await data.texts(m.topic);
  const bytes = new TextEncoder().encode(texts.join('\n'));
  const out: Tensors = new Map();
  let windows = 0;
  for (const [name, t] of init) {
    if (name.endsWith('.lora_A')) {
      out.set(name, { shape: t.shape, data: new Float32Array(t.data.length) });
      continue;
    }
    const A = init.get(name.replace('lora_B', 'lora_A'))!;
    const [r, dIn] = A.shape as [number, number];
    const dOut = t.shape[0]!;
    const g = new Float64Array(dOut * r);
    windows = 0;
    for (let i = 0; i + 1 < bytes.length && windows < m.train_steps * m.batch_size; i++, windows++) {
      const xi = bytes[i]! % dIn;
      const yo = bytes[i + 1]! % dOut;
      for (let k = 0; k < r; k++) g[yo * r + k]! += A.data[k * dIn + xi]!; // −∂L/∂B ∝ y·(A x)ᵀ
    }
    const lr = m.learning_rate;
    out.set(name, { shape: t.shape, data: Float32Array.from(g, (v) => (lr * v) / Math.max(1, windows)) });
  }
  return { tensors: out, num_samples: Math.max(1, windows), train_loss: Math.log(256) };
};

const draft = (over: Record<string, unknown> = {}) => ({
  base_model_id: TINY_CARD.base_model_id,
  lora_target_modules: ['q_proj', 'v_proj'],
  lora_rank: 4,
  lora_alpha: 8,
  lora_dropout: 0,
  train_steps: 10,
  learning_rate: 0.5,
  batch_size: 4,
  seed: 11,
  dp_noise_scale: 0,
  clip_norm: 10,
  min_participants: 3,
  max_participants: 32,
  deadline: new Date(Date.now() + 30 * 60_000).toISOString(),
  topic: 'gardening',
  consent_text: 'I agree to train on my gardening notes.',
  ...over,
});

const svc = (n: HearthNode) => FEDLEARN_SERVICES.get(n.id)!;
const code = async (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e) => e.code as string,
  );

describe('M28 module on real nodes', () => {
  it('flag off: all eight capabilities answer experimental_disabled', async () => {
    const A = await createNode({ seed: seedOf(120) });
    for (const c of CAPABILITIES)
      expect(await code(A.call(c, { round_id: 'x' }))).toBe('experimental_disabled');
    await A.close();
  });

  it('three participants: consent, join, real local deltas, submit, aggregate, fetch, apply — and the canary never leaves', async () => {
    const A = await createNode({ seed: seedOf(121), config: { fedlearn: { enabled: true } } });
    const P: HearthNode[] = [];
    for (const s of [122, 123, 124])
      P.push(
        await createNode({
          seed: seedOf(s),
          config: { fedlearn: { enabled: true }, community: { community_id: A.id } },
        }),
      );
    for (const p of P) await link(A, p);
    for (const n of [A, ...P]) svc(n).base = { card: TINY_CARD, sha: BASE_SHA };
    const topics = [
      'roses bloom in june. prune them hard in march.',
      'tomatoes need sun and deep water.',
      `basil hates cold nights. ${CANARY} mint spreads fast.`,
    ];
    for (const [i, p] of P.entries()) {
      svc(p).trainer = byteTrainer;
      await svc(p).addTrainingText('gardening', topics[i]!);
    }
    // a member that is not anchor cannot announce
    expect(await code(P[0]!.call('experimental.fedlearn.round.announce', draft()))).toBe('unauthorized');
    expect(
      await code(A.call('experimental.fedlearn.round.announce', draft({ base_model_id: 'other' }))),
    ).toBe('base_model_mismatch');
    expect(await code(A.call('experimental.fedlearn.round.announce', draft({ secure: true })))).toBe(
      'not_implemented',
    );
    const { round_id, manifest_sha } = await A.call('experimental.fedlearn.round.announce', draft());
    for (const p of P) await p.events.sync();
    const listed = await P[0]!.call('experimental.fedlearn.round.list', {});
    expect(listed.rounds.map((r: { manifest_sha: string }) => r.manifest_sha)).toEqual([manifest_sha]);
    const textSha = sha256Hex(draft().consent_text);
    // no consent record (no UI gesture) → consent_required, even with consent:true
    expect(
      await code(
        P[0]!.call('experimental.fedlearn.round.join', {
          round_id,
          consent: true,
          consent_text_sha256: textSha,
        }),
      ),
    ).toBe('consent_required');
    expect(
      await code(P[0]!.call('experimental.fedlearn.round.join', { round_id: 'nope', consent: true })),
    ).toBe('not_found');
    // a remote join without a signed consent → consent_required
    expect(
      await code(
        P[0]!.call(
          'experimental.fedlearn.round.join',
          { round_id, manifest_sha, consent: {} },
          { peer: A.id },
        ),
      ),
    ).toBe('consent_required');
    for (const p of P) {
      await svc(p).recordConsent(round_id, textSha); // what the consent dialog's button does
      expect(
        await code(
          p.call('experimental.fedlearn.round.join', {
            round_id,
            consent: true,
            consent_text_sha256: 'f'.repeat(64),
          }),
        ),
      ).toBe('consent_required');
      const receipt = await p.call('experimental.fedlearn.round.join', {
        round_id,
        consent: true,
        consent_text_sha256: textSha,
      });
      expect(receipt.participant).toBe(p.id);
      expect(receipt.manifest_sha).toBe(manifest_sha);
    }
    // submitting before joining is unauthorized at the coordinator
    expect(await code(A.call('experimental.fedlearn.round.submit', { round_id }))).toBe('unauthorized');
    const shas: string[] = [];
    for (const p of P)
      shas.push((await p.call('experimental.fedlearn.round.submit', { round_id })).delta_sha);
    expect(new Set(shas).size).toBe(3); // three different local computations
    // all joined submitted → the coordinator aggregates
    let st: any;
    for (let i = 0; i < 100; i++) {
      st = await P[1]!.call('experimental.fedlearn.round.status', { round_id });
      if (st.state === 'COMPLETED') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(st.state).toBe('COMPLETED');
    expect(st.submitted).toEqual(P.map((p) => p.id).sort());
    const sha = st.result.adapter_sha as string;
    expect(sha).toMatch(/^sha256:[0-9a-f]{64}$/);
    // finalize is idempotent on the coordinator; non-coordinators get unauthorized
    expect((await A.call('experimental.fedlearn.round.finalize', { round_id })).adapter_sha).toBe(sha);
    expect(await code(P[0]!.call('experimental.fedlearn.round.finalize', { round_id }))).toBe('unauthorized');
    // fetch by SHA from the coordinator; unknown SHA → adapter_not_found
    expect(
      await code(
        P[2]!.call(
          'experimental.fedlearn.adapter.fetch',
          { sha: 'sha256:' + '0'.repeat(64) },
          { peer: A.id },
        ),
      ),
    ).toBe('adapter_not_found');
    const got = await P[2]!.call('experimental.fedlearn.adapter.fetch', { sha }, { peer: A.id });
    expect('sha256:' + sha256Hex(fromB64url(got.bytes))).toBe(sha);
    const adapter = decodeSafetensors(fromB64url(got.bytes));
    expect(adapter.metadata.manifest_sha).toBe(manifest_sha);
    // B of the adapter = sample-weighted mean of the three B deltas (A unchanged: the trainer left ΔA = 0)
    const Bq = adapter.tensors.get('layers.0.q_proj.lora_B')!.data;
    expect(Bq.some((v) => v !== 0)).toBe(true);
    // apply: never automatic; node scope needs confirm; wrong base → base_model_mismatch
    await svc(P[2]!).importAdapter(got);
    expect(svc(P[2]!).applied.size).toBe(0);
    expect(await code(P[2]!.call('experimental.fedlearn.adapter.apply', { sha, scope: 'node' }))).toBe(
      'consent_required',
    );
    expect(
      await code(
        P[2]!.call('experimental.fedlearn.adapter.apply', {
          sha: 'sha256:' + '1'.repeat(64),
          scope: 'node',
          confirm: true,
        }),
      ),
    ).toBe('adapter_not_found');
    const ap = await P[2]!.call('experimental.fedlearn.adapter.apply', {
      sha,
      scope: 'session',
      session_id: 's1',
    });
    expect(ap.scope).toBe('session');
    const dW = await svc(P[2]!).weightDeltas('session:s1');
    expect([...dW!.values()].some((w) => w.some((v) => v !== 0))).toBe(true);
    svc(P[1]!).base = { card: TINY_CARD, sha: 'c'.repeat(64) };
    await svc(P[1]!).importAdapter(got);
    expect(
      await code(P[1]!.call('experimental.fedlearn.adapter.apply', { sha, scope: 'node', confirm: true })),
    ).toBe('base_model_mismatch');
    // events: the ten types appear where expected
    const types = new Set(
      (await A.events.list()).map((e) => e.event_type).filter((t) => t.startsWith('fedlearn.')),
    );
    for (const t of [
      'fedlearn.round.announced',
      'fedlearn.round.aggregated',
      'fedlearn.adapter.published',
      'fedlearn.round.completed',
    ])
      expect(types.has(t)).toBe(true);
    const pTypes = new Set((await P[2]!.events.list()).map((e) => e.event_type));
    for (const t of [
      'fedlearn.round.consent.granted',
      'fedlearn.round.joined',
      'fedlearn.round.submitted',
      'fedlearn.adapter.applied',
    ])
      expect(pTypes.has(t)).toBe(true);
    // §10.13 no 16-byte substring of any training text appears in events or link traffic; positive control: round_id does
    const hay = [
      ...(await Promise.all([A, ...P].map(async (n) => JSON.stringify(await n.events.list())))),
      ...traffic.map((m) => Buffer.from(m).toString('latin1')),
    ].join('\n');
    expect(hay.includes(round_id)).toBe(true);
    for (const text of topics)
      for (let i = 0; i + 16 <= text.length; i++) expect(hay.includes(text.slice(i, i + 16))).toBe(false);
    expect(hay.includes(CANARY)).toBe(false);
    for (const n of [A, ...P]) await n.close();
  }, 60_000);
});
