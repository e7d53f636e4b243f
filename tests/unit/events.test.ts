import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createNode, type HearthNode } from '../../engine/index.js';
import { eventHash, type EventEnvelope } from '../../engine/events/log.js';
import { verifyObject, keyPairFromSeed, signObject } from '../../engine/identity/identity.js';
import { openMemoryStorage } from '../../engine/store/memory.js';
import type { StorageFactory } from '../../engine/store/types.js';
import { link, seedOf } from './helpers.js';

async function snapshot(n: HearthNode) {
  const evs = await n.events.list();
  return { heads: await n.events.heads(), hashes: evs.map(eventHash).sort() };
}

describe('event log: local append', () => {
  it('forms a valid seq/prev chain; every stored event re-verifies and its hash recomputes', async () => {
    const n = await createNode();
    for (let i = 0; i < 20; i++) await n.events.append('test.item.added', { i });
    const mine = await n.events.list({ author: n.id });
    expect(mine).toHaveLength(21); // community.created + 20
    mine.forEach((ev, i) => {
      expect(ev.seq).toBe(i + 1);
      expect(ev.prev).toBe(i === 0 ? null : eventHash(mine[i - 1]!));
      expect(verifyObject(ev as never, ev.author)).toBe(true);
      if (i) expect(ev.lamport).toBeGreaterThan(mine[i - 1]!.lamport);
    });
    expect((await n.events.heads()).authors[n.id]).toEqual({ seq: 21, hash: eventHash(mine[20]!) });
  });
  it('queries by type, author and time', async () => {
    const n = await createNode();
    await n.events.append('test.a.x', { v: 1 });
    await n.events.append('test.b.x', { v: 2 });
    await n.events.append('test.a.x', { v: 3 });
    expect((await n.events.list({ type: 'test.a.x' })).map((e) => e.data.v)).toEqual([1, 3]);
    expect(await n.events.list({ since_ms: Date.now() + 60_000 })).toEqual([]);
    expect((await n.events.list({ until_ms: Date.now() + 1000, limit: 2 })).length).toBe(2);
  });
  it('refuses events of a disabled module and malformed types', async () => {
    const n = await createNode();
    await expect(n.events.append('evidence.claim.asserted', {})).rejects.toMatchObject({
      code: 'experimental_disabled',
    });
    await expect(n.events.append('Bad Type', {})).rejects.toMatchObject({ code: 'bad_request' });
    await n.enable('evidence');
    await n.events.append('evidence.claim.asserted', { claim_id: 'x' });
  });
  it('an aborted storage transaction during append leaves clock, head and events unchanged', async () => {
    let failNext = false;
    const flaky: StorageFactory = async (name, schema) => {
      const s = await openMemoryStorage(name, schema);
      const tx = s.transaction.bind(s);
      s.transaction = (stores, mode, fn) =>
        tx(stores, mode, async (t) => {
          const r = await fn(t);
          if (failNext && stores.includes('heads')) {
            failNext = false;
            throw new Error('disk full');
          }
          return r;
        });
      return s;
    };
    const n = await createNode({ storage: flaky });
    await n.events.append('test.x.y', { i: 1 });
    const before = await snapshot(n);
    const count = await n.events.count();
    failNext = true;
    await expect(n.events.append('test.x.y', { i: 2 })).rejects.toMatchObject({ code: 'storage_failed' });
    expect(await snapshot(n)).toEqual(before);
    expect(await n.events.count()).toBe(count);
    const next = await n.events.append('test.x.y', { i: 3 });
    expect(next.seq).toBe(3);
  });
});

