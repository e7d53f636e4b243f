/** M27 on real nodes linked in memory: capabilities, abuse cases, handoff state machine, learned scorer, privacy. */
import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it } from 'vitest';
import { createNode, type HearthNode } from '../../engine/index.js';
import { manualClock } from '../../engine/core/vocab.js';
import { keyPairFromSeed, signObject } from '../../engine/identity/identity.js';
import { topicsHash } from '../../engine/moe/expert_registry.js';
import { MOE_INSTANCES, STORES } from '../../engine/moe/index.js';
import { link, seedOf } from './helpers.js';

const T0 = Date.UTC(2026, 11, 7, 12, 0, 0); // Monday 12:00 UTC
const H = 3_600_000;
const ALWAYS = { tz: 'Europe/Berlin', always: true, slots: [] };
const SECRET = 'Wann beginnt der Sankt-Martins-Zug in Kevelaer? geheim-4711';
const CONTEXT = 'Private context: my grandmother asks about the lantern route, geheim-0815';

let open: HearthNode[] = [];
afterEach(async () => {
  for (const n of open) await n.close().catch(() => undefined);
  open = [];
});

type Clock = ReturnType<typeof manualClock>;
async function mk(
  seed: number,
  clock: Clock,
  anchor?: HearthNode,
  moe: Record<string, unknown> = {},
  extra: object = {},
) {
  const n = await createNode({
    seed: seedOf(seed),
    clock,
    now: () => clock.now(),
    config: { ...(anchor ? { community: { community_id: anchor.id } } : {}), moe: moe as never },
    ...extra,
  });
  open.push(n);
  await n.enable('moe');
  return n;
}
const code = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e) => e.code as string,
  );
const human = (topics: string[], extra: object = {}) => ({
  kind: 'human',
  topics,
  availability: ALWAYS,
  consent_to_route: true,
  ...extra,
});
async function dump(n: HearthNode) {
  const db = MOE_INSTANCES.get(n.id)!.svc.d.db;
  const out: Record<string, unknown> = {};
  for (const s of STORES) out[s.name] = await db.getAll(s.name);
  return out;
}
const registryOf = async (n: HearthNode) => ({
  list: await n.call('experimental.moe.expert.list', { include_expired: true, limit: 200 }),
  events: (await n.events.list({ type: 'moe.expert.registered' })).length,
});

