/**
 * M28 without a network, several services routed in memory: §10.10 coordinator takeover (same SHA as a
 * reference aggregation after the grace period; unauthorized before it; fedlearn_aggregator_unreachable
 * without the flag) and §3 chunked submissions over 1 MiB (bounded buffer, SHA-checked, paged fetch).
 */
import { describe, expect, it } from 'vitest';
import { keyPairFromSeed, signObject } from '../../engine/identity/identity.js';
import { FedLearnService, type ServiceSettings, type Trainer } from '../../engine/fedlearn/participant.js';
import { aggregateRound } from '../../engine/fedlearn/coordinator.js';
import { CHUNK_BYTES, fetchAll } from '../../engine/fedlearn/chunks.js';
import { expectedShapes, type ModelCard, type Tensors } from '../../engine/fedlearn/delta.js';
import { sha256Hex } from '../../engine/core/hash.js';
import { b64url } from '../../engine/core/encoding.js';
import { xoshiro128ss } from '../../engine/fedlearn/rng.js';
import { BASE_SHA, TINY_CARD } from './fedlearn-helpers.js';

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
/** A wider card so that a rank-64 delta is ~1.8 MiB (two chunks). */
const WIDE: ModelCard = {
  base_model_id: 'hn-wide-decoder',
  layers: 2,
  modules: { q_proj: [256, 256], v_proj: [256, 256], up_proj: [256, 1024], down_proj: [1024, 256] },
};

/** A trainer that returns a small seeded Δ of the expected shapes (its own "local computation"). */
const seededTrainer =
  (seed: number): Trainer =>
  async (m, init) => {
    const r = xoshiro128ss(seed);
    const out: Tensors = new Map();
    for (const [n, t] of init) {
      const data = new Float32Array(t.data.length);
      for (let i = 0; i < data.length; i++) data[i] = (r.float() * 2 - 1) * 1e-3;
      out.set(n, { shape: [...t.shape], data });
    }
    return { tensors: out, num_samples: m.train_steps * m.batch_size, train_loss: 2.5 };
  };

const KEY_PATH: Record<string, string> = { consents: 'round_id', adapters: 'sha', training_data: 'id' };

function world(n: number, card: ModelCard) {
  const clock = { t: T0 };
  const offline = new Set<string>();
  const events: { type: string; data: Record<string, unknown>; author: string }[] = [];
  const svcs: FedLearnService[] = [];
  const byId = new Map<string, FedLearnService>();
  for (let i = 0; i < n; i++) {
    const kp = keyPairFromSeed(new Uint8Array(32).fill(90 + i));
    const mem = new Map<string, Map<string, any>>();
    const store = (s: string) => mem.get(s) ?? mem.set(s, new Map()).get(s)!;
    const self = kp.nodeId;
    const svc: FedLearnService = new FedLearnService({
      self,
      sign: (o) => signObject(kp, o),
      append: async (type, data) => {
        events.push({ type, data, author: self });
        for (const s of svcs) {
          // gossip to every service (ourselves included, as the module's subscription does)
          if (type === 'fedlearn.round.announced') s.ingestAnnounced(data);
          if (type === 'fedlearn.round.joined') s.ingestParticipant('joined', data, self);
          if (type === 'fedlearn.round.submitted') s.ingestParticipant('submitted', data, self);
          if (type === 'fedlearn.round.completed') s.ingestEnded('completed', data, self);
          if (type === 'fedlearn.round.aborted') s.ingestEnded('aborted', data, self);
        }
      },
      now: () => clock.t,
      setTimeout: () => () => undefined,
      call: async (cap, input: any, peer) => {
        const to = byId.get(peer);
        if (!to || offline.has(peer)) throw Object.assign(new Error('unreachable'), { code: 'partition' });
        const ctx = { isLocal: false, caller: self } as never;
        const name = cap.replace('experimental.fedlearn.', '');
        if (name === 'round.join') return to.join(input, ctx);
        if (name === 'round.submit') return to.submit(input, ctx);
        if (name === 'round.status') return to.status(input, ctx);
        if (name === 'adapter.fetch') return to.fetch(input, ctx);
        throw Object.assign(new Error('no such capability'), { code: 'not_found' });
      },
      levelOf: (x) => (x === svcs[0]?.coord['d'].self ? 'anchor' : 'member'),
      settings: () => SETTINGS,
      db: {
        get: async (s, k) => store(s).get(k),
        put: async (s, v: any) => void store(s).set(v[KEY_PATH[s]!], v), // the module's keyPaths
        getAll: async (s) => [...store(s).values()],
      },
      log: { warn: () => undefined },
    });
    svc.base = { card, sha: BASE_SHA };
    svc.trainer = seededTrainer(500 + i);
    svcs.push(svc);
    byId.set(self, svc);
  }
  const idOf = (s: FedLearnService) => (s.coord as unknown as { d: { self: string } }).d.self;
  return { svcs, clock, offline, events, idOf };
}

