/** M28 coordinator and participant rules without a network (§5, §6 checks, §7 resources, §10.7–10.9, §10.15). */
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { keyPairFromSeed, signObject, type KeyPair } from '../../engine/identity/identity.js';
import { FedLearnService, type ServiceSettings } from '../../engine/fedlearn/participant.js';
import { submissionBody } from '../../engine/fedlearn/coordinator.js';
import { deltaMetadata, encodeSafetensors } from '../../engine/fedlearn/delta.js';
import { sha256Hex } from '../../engine/core/hash.js';
import { b64url } from '../../engine/core/encoding.js';
import { BASE_SHA, TINY_CARD, randomDelta } from './fedlearn-helpers.js';

const T0 = Date.parse('2026-03-01T12:00:00Z');
const SETTINGS: ServiceSettings = {
  max_round_minutes: 120,
  takeover_grace_seconds: 600,
  announce_min_level: 'anchor',
  submission_max_bytes: 64 * 1024 * 1024,
  training_vram_budget_mb: 8192,
  training_disk_budget_mb: 4096,
  dp_noise_scale: 0,
};

function world() {
  const clock = { t: T0 };
  const timers: { at: number; fn: () => void }[] = [];
  const events: { type: string; data: Record<string, unknown> }[] = [];
  const kp = keyPairFromSeed(new Uint8Array(32).fill(200));
  const mem = new Map<string, Map<string, any>>();
  const store = (s: string) => mem.get(s) ?? mem.set(s, new Map()).get(s)!;
  const svc = new FedLearnService({
    self: kp.nodeId,
    sign: (o) => signObject(kp, o),
    append: async (type, data) => void events.push({ type, data }),
    now: () => clock.t,
    setTimeout: (fn, ms) => {
      timers.push({ at: clock.t + ms, fn });
      return () => undefined;
    },
    call: async () => {
      throw Object.assign(new Error('unreachable'), { code: 'partition' });
    },
    levelOf: (n) => (n === kp.nodeId ? 'anchor' : 'member'),
    settings: () => SETTINGS,
    db: {
      get: async (s, k) => store(s).get(k),
      put: async (s, v: any) => void store(s).set(v.round_id ?? v.sha ?? v.id, v),
      getAll: async (s) => [...store(s).values()],
    },
    log: { warn: () => undefined },
  });
  svc.base = { card: TINY_CARD, sha: BASE_SHA };
  const advance = (ms: number) => {
    clock.t += ms;
    for (const t of timers.splice(0)) if (t.at <= clock.t) t.fn();
  };
  return { svc, kp, events, clock, advance };
}
const DRAFT = {
  base_model_id: TINY_CARD.base_model_id,
  lora_target_modules: ['q_proj', 'v_proj'],
  lora_rank: 4,
  lora_alpha: 8,
  lora_dropout: 0,
  train_steps: 10,
  learning_rate: 0.1,
  batch_size: 4,
  seed: 1,
  dp_noise_scale: 0,
  clip_norm: 10,
  min_participants: 3,
  max_participants: 32,
  deadline: new Date(T0 + 60 * 60_000).toISOString(),
  topic: 'garden',
  consent_text: 'ok',
};
const code = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e) => e.code as string,
  );
const kpOf = (i: number) => keyPairFromSeed(new Uint8Array(32).fill(i));

async function joinAs(w: ReturnType<typeof world>, round_id: string, manifest_sha: string, kp: KeyPair) {
  const consent = {
    t: 'hn.fedlearn.consent/1',
    round_id,
    participant: kp.nodeId,
    manifest_sha,
    consent_text_sha256: sha256Hex('ok'),
  };
  return w.svc.join(
    { round_id, manifest_sha, consent: signObject(kp, consent) },
    { isLocal: false, caller: kp.nodeId },
  );
}
function submissionOf(round_id: string, kp: KeyPair, seed: number, n = 10) {
  const bytes = encodeSafetensors({
    metadata: deltaMetadata({
      round_id,
      base_model_sha: BASE_SHA,
      rank: 4,
      alpha: 8,
      target_modules: ['q_proj', 'v_proj'],
    }),
    tensors: randomDelta(seed),
  });
  const body = submissionBody({
    round_id,
    participant: kp.nodeId,
    delta_sha: sha256Hex(bytes),
    num_samples: n,
  });
  return {
    round_id,
    participant: kp.nodeId,
    delta: b64url(bytes),
    delta_sha: body.delta_sha,
    num_samples: n,
    train_loss: 1,
    signature: signObject(kp, body).signature,
  };
}