describe('M27 capabilities and abuse cases (one node)', () => {
  it('is off until enabled', async () => {
    const n = await createNode({});
    open.push(n);
    expect(await code(n.call('experimental.moe.route.query', { request_summary: 'x' }))).toBe(
      'experimental_disabled',
    );
  });

  it('tag dominance, auto_route, score injection, spam limit, route events off/on', async () => {
    const clock = manualClock(T0);
    const A = await mk(1, clock);
    const reg = (model_id: string, topics: string[], bias = 0) =>
      A.call('experimental.moe.expert.register', { kind: 'model', model_id, topics, score_bias: bias });
    await reg('cook-7b', ['cooking']);
    await reg('hist-7b', ['niederrhein-history', 'sankt-martins']);
    await reg('gen-7b', ['general', 'cooking-tips']);
    await reg('car-7b', ['cars']);
    const r = await A.call('experimental.moe.route.query', {
      request_summary: SECRET,
      tags: ['Sankt Martins', 'niederrhein_history'],
    });
    expect(r.candidates[0].expert_id).toBe(`model:hist-7b@${A.id}`);
    expect(r.scorer).toBe('rule_based');
    expect(r.embedder).toBe('hashed-fnv1a-512');
    expect(r.candidates[0].invoke).toEqual({
      capability: 'llm.chat',
      params: { model: 'hist-7b', host: A.id },
    });
    // auto_route: a model at ≥ 0.85 (tags exact + summary = topic + bias 1)
    await reg('hist-7b', ['niederrhein-history', 'sankt-martins'], 1);
    const r2 = await A.call('experimental.moe.route.query', {
      request_summary: 'sankt martins',
      tags: ['sankt-martins'],
    });
    expect(r2.candidates[0].score).toBeGreaterThanOrEqual(0.85);
    expect(r2.auto_route).toBe(true);
    // score injection: 999 refused for everyone, anchor (A founded the community) may set 5; registry unchanged on refusal
    const B = await mk(2, clock, A);
    await link(A, B);
    const before = await registryOf(B);
    const dbBefore = await dump(B);
    expect(
      await code(
        B.call('experimental.moe.expert.register', {
          kind: 'model',
          model_id: 'x',
          topics: ['a'],
          score_bias: 999,
        }),
      ),
    ).toBe('unauthorized');
    expect(
      await code(
        B.call('experimental.moe.expert.register', {
          kind: 'model',
          model_id: 'x',
          topics: ['a'],
          score_bias: 5,
        }),
      ),
    ).toBe('unauthorized');
    expect(
      await code(B.call('experimental.moe.expert.register', { kind: 'model', model_id: 'x', topics: [] })),
    ).toBe('bad_request');
    expect(
      await code(B.call('experimental.moe.expert.register', human(['a'], { consent_to_route: false }))),
    ).toBe('bad_request');
    expect(
      await code(
        B.call(
          'experimental.moe.expert.register',
          human(['a'], { availability: { weekdays_19_21_local: true } }),
        ),
      ),
    ).toBe('bad_request');
    expect(
      await code(
        B.call('experimental.moe.expert.register', {
          kind: 'external',
          url: 'https://x.example',
          topics: ['a'],
        }),
      ),
    ).toBe('unauthorized');
    expect(await registryOf(B)).toEqual(before);
    expect(await dump(B)).toEqual(dbBefore);
    expect(
      await B.call('experimental.moe.expert.register', {
        kind: 'model',
        model_id: 'x',
        topics: ['a'],
        score_bias: 1,
      }),
    ).toMatchObject({ expert_id: `model:x@${B.id}` });
    expect(
      await A.call('experimental.moe.expert.register', {
        kind: 'model',
        model_id: 'y',
        topics: ['a'],
        score_bias: 5,
      }),
    ).toMatchObject({ expert_id: `model:y@${A.id}` });
    // route events stay in the module DB unless published, and never carry the summary
    expect(await A.events.list({ type: 'moe.route.computed' })).toHaveLength(0);
    await A.setConfig({ moe: { publish_route_events: true } });
    await A.call('experimental.moe.route.query', { request_summary: SECRET, tags: ['cooking'] });
    const rc = await A.events.list({ type: 'moe.route.computed' });
    expect(rc).toHaveLength(1);
    expect(JSON.stringify(rc)).not.toContain('geheim');
    // spam: 100 calls in 10 minutes → 1..60 succeed (3 already made), the rest rate_limited with retry_after_ms
    const codes: string[] = [];
    let retry = 0;
    for (let i = 0; i < 97; i++) {
      clock.advance(6_000);
      try {
        await A.call('experimental.moe.route.query', { request_summary: 'cars', tags: ['cars'] });
        codes.push('ok');
      } catch (e) {
        codes.push((e as { code: string }).code);
        retry = (e as { retry_after_ms: number }).retry_after_ms;
      }
    }
    expect(codes.filter((c) => c === 'ok')).toHaveLength(57);
    expect(codes.slice(57).every((c) => c === 'rate_limited')).toBe(true);
    expect(retry).toBeGreaterThan(0);
    // bad input
    expect(await code(A.call('experimental.moe.route.query', { request_summary: '   ' }))).toBe(
      'bad_request',
    );
  });

  it('consent: anchor on behalf of a member needs a valid grant signed by the member', async () => {
    const clock = manualClock(T0);
    const A = await mk(3, clock);
    const B = await mk(4, clock, A);
    await link(A, B);
    const expert_id = `human:${B.id}`;
    const req = { ...human(['cooking']), on_behalf_of: B.id };
    expect(await code(A.call('experimental.moe.expert.register', req))).toBe('unauthorized');
    const forged = signObject(keyPairFromSeed(seedOf(99)), {
      expert_id,
      topics_hash: topicsHash(['cooking']),
      iat: T0,
      exp: T0 + 30 * 24 * H,
      purpose: 'experimental.moe.expert.register',
    });
    expect(await code(A.call('experimental.moe.expert.register', { ...req, consent_grant: forged }))).toBe(
      'unauthorized',
    );
    expect(await code(B.call('experimental.moe.expert.register', { ...req, consent_grant: forged }))).toBe(
      'unauthorized',
    ); // B is no anchor
    const grant = signObject(keyPairFromSeed(seedOf(4)), {
      expert_id,
      topics_hash: topicsHash(['cooking']),
      iat: T0,
      exp: T0 + 30 * 24 * H,
      purpose: 'experimental.moe.expert.register',
    });
    expect(await A.call('experimental.moe.expert.register', { ...req, consent_grant: grant })).toMatchObject({
      expert_id,
    });
    await expect
      .poll(async () => (await B.call('experimental.moe.expert.list', { kind: 'human' })).experts.length)
      .toBe(1);
    // federation: a foreign id is unknown
    expect(
      await code(A.call('experimental.moe.expert.unregister', { expert_id: 'human:ed25519:foreign' })),
    ).toBe('expert_unknown');
  });
});