const draft = (card: ModelCard, over: Record<string, unknown> = {}) => ({
  base_model_id: card.base_model_id,
  lora_target_modules: Object.keys(card.modules),
  lora_rank: 4,
  lora_alpha: 8,
  lora_dropout: 0,
  train_steps: 10,
  learning_rate: 0.1,
  batch_size: 4,
  seed: 3,
  dp_noise_scale: 0,
  clip_norm: 10,
  min_participants: 3,
  max_participants: 32,
  deadline: new Date(T0 + 60 * 60_000).toISOString(),
  topic: 'garden',
  consent_text: 'I agree.',
  ...over,
});
const local = { isLocal: true, caller: '' } as never;
const code = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e) => e.code as string,
  );

async function joinAll(parts: FedLearnService[], round_id: string, text: string) {
  const textSha = sha256Hex(text);
  for (const p of parts) {
    await p.recordConsent(round_id, textSha);
    await p.join({ round_id, consent: true, consent_text_sha256: textSha }, local);
  }
}

describe('M28 coordinator takeover (§10.10)', () => {
  it('coordinator offline after 3 submissions: before grace unauthorized, without flag unreachable, after grace the reference SHA', async () => {
    const { svcs, clock, offline, events, idOf } = world(6, TINY_CARD);
    const [A, P1, P2, P3, P4, outsider] = svcs as [FedLearnService, ...FedLearnService[]];
    const { round_id } = await A.announce(draft(TINY_CARD) as never);
    await joinAll([P1!, P2!, P3!, P4!], round_id, 'I agree.');
    for (const p of [P1!, P2!, P3!]) await p.submit({ round_id }, local);
    // P4 joined but never submits, so the round is still open; the reference aggregation of what A holds:
    const cr = A.coord.rounds.get(round_id)!;
    expect(cr.state).toBe('ANNOUNCED');
    const ref = await aggregateRound(cr, TINY_CARD, false);
    offline.add(idOf(A));
    const deadline = Date.parse(cr.manifest.deadline);
    clock.t = deadline + 60_000; // after the deadline, inside the grace period
    expect(await code(P1!.finalize({ round_id }))).toBe('fedlearn_aggregator_unreachable');
    expect(await code(P1!.finalize({ round_id, takeover: true }))).toBe('unauthorized');
    clock.t = deadline + 601_000;
    expect(await code(outsider!.finalize({ round_id, takeover: true }))).toBe('unauthorized'); // never joined
    const res = await P4!.finalize({ round_id, takeover: true });
    expect(res.adapter_sha).toBe(ref.sha);
    expect(res.takeover).toBe(true);
    expect(res.n_participants).toBe(3);
    expect((await P4!.finalize({ round_id, takeover: true })).adapter_sha).toBe(ref.sha); // idempotent
    const mine = events.filter((e) => e.author === idOf(P4!)).map((e) => e.type);
    expect(mine).toEqual(
      expect.arrayContaining([
        'fedlearn.round.takeover',
        'fedlearn.round.aggregated',
        'fedlearn.adapter.published',
        'fedlearn.round.completed',
      ]),
    );
    expect(mine.indexOf('fedlearn.round.takeover')).toBeLessThan(mine.indexOf('fedlearn.round.completed'));
    // the adapter is stored at the new aggregator and fetchable by SHA
    const got = await P4!.fetch({ sha: ref.sha }, local);
    expect(got.size_bytes).toBe(ref.bytes.length);
    // once completed, nobody else takes over
    expect(await code(P2!.finalize({ round_id, takeover: true }))).toBe('unauthorized');
  });

  it('the coordinator still answering → unauthorized; too few deltas → aborted with fedlearn_min_participants_unmet', async () => {
    const { svcs, clock, offline, events, idOf } = world(5, TINY_CARD);
    const [A, P1, P2, P3] = svcs as FedLearnService[];
    const { round_id } = await A!.announce(draft(TINY_CARD) as never);
    await joinAll([P1!, P2!, P3!], round_id, 'I agree.');
    for (const p of [P1!, P2!]) await p.submit({ round_id }, local);
    clock.t = Date.parse(A!.coord.rounds.get(round_id)!.manifest.deadline) + 601_000;
    expect(await code(P3!.finalize({ round_id, takeover: true }))).toBe('unauthorized');
    offline.add(idOf(A!));
    expect(await code(P3!.finalize({ round_id, takeover: true }))).toBe('fedlearn_min_participants_unmet');
    expect(events.some((e) => e.type === 'fedlearn.round.aborted' && e.author === idOf(P3!))).toBe(true);
  });
});