describe('M28 coordinator', () => {
  it('§10.7 33rd join → capacity_exceeded; forged consent → consent_required; joins are idempotent', async () => {
    const w = world();
    const { round_id, manifest_sha } = await w.svc.announce(DRAFT);
    for (let i = 1; i <= 32; i++) await joinAs(w, round_id, manifest_sha, kpOf(i));
    expect((await joinAs(w, round_id, manifest_sha, kpOf(5))).participant).toBe(kpOf(5).nodeId);
    expect(await code(joinAs(w, round_id, manifest_sha, kpOf(33)))).toBe('capacity_exceeded');
    const k = kpOf(34);
    const forged = signObject(kpOf(35), {
      t: 'hn.fedlearn.consent/1',
      round_id,
      participant: k.nodeId,
      manifest_sha,
      consent_text_sha256: sha256Hex('ok'),
    });
    expect(
      await code(
        w.svc.join({ round_id, manifest_sha, consent: forged }, { isLocal: false, caller: k.nodeId }),
      ),
    ).toBe('consent_required');
  });

  it('§6 submit checks: not joined, bad SHA, bad signature, duplicate, wrong base, late → expired', async () => {
    const w = world();
    const { round_id, manifest_sha } = await w.svc.announce(DRAFT);
    const [a, b] = [kpOf(1), kpOf(2)];
    const ctx = (kp: KeyPair) => ({ isLocal: false, caller: kp.nodeId });
    expect(await code(w.svc.submit(submissionOf(round_id, a, 1), ctx(a)))).toBe('unauthorized');
    await joinAs(w, round_id, manifest_sha, a);
    await joinAs(w, round_id, manifest_sha, b);
    const s = submissionOf(round_id, a, 1);
    expect(await code(w.svc.submit({ ...s, delta_sha: '0'.repeat(64) }, ctx(a)))).toBe('delta_invalid');
    expect(await code(w.svc.submit({ ...s, num_samples: 11 }, ctx(a)))).toBe('invalid_signature');
    const r1 = await w.svc.submit(s, ctx(a));
    expect(await w.svc.submit(s, ctx(a))).toEqual(r1);
    expect(await code(w.svc.submit(submissionOf(round_id, a, 2), ctx(a)))).toBe('bad_request');
    const tooMany = submissionOf(round_id, b, 3, 41);
    expect(await code(w.svc.submit(tooMany, ctx(b)))).toBe('delta_invalid');
    w.advance(61 * 60_000);
    expect(await code(w.svc.submit(submissionOf(round_id, b, 3), ctx(b)))).toBe('expired');
    expect(await code(joinAs(w, round_id, manifest_sha, kpOf(9)))).toBe('expired');
  });

  it('§10.9 min 3, two valid submissions: the deadline aborts with fedlearn_min_participants_unmet and an aborted event', async () => {
    const w = world();
    const { round_id, manifest_sha } = await w.svc.announce(DRAFT);
    for (const i of [1, 2, 3]) await joinAs(w, round_id, manifest_sha, kpOf(i));
    for (const i of [1, 2])
      await w.svc.submit(submissionOf(round_id, kpOf(i), i), { isLocal: false, caller: kpOf(i).nodeId });
    w.advance(60 * 60_000);
    await new Promise((r) => setTimeout(r, 10));
    const st = await w.svc.status({ round_id }, { isLocal: true, caller: w.kp.nodeId });
    expect(st.state).toBe('ABORTED');
    const ab = w.events.find((e) => e.type === 'fedlearn.round.aborted')!;
    expect(ab.data.code).toBe('fedlearn_min_participants_unmet');
    expect(await code(w.svc.finalize({ round_id }))).toBe('fedlearn_min_participants_unmet');
  });

  it('three valid submissions complete when all joined submitted; the SHA equals a reference aggregation', async () => {
    const w = world();
    const { round_id, manifest_sha } = await w.svc.announce(DRAFT);
    for (const i of [1, 2, 3]) await joinAs(w, round_id, manifest_sha, kpOf(i));
    for (const i of [1, 2, 3])
      await w.svc.submit(submissionOf(round_id, kpOf(i), i), { isLocal: false, caller: kpOf(i).nodeId });
    await new Promise((r) => setTimeout(r, 10));
    const res = await w.svc.finalize({ round_id });
    expect(res.n_participants).toBe(3);
    const { aggregate, encodeAdapter } = await import('../../engine/fedlearn/aggregator.js');
    const { loraInit } = await import('../../engine/fedlearn/lora-init.js');
    const ref = encodeAdapter(
      aggregate(
        [1, 2, 3].map((i) => ({ participant: kpOf(i).nodeId, num_samples: 10, tensors: randomDelta(i) })),
        { method: 'fedavg', min_participants: 3, init: loraInit(TINY_CARD, ['q_proj', 'v_proj'], 4, 1) },
      ),
      {
        card: TINY_CARD,
        base_model_sha: BASE_SHA,
        rank: 4,
        alpha: 8,
        target_modules: ['q_proj', 'v_proj'],
        round_id,
        manifest_sha,
        method: 'fedavg',
      },
    );
    expect(res.adapter_sha).toBe(ref.sha);
    expect(w.events.map((e) => e.type).slice(-3)).toEqual([
      'fedlearn.round.aggregated',
      'fedlearn.adapter.published',
      'fedlearn.round.completed',
    ]);
  });

  it('§10.15 resources: rank 64 on 8 modules against a 1 MB budget → insufficient_resources; announce refuses a >64 MiB delta', async () => {
    const w = world();
    const big = {
      ...TINY_CARD,
      modules: Object.fromEntries(
        'abcdefgh'.split('').map((m) => [m + '_proj', [4096, 4096] as [number, number]]),
      ),
      layers: 32,
    };
    w.svc.base = { card: big, sha: BASE_SHA };
    expect(
      await code(w.svc.announce({ ...DRAFT, lora_rank: 64, lora_target_modules: Object.keys(big.modules) })),
    ).toBe('bad_request');
    w.svc.base = { card: TINY_CARD, sha: BASE_SHA };
    const m = (
      await w.svc.announce({
        ...DRAFT,
        lora_rank: 64,
        lora_target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'up_proj', 'down_proj'],
      })
    ).manifest;
    w.svc.device = { memory_bytes: 1_000_000 };
    expect(() => w.svc.estimate(m)).toThrowError(expect.objectContaining({ code: 'insufficient_resources' }));
    w.svc.device = { step_seconds: 10 }; // 10 steps × 10 s fits 60 min; 1000 s/step does not
    expect(w.svc.estimate(m).seconds).toBe(100);
    w.svc.device = { step_seconds: 1000 };
    expect(() => w.svc.estimate(m)).toThrowError(expect.objectContaining({ code: 'insufficient_resources' }));
  });
});