async function trio(moe: Record<string, unknown> = {}) {
  const clock = manualClock(T0);
  const A = await mk(11, clock, undefined, moe);
  const B = await mk(12, clock, A, moe);
  const C = await mk(13, clock, A, moe);
  await link(A, B);
  await link(A, C);
  await link(B, C);
  await B.call(
    'experimental.moe.expert.register',
    human(['cooking', 'niederrhein-history'], { name: 'Bea' }),
  );
  await C.call(
    'experimental.moe.expert.register',
    human(['niederrhein-history', 'sankt-martins'], { name: 'Carl' }),
  );
  await A.call('experimental.moe.expert.register', {
    kind: 'model',
    model_id: 'hist-7b',
    topics: ['cooking', 'niederrhein-history'],
  });
  await expect.poll(async () => (await A.call('experimental.moe.expert.list', {})).experts.length).toBe(3);
  const ask = () =>
    A.call('experimental.moe.route.query', {
      request_summary: SECRET,
      tags: ['sankt-martins', 'niederrhein-history'],
      include_humans: true,
    });
  return { clock, A, B, C, ask };
}
const hs = (n: HearthNode) => MOE_INSTANCES.get(n.id)!.handoffs;

describe('M27 handoff across three nodes', () => {
  it('route → offer → decline → next candidate (same handoff) → accept → messages → complete → feedback; privacy', async () => {
    const { A, B, C, ask } = await trio();
    const r = await ask();
    expect(r.candidates.map((c: { kind: string }) => c.kind)).toContain('human');
    expect(r.candidates[0].expert_id).toBe(`human:${C.id}`); // both tags → Carl first
    expect(r.auto_route).toBe(false);
    // offer Bea first (the asker may pick any candidate), she declines, Carl gets it under the same handoff
    const h = await A.call('experimental.moe.route.handoff', {
      mode: 'initiate',
      expert_id: `human:${B.id}`,
      route_id: r.route_id,
      context_summary: CONTEXT,
    });
    expect(h).toMatchObject({ state: 'pending', attempt: 1 });
    await expect.poll(async () => (await hs(B).inbox()).length).toBe(1);
    await B.call('experimental.moe.route.handoff', {
      mode: 'respond',
      handoff_id: h.handoff_id,
      accept: false,
    });
    await expect.poll(async () => (await hs(C).inbox()).length).toBe(1);
    const s2 = await A.call('experimental.moe.route.handoff', { mode: 'status', handoff_id: h.handoff_id });
    expect(s2).toMatchObject({
      handoff_id: h.handoff_id,
      attempt: 2,
      expert_id: `human:${C.id}`,
      state: 'pending',
    });
    expect(await hs(A).mine()).toHaveLength(1);
    await C.call('experimental.moe.route.handoff', {
      mode: 'respond',
      handoff_id: h.handoff_id,
      accept: true,
    });
    await expect
      .poll(
        async () =>
          (await A.call('experimental.moe.route.handoff', { mode: 'status', handoff_id: h.handoff_id }))
            .state,
      )
      .toBe('accepted');
    await A.call('experimental.moe.route.handoff', {
      mode: 'message',
      handoff_id: h.handoff_id,
      text: 'geheim-msg-1 from asker',
    });
    await expect.poll(async () => (await hs(C).conversation(h.handoff_id))?.messages.length).toBe(1);
    await C.call('experimental.moe.route.handoff', {
      mode: 'message',
      handoff_id: h.handoff_id,
      text: 'geheim-msg-2 from expert',
    });
    await expect.poll(async () => (await hs(A).conversation(h.handoff_id))?.messages.length).toBe(2);
    await C.call('experimental.moe.route.handoff', { mode: 'complete', handoff_id: h.handoff_id });
    await expect
      .poll(
        async () =>
          (await A.call('experimental.moe.route.handoff', { mode: 'status', handoff_id: h.handoff_id }))
            .state,
      )
      .toBe('completed');
    const fb = await A.call('experimental.moe.feedback.record', {
      handoff_id: h.handoff_id,
      expert_id: `human:${C.id}`,
      helpful: true,
    });
    expect(fb).toMatchObject({ labeled: true, scorer_ready: false });
    // events on the right nodes, in order
    const types = async (n: HearthNode) =>
      (await n.events.list())
        .filter((e) => e.event_type.startsWith('moe.handoff') || e.event_type === 'moe.feedback.recorded')
        .filter((e) => e.author === n.id)
        .map((e) => e.event_type);
    expect(await types(A)).toEqual([
      'moe.handoff.initiated',
      'moe.handoff.initiated',
      'moe.feedback.recorded',
    ]);
    expect(await types(B)).toEqual(['moe.handoff.declined']);
    expect(await types(C)).toEqual(['moe.handoff.accepted']);
    // privacy: summary / context / messages nowhere in event logs, logs or module stores except conversations on participants
    for (const n of [A, B, C]) {
      const all = JSON.stringify(await n.events.list()) + JSON.stringify(n.logs.entries());
      expect(all).not.toContain('geheim');
      const { conversations, ...rest } = await dump(n);
      expect(JSON.stringify(rest)).not.toContain('geheim');
      if (n !== B) expect(JSON.stringify(conversations)).toContain('geheim-0815');
    }
    expect(JSON.stringify((await dump(A)).conversations)).not.toContain('4711'); // the summary is never stored
    // bad input: unknown mode, non-human target, remote caller for a local mode
    expect(await code(A.call('experimental.moe.route.handoff', { mode: 'nope' }))).toBe('bad_request');
    expect(
      await code(
        A.call('experimental.moe.route.handoff', {
          mode: 'initiate',
          expert_id: `model:hist-7b@${A.id}`,
          route_id: r.route_id,
          context_summary: 'x',
        }),
      ),
    ).toBe('bad_request');
    expect(
      await code(
        B.call(
          'experimental.moe.route.handoff',
          { mode: 'status', handoff_id: h.handoff_id },
          { peer: A.id },
        ),
      ),
    ).toBe('unauthorized');
    expect(
      await code(
        A.call('experimental.moe.route.handoff', {
          mode: 'initiate',
          expert_id: 'human:ed25519:foreign',
          route_id: r.route_id,
          context_summary: 'x',
        }),
      ),
    ).toBe('expert_unknown');
  });

  it('cooldown: R omits H for 2 h and initiate → expert_unavailable{cooldown}; back at 2 h + 1 s; R2 unaffected', async () => {
    const { clock, A, B, C, ask } = await trio();
    const r = await ask();
    const h = await A.call('experimental.moe.route.handoff', {
      mode: 'initiate',
      expert_id: `human:${C.id}`,
      route_id: r.route_id,
      context_summary: CONTEXT,
    });
    await A.call('experimental.moe.route.handoff', { mode: 'cancel', handoff_id: h.handoff_id });
    expect((await A.events.list({ type: 'moe.handoff.declined' })).map((e) => e.data)).toEqual([
      { handoff_id: h.handoff_id, expert_id: `human:${C.id}`, by: 'requester', reason: 'cancelled' },
    ]);
    await expect.poll(async () => (await hs(C).inbox())[0]?.state).toBe('cancelled');
    const r2 = await ask();
    expect(r2.candidates.map((c: { expert_id: string }) => c.expert_id)).not.toContain(`human:${C.id}`);
    const e = await A.call('experimental.moe.route.handoff', {
      mode: 'initiate',
      expert_id: `human:${C.id}`,
      route_id: r.route_id,
      context_summary: CONTEXT,
    }).catch((x) => x);
    expect(e).toMatchObject({ code: 'expert_unavailable', details: { reason: 'cooldown' } });
    // R2 = B is unaffected
    const rb = await B.call('experimental.moe.route.query', {
      request_summary: 'x',
      tags: ['sankt-martins'],
      include_humans: true,
    });
    expect(rb.candidates.map((c: { expert_id: string }) => c.expert_id)).toContain(`human:${C.id}`);
    clock.advance(2 * H + 1000);
    const r3 = await ask();
    expect(r3.candidates.map((c: { expert_id: string }) => c.expert_id)).toContain(`human:${C.id}`);
  });

  it('daily limit: the 6th offer within 24 h → expert_unavailable{daily_limit}; decline storm pauses after 3', async () => {
    const { A, B, C, ask } = await trio({ handoff_cooldown_hours: 0 });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await ask();
      const h = await A.call('experimental.moe.route.handoff', {
        mode: 'initiate',
        expert_id: `human:${C.id}`,
        route_id: r.route_id,
        context_summary: CONTEXT,
        fallback: 'none',
      });
      ids.push(h.handoff_id);
    }
    const r6 = await ask();
    const e = await A.call('experimental.moe.route.handoff', {
      mode: 'initiate',
      expert_id: `human:${C.id}`,
      route_id: r6.route_id,
      context_summary: CONTEXT,
      fallback: 'none',
    }).catch((x) => x);
    expect(e).toMatchObject({ code: 'expert_unavailable', details: { reason: 'daily_limit' } });
    // the requester now knows the block: C is hidden from its results
    expect((await ask()).candidates.map((c: { expert_id: string }) => c.expert_id)).not.toContain(
      `human:${C.id}`,
    );
    // decline storm: C declines three in a row → paused, absent from everyone's results until re-registering
    await expect.poll(async () => (await hs(C).inbox()).length).toBe(5);
    for (const id of ids.slice(0, 3))
      await C.call('experimental.moe.route.handoff', { mode: 'respond', handoff_id: id, accept: false });
    await expect
      .poll(
        async () =>
          (await B.call('experimental.moe.expert.list', { kind: 'human' })).experts.find(
            (x: { expert_id: string }) => x.expert_id === `human:${C.id}`,
          )?.paused,
      )
      .toBe(true);
    const rb = await B.call('experimental.moe.route.query', {
      request_summary: 'x',
      tags: ['sankt-martins'],
      include_humans: true,
    });
    expect(rb.candidates.map((c: { expert_id: string }) => c.expert_id)).not.toContain(`human:${C.id}`);
    await C.call('experimental.moe.expert.register', human(['sankt-martins']));
    await expect
      .poll(async () =>
        (
          await B.call('experimental.moe.route.query', {
            request_summary: 'x',
            tags: ['sankt-martins'],
            include_humans: true,
          })
        ).candidates.map((c: { expert_id: string }) => c.expert_id),
      )
      .toContain(`human:${C.id}`);
    // unregister cancels pending offers (declined by system, consent_revoked)
    await C.call('experimental.moe.expert.unregister', { expert_id: `human:${C.id}` });
    expect((await hs(C).inbox()).filter((o) => o.state === 'pending')).toHaveLength(0);
    await expect.poll(async () => (await hs(A).mine()).filter((h) => h.state === 'declined').length).toBe(6); // 5 cancelled by consent_revoked + the daily-limit one
  });

  it('timeout: clock + 24 h → timed_out with the model as fallback', async () => {
    const { clock, A, C, ask } = await trio();
    const r = await ask();
    const h = await A.call('experimental.moe.route.handoff', {
      mode: 'initiate',
      expert_id: `human:${C.id}`,
      route_id: r.route_id,
      context_summary: CONTEXT,
      fallback: 'none',
    });
    clock.advance(24 * H + 1);
    await expect.poll(async () => (await A.events.list({ type: 'moe.handoff.timed_out' })).length).toBe(1);
    const e = await A.call('experimental.moe.route.handoff', {
      mode: 'status',
      handoff_id: h.handoff_id,
    }).catch((x) => x);
    expect(e).toMatchObject({
      code: 'human_handoff_timed_out',
      details: { fallback_candidate: { kind: 'model', expert_id: `model:hist-7b@${A.id}` } },
    });
    await expect.poll(async () => (await hs(C).inbox())[0]?.state).toBe('timed_out');
  });
  it('an accepted handoff with 7 days of quiet becomes completed on both nodes', async () => {
    const { clock, A, C, ask } = await trio();
    const r = await ask();
    const h = await A.call('experimental.moe.route.handoff', {
      mode: 'initiate',
      expert_id: `human:${C.id}`,
      route_id: r.route_id,
      context_summary: CONTEXT,
    });
    await expect.poll(async () => (await hs(C).inbox()).length).toBe(1);
    await C.call('experimental.moe.route.handoff', {
      mode: 'respond',
      handoff_id: h.handoff_id,
      accept: true,
    });
    await expect
      .poll(
        async () =>
          (await A.call('experimental.moe.route.handoff', { mode: 'status', handoff_id: h.handoff_id }))
            .state,
      )
      .toBe('accepted');
    clock.advance(6 * 24 * H);
    await hs(A).sweepQuiet();
    expect((await hs(A).mine())[0]!.state).toBe('accepted');
    clock.advance(24 * H + 1000);
    await hs(A).sweepQuiet();
    await hs(C).sweepQuiet();
    expect((await hs(A).mine())[0]).toMatchObject({ state: 'completed', end_reason: 'quiet' });
    expect((await hs(C).inbox())[0]).toMatchObject({ state: 'completed' });
  }, 60_000);
});