describe('M28 chunked submissions over 1 MiB (§3)', () => {
  it(
    'a 1.8 MiB delta travels in chunks, the round completes, the adapter is fetched in pages',
    { timeout: 120_000 },
    async () => {
      const { svcs, clock } = world(4, WIDE);
      const [A, P1, P2, P3] = svcs as FedLearnService[];
      const { round_id } = await A!.announce(draft(WIDE, { lora_rank: 64 }) as never);
      await joinAll([P1!, P2!, P3!], round_id, 'I agree.');
      for (const p of [P1!, P2!, P3!]) await p.submit({ round_id }, local);
      const cr = A!.coord.rounds.get(round_id)!;
      for (const s of cr.subs.values()) expect(s.bytes.length).toBeGreaterThan(CHUNK_BYTES);
      expect(A!.coord.chunks.size).toBe(0); // nothing left buffered
      for (let i = 0; i < 50 && cr.state !== 'COMPLETED'; i++) await new Promise((r) => setTimeout(r, 10));
      expect(cr.state).toBe('COMPLETED');
      const sha = cr.result!.adapter_sha;
      const pages: number[] = [];
      const { bytes, meta } = await fetchAll(
        (input) => {
          pages.push(Number(input.offset ?? 0));
          return A!.fetch(input, { isLocal: false, caller: 'x' } as never);
        },
        sha,
        SETTINGS.submission_max_bytes,
      );
      expect(pages).toEqual([0, CHUNK_BYTES]);
      expect(`sha256:${sha256Hex(bytes)}`).toBe(sha);
      await P1!.importAdapter({ ...(meta as Parameters<FedLearnService['importAdapter']>[0]), sha, bytes });
      expect(await code(A!.fetch({ sha, offset: bytes.length + 5 }, local))).toBe('bad_request');
      void clock;
    },
  );

  it('bad chunked uploads: over the limit before buffering, wrong length, incomplete, not joined', async () => {
    const { svcs, idOf } = world(4, WIDE);
    const [A, P1, P2] = svcs as FedLearnService[];
    const { round_id } = await A!.announce(draft(WIDE, { lora_rank: 64 }) as never);
    await joinAll([P1!], round_id, 'I agree.');
    const remote = (s: FedLearnService) => ({ isLocal: false, caller: idOf(s) }) as never;
    const part = (over: Record<string, unknown>) => ({
      round_id,
      participant: idOf(P1!),
      delta_sha: 'ab'.repeat(32),
      size_bytes: 2 * CHUNK_BYTES,
      chunk_index: 0,
      chunk_count: 2,
      chunk: b64url(new Uint8Array(CHUNK_BYTES)),
      ...over,
    });
    const before = A!.coord.chunks.size;
    expect(
      await code(A!.submit(part({ size_bytes: 64 * 1024 * 1024 + 1, chunk_count: 65 }), remote(P1!))),
    ).toBe('delta_invalid');
    expect(A!.coord.chunks.size).toBe(before); // refused before any buffering
    expect(await code(A!.submit(part({ chunk: b64url(new Uint8Array(10)) }), remote(P1!)))).toBe(
      'delta_invalid',
    );
    expect(await code(A!.submit(part({ participant: idOf(P2!) }), remote(P2!)))).toBe('unauthorized');
    const ok = await A!.submit(part({}), remote(P1!));
    expect(ok).toMatchObject({ received: 1, count: 2 });
    // the submission that references an incomplete upload is refused
    expect(
      await code(
        A!.submit(
          {
            round_id,
            participant: idOf(P1!),
            delta: { chunks: 2, size_bytes: 2 * CHUNK_BYTES },
            delta_sha: 'ab'.repeat(32),
            num_samples: 1,
            train_loss: 1,
            signature: 'x',
          },
          remote(P1!),
        ),
      ),
    ).toBe('delta_invalid');
    expect(A!.coord.rounds.get(round_id)!.subs.size).toBe(0);
  });
});