describe('event log: receive validation', () => {
  async function pair() {
    const a = await createNode({ seed: seedOf(1) });
    const b = await createNode({ config: { community: { community_id: a.id } } });
    return [a, b] as const;
  }
  it('rejects each bad event with its reason; a duplicate is a silent no-op; nothing stored changes', async () => {
    const [a, b] = await pair();
    const good = await a.events.append('test.x.y', { n: 1 });
    expect(await b.events.receive([good])).toMatchObject({ accepted: 1, rejected: [] });
    expect(await b.events.receive([good])).toMatchObject({ accepted: 0, duplicates: 1, rejected: [] });
    const before = await snapshot(b);
    const e2 = await a.events.append('test.x.y', { n: 2 });
    const cases: [unknown, string][] = [
      [{ ...e2, data: { n: 999 } }, 'invalid_signature'],
      // one character of R changed (the last two characters carry 8 bits that are zero in 1 of 256 signatures)
      [
        {
          ...e2,
          signature:
            e2.signature.slice(0, 10) + (e2.signature[10] === 'A' ? 'B' : 'A') + e2.signature.slice(11),
        },
        'invalid_signature',
      ],
      [{ ...e2, seq: 'two' }, 'bad_request'],
      [{ ...e2, event_type: 'No Type' }, 'schema_unknown'],
      [{ ...e2, community_id: b.id }, 'community_mismatch'],
      ['not an event', 'bad_request'],
      [{ ...e2, data: { big: 'x'.repeat(70_000) } }, 'too_large'],
    ];
    for (const [ev, reason] of cases) {
      const r = await b.events.receive([ev]);
      expect(
        r.rejected.map((x) => x.reason),
        reason,
      ).toEqual([reason]);
    }
    expect(await snapshot(b)).toEqual(before);
  });
  it('fork at the same seq → chain_conflict (kept aside as equivocation); wrong prev → chain_conflict', async () => {
    const [a, b] = await pair();
    const kp = keyPairFromSeed(seedOf(1));
    const e1 = await a.events.append('test.x.y', { n: 1 });
    await b.events.receive([e1]);
    const fork = signObject(kp, {
      ...e1,
      event_id: '01J00000000000000000000000',
      data: { n: 'fork' },
    }) as EventEnvelope;
    expect((await b.events.receive([fork])).rejected).toEqual([
      { event_id: fork.event_id, reason: 'chain_conflict' },
    ]);
    expect(b.metrics.get('hearthnet_events_equivocation_total')).toBe(1);
    const e2 = await a.events.append('test.x.y', { n: 2 });
    const badPrev = signObject(kp, { ...e2, prev: 'blake3:' + '0'.repeat(64) }) as EventEnvelope;
    expect((await b.events.receive([badPrev])).rejected[0]!.reason).toBe('chain_conflict');
  });
  it('Lamport jump → out_of_order; bad data of a known type → data_invalid; unknown type stored and counted', async () => {
    const [a, b] = await pair();
    const kp = keyPairFromSeed(seedOf(1));
    const e1 = await a.events.append('test.x.y', { n: 1 });
    const jump = signObject(kp, { ...e1, lamport: 5_000_000 }) as EventEnvelope;
    expect((await b.events.receive([jump])).rejected[0]!.reason).toBe('out_of_order');
    const created = (await a.events.list({ type: 'community.created' }))[0]!;
    const badData = signObject(kp, {
      ...created,
      event_id: '01J00000000000000000000001',
      seq: 9,
      prev: 'blake3:' + '1'.repeat(64),
      data: { name: 5 },
    }) as EventEnvelope;
    expect((await b.events.receive([badData])).rejected[0]!.reason).toBe('data_invalid');
    expect((await b.events.receive([e1])).accepted).toBe(1);
    expect(b.metrics.get('hearthnet_events_unknown_type_total')).toBe(1);
  });
  it('invite-only community: non-members → unknown_author; invited joins; revoked author rejected after revocation only', async () => {
    const founder = await createNode({ seed: seedOf(7), config: { community: { admission: 'invite' } } });
    const cfg = { community: { community_id: founder.id, admission: 'invite' as const } };
    const stranger = await createNode({ config: cfg });
    const member = await createNode({ config: cfg });
    const s1 = await stranger.events.append('test.x.y', {});
    expect((await founder.events.receive([s1])).rejected[0]!.reason).toBe('unknown_author');
    const inv = await founder.events.append('community.member.invited', {
      invitee_node_id: member.id,
      initial_level: 'member',
    });
    await member.events.receive(await founder.events.list());
    const joined = await member.events.append('community.member.joined', { invite_event_id: inv.event_id });
    const m1 = await member.events.append('test.x.y', { before: true });
    expect(await founder.events.receive([m1, joined])).toMatchObject({ accepted: 2, rejected: [] });
    expect(founder.levelOf(member.id)).toBe('member');
    await founder.events.append('community.member.revoked', { target_node_id: member.id, reason: 'test' });
    await member.events.receive(await founder.events.list());
    const m2 = await member.events.append('test.x.y', { after: true });
    expect((await founder.events.receive([m2])).rejected[0]!.reason).toBe('revoked_author');
    expect(founder.levelOf(member.id)).toBe('revoked');
    // a revoked peer cannot call capabilities
    expect(founder.levelOf(stranger.id)).toBe(null);
  });
  it('property: 500 events from 5 authors in any arrival order give the same heads and hash set', async () => {
    const authors = await Promise.all(
      [1, 2, 3, 4, 5].map((i) =>
        createNode({
          seed: seedOf(10 + i),
          config: { community: { community_id: keyPairFromSeed(seedOf(11)).nodeId } },
        }),
      ),
    );
    const all: EventEnvelope[] = [];
    for (const a of authors) all.push(...(await a.events.list()));
    for (let i = 0; i < 500 - all.length + 500; i++) {
      if (all.length >= 500) break;
      all.push(await authors[i % 5]!.events.append('test.x.y', { i }));
    }
    const reference = await createNode({ config: { community: { community_id: authors[0]!.id } } });
    await reference.events.receive(all);
    const want = await snapshot(reference);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.nat(), { minLength: all.length, maxLength: all.length }),
        fc.integer({ min: 1, max: 50 }),
        async (keys, batch) => {
          const shuffled = all
            .map((e, i) => [keys[i]!, e] as const)
            .sort((x, y) => x[0] - y[0])
            .map(([, e]) => e);
          const n = await createNode({ config: { community: { community_id: authors[0]!.id } } });
          for (let i = 0; i < shuffled.length; i += batch)
            await n.events.receive(shuffled.slice(i, i + batch));
          const got = await snapshot(n);
          expect(got.hashes).toEqual(want.hashes);
          expect(got.heads.authors).toEqual(want.heads.authors);
          await n.close();
        },
      ),
      { numRuns: 8 },
    );
  });
});