describe('M27 timers survive a restart', () => {
  it('a deadline that passed while the node was closed becomes timed_out on reopen', async () => {
    const clock = manualClock(T0);
    const name = `hn-moe-${Math.random()}`;
    const A = await mk(21, clock, undefined, {}, { storage: 'indexeddb', name });
    const B = await mk(22, clock, A);
    await link(A, B);
    await B.call('experimental.moe.expert.register', human(['cooking']));
    await A.call('experimental.moe.expert.register', { kind: 'model', model_id: 'm', topics: ['cooking'] });
    await expect.poll(async () => (await A.call('experimental.moe.expert.list', {})).experts.length).toBe(2);
    const r = await A.call('experimental.moe.route.query', {
      request_summary: 'how long to boil eggs',
      tags: ['cooking'],
      include_humans: true,
    });
    const h = await A.call('experimental.moe.route.handoff', {
      mode: 'initiate',
      expert_id: `human:${B.id}`,
      route_id: r.route_id,
      context_summary: CONTEXT,
    });
    await A.close();
    open = open.filter((n) => n !== A);
    const clock2 = manualClock(T0 + 25 * H); // the app was closed for a day
    const A2 = await createNode({
      storage: 'indexeddb',
      name,
      seed: seedOf(21),
      clock: clock2,
      now: () => clock2.now(),
    });
    open.push(A2);
    await expect.poll(async () => A2.moduleStates().find((s) => s.name === 'moe')?.state).toBe('on');
    const e = await A2.call('experimental.moe.route.handoff', {
      mode: 'status',
      handoff_id: h.handoff_id,
    }).catch((x) => x);
    expect(e).toMatchObject({
      code: 'human_handoff_timed_out',
      details: { handoff: { state: 'timed_out' }, fallback_candidate: { kind: 'model' } },
    });
    expect(await A2.events.list({ type: 'moe.handoff.timed_out' })).toHaveLength(1);
  });
});