void expectedShapes;

describe('M28 chunk decoder fuzz', () => {
  it('random chunk parts from a peer: accepted or delta_invalid, never more than the declared, bounded size', async () => {
    const fc = await import('fast-check');
    const { ChunkBuffer } = await import('../../engine/fedlearn/chunks.js');
    const LIMIT = 3 * CHUNK_BYTES;
    fc.assert(
      fc.property(
        fc.record({
          delta_sha: fc.oneof(fc.constant('ab'.repeat(32)), fc.string()),
          size_bytes: fc.oneof(fc.integer({ min: -5, max: LIMIT + 5 }), fc.double()),
          chunk_index: fc.integer({ min: -1, max: 4 }),
          chunk_count: fc.integer({ min: -1, max: 4 }),
          chunk: fc.oneof(
            fc.string({ maxLength: 40 }),
            fc.uint8Array({ maxLength: 64 }).map((b) => b64url(b)),
          ),
        }),
        (p) => {
          const buf = new ChunkBuffer();
          try {
            const r = buf.put('k', p as never, LIMIT);
            expect(r.received).toBe(1);
            expect(p.size_bytes).toBeLessThanOrEqual(LIMIT);
          } catch (e) {
            expect((e as { code?: string }).code).toBe('delta_invalid');
          }
          expect(buf.size).toBeLessThanOrEqual(1);
        },
      ),
      { numRuns: 300 },
    );
  });

  it(
    'fetched pages that do not line up or do not match the SHA → delta_invalid',
    { timeout: 120_000 },
    async () => {
      const data = new Uint8Array(CHUNK_BYTES + 10).map((_, i) => i & 0xff);
      const sha = `sha256:${sha256Hex(data)}`;
      const enc = new Map<string, string>(); // encode each page once (1 MiB base64url is slow on a loaded machine)
      const pageAt = (off: number, end: number, next: number | null) => ({
        size_bytes: data.length,
        bytes:
          enc.get(`${off}-${end}`) ??
          enc.set(`${off}-${end}`, b64url(data.subarray(off, end))).get(`${off}-${end}`)!,
        offset: off,
        next_offset: next,
      });
      const good = async (i: Record<string, unknown>) =>
        i.offset ? pageAt(CHUNK_BYTES, data.length, null) : pageAt(0, CHUNK_BYTES, CHUNK_BYTES);
      expect((await fetchAll(good, sha, 64 << 20)).bytes).toEqual(data);
      const gap = async (i: Record<string, unknown>) =>
        i.offset ? pageAt(CHUNK_BYTES + 1, data.length, null) : pageAt(0, CHUNK_BYTES, CHUNK_BYTES);
      expect(await code(fetchAll(gap, sha, 64 << 20))).toBe('delta_invalid');
      expect(await code(fetchAll(good, `sha256:${'0'.repeat(64)}`, 64 << 20))).toBe('delta_invalid');
      expect(await code(fetchAll(good, sha, 100))).toBe('delta_invalid'); // declared size over the limit
    },
  );
});