describe('event sync between peers', () => {
  it('10,000 events written apart sync when two in-memory peers meet, nothing missing or duplicated; a second sync moves 0', async () => {
    // no M32 descriptor announcements: the count below is exact
    const quiet = { protocol: { announce_to_peers: false } };
    const A = await createNode({ seed: seedOf(21), config: quiet });
    const B = await createNode({ seed: seedOf(22), config: { ...quiet, community: { community_id: A.id } } });
    // written while apart, so live push cannot carry them: only sync can
    for (let i = 0; i < 6000; i++) await A.events.append('test.bulk.item', { i });
    for (let i = 0; i < 4000; i++) await B.events.append('test.bulk.item', { i });
    expect(await B.events.count()).toBe(4000);
    await link(A, B); // the link's first act is a sync in both directions
    await expect
      .poll(async () => (await A.events.count()) + (await B.events.count()), {
        timeout: 270_000,
        interval: 500,
      })
      .toBe(2 * 10_001);
    const a = await snapshot(A);
    const b = await snapshot(B);
    expect(a.hashes).toEqual(b.hashes);
    expect(new Set(a.hashes).size).toBe(a.hashes.length);
    expect(a.hashes.length).toBe(10_000 + 1); // + community.created
    expect(a.heads).toEqual(b.heads);
    expect(await A.events.sync(B.id)).toEqual({ sent: 0, received: 0 });
  }, 300_000);
  it('a tampered event in a sync batch is rejected and leaves both logs unchanged', async () => {
    const A = await createNode({ seed: seedOf(31) });
    const B = await createNode({ config: { community: { community_id: A.id } } });
    await A.events.append('test.x.y', { n: 1 });
    await link(A, B);
    await A.events.sync(B.id);
    const [ha, hb] = [await snapshot(A), await snapshot(B)];
    const ev = await A.events.append('test.x.y', { n: 2 });
    const tampered = { ...ev, data: { n: 3 } };
    const r = await B.events.receive([tampered]);
    expect(r.rejected).toEqual([{ event_id: ev.event_id, reason: 'invalid_signature' }]);
    expect(await snapshot(B)).toEqual(hb);
    expect((await snapshot(A)).hashes.length).toBe(ha.hashes.length + 1);
  });
  it('3 nodes partitioned 1+2 converge after healing; a line A–B–C gets live pushes end to end', async () => {
    const A = await createNode({ seed: seedOf(41) });
    const cfg = { config: { community: { community_id: A.id } } };
    const B = await createNode(cfg);
    const C = await createNode(cfg);
    await link(B, C);
    await A.events.append('test.side.a', {});
    await B.events.append('test.side.b', {});
    await C.events.append('test.side.c', {});
    await link(A, B);
    await A.events.sync(B.id);
    await B.events.sync(C.id);
    const hashes = (await snapshot(A)).hashes;
    expect((await snapshot(B)).hashes).toEqual(hashes);
    expect((await snapshot(C)).hashes).toEqual(hashes);
    // live push along the line A–B–C
    const ev = await A.events.append('test.live.push', { hello: 'C' });
    await expect
      .poll(async () => (await C.events.get(ev.event_id))?.data, { timeout: 2000 })
      .toEqual({ hello: 'C' });
  });
});

describe('sync when peers meet', () => {
  it('events written while apart arrive as soon as a link comes up', async () => {
    const A = await createNode({ seed: seedOf(51) });
    const B = await createNode({ config: { community: { community_id: A.id } } });
    const evs = [];
    for (let i = 0; i < 30; i++) evs.push(await A.events.append('test.offline.note', { i }));
    await B.events.append('test.offline.note', { from: 'b' });
    await link(A, B);
    await expect
      .poll(async () => (await B.events.count()) === (await A.events.count()), { timeout: 5000 })
      .toBe(true);
    expect(await B.events.get(evs[29]!.event_id)).toBeDefined();
  });
});