describe('M27 learned scorer through feedback.record', () => {
  it('199 labeled → rule_based; the 200th trains → learned; scorer=rule_based forces the fallback', async () => {
    const clock = manualClock(T0);
    const A = await mk(31, clock, undefined, { requests_per_user_per_hour: 1000 });
    const B = await mk(32, clock, A, { requests_per_user_per_hour: 1000, share_feedback: false });
    await link(A, B);
    for (let i = 0; i < 8; i++)
      await A.call('experimental.moe.expert.register', {
        kind: 'model',
        model_id: `m${i}`,
        topics: ['cooking', `t${i}`],
      });
    await expect.poll(async () => (await B.call('experimental.moe.expert.list', {})).experts.length).toBe(8);
    let last: { samples_total: number; scorer_ready: boolean };
    let route: { route_id: string; scorer: string; candidates: { expert_id: string }[] } | null = null;
    for (let i = 0; i < 200; i++) {
      if (i % 8 === 0) {
        route = await B.call('experimental.moe.route.query', {
          request_summary: 'cooking',
          tags: ['cooking'],
          top_k: 10,
        });
        expect(route!.scorer).toBe('rule_based');
      }
      const expert = `model:m${i % 8}@${A.id}`;
      last = await B.call('experimental.moe.feedback.record', {
        route_id: route!.route_id,
        expert_id: expert,
        helpful: i % 8 < 3,
      });
      expect(last.samples_total).toBe(i + 1);
      expect(last.scorer_ready).toBe(i + 1 >= 200);
      clock.advance(1.25 * H);
    }
    const q = await B.call('experimental.moe.route.query', {
      request_summary: 'cooking',
      tags: ['cooking'],
      top_k: 10,
    });
    expect(q.scorer).toBe('learned');
    expect(
      q.candidates
        .slice(0, 3)
        .map((c: { expert_id: string }) => c.expert_id)
        .sort(),
    ).toEqual([0, 1, 2].map((i) => `model:m${i}@${A.id}`));
    // the same feedback set gives bit-identical weights
    const svc = MOE_INSTANCES.get(B.id)!.svc;
    const w1 = svc.model!.weights;
    await svc.maybeTrain(true);
    expect(svc.model!.weights).toEqual(w1);
    await B.setConfig({ moe: { scorer: 'rule_based' } });
    expect(
      (await B.call('experimental.moe.route.query', { request_summary: 'cooking', tags: ['cooking'] }))
        .scorer,
    ).toBe('rule_based');
    // share_feedback=false: nothing of B's feedback reached the log
    expect(await A.events.list({ type: 'moe.feedback.recorded' })).toHaveLength(0);
    // feedback bad input
    expect(
      await code(
        B.call('experimental.moe.feedback.record', { route_id: q.route_id, expert_id: `model:m0@${A.id}` }),
      ),
    ).toBe('bad_request');
    expect(
      await code(
        B.call('experimental.moe.feedback.record', {
          route_id: q.route_id,
          expert_id: 'model:zz@x',
          helpful: true,
        }),
      ),
    ).toBe('expert_unknown');
    expect(
      await code(
        B.call('experimental.moe.feedback.record', {
          route_id: 'nope',
          expert_id: 'model:zz@x',
          helpful: true,
        }),
      ),
    ).toBe('not_found');
  }, 120_000);
});

describe('M27 offer delivery to an offline expert', () => {
  it('an undeliverable offer stays pending and is delivered when the link comes up', async () => {
    const clock = manualClock(T0);
    const A = await mk(41, clock);
    const B = await mk(42, clock, A);
    await link(A, B);
    await B.call('experimental.moe.expert.register', human(['bees']));
    await expect.poll(async () => (await A.call('experimental.moe.expert.list', {})).experts.length).toBe(1);
    const r = await A.call('experimental.moe.route.query', {
      request_summary: 'my bees swarm',
      tags: ['bees'],
      include_humans: true,
    });
    await B.close(); // the expert's tab is closed
    open = open.filter((n) => n !== B);
    await expect.poll(() => A.peers().filter((p) => p.state === 'open').length).toBe(0);
    const h = await A.call('experimental.moe.route.handoff', {
      mode: 'initiate',
      expert_id: r.candidates[0].expert_id,
      route_id: r.route_id,
      context_summary: CONTEXT,
    });
    expect(h.state).toBe('pending');
    expect((await hs(A).mine())[0]).toMatchObject({ state: 'pending' });
    const B2 = await createNode({
      seed: seedOf(42),
      clock,
      now: () => clock.now(),
      config: { community: { community_id: A.id }, moe: { enabled: true } } as never,
    });
    open.push(B2);
    await expect.poll(async () => B2.moduleStates().find((s) => s.name === 'moe')?.state).toBe('on');
    await B2.call('experimental.moe.expert.register', human(['bees']));
    await link(A, B2);
    await expect
      .poll(async () => (await hs(B2).inbox()).map((o) => o.handoff_id), { timeout: 5000 })
      .toEqual([h.handoff_id]);
  });
});
