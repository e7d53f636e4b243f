/**
 * Room passes handed out and delegated (issue #18, attack 7): the pass chain codec (founder → member
 * → invitee, checked with the room id alone), the relay admitting a delegated pass and refusing
 * forged, expired and overlong chains with the seed codes, and the engine's invite flow over a real
 * relay: the invitee joins with the pass that came with its invite, links to the founder, syncs,
 * keeps the founder's pass in its own store and rejoins with it; a member invites a third node.
 */
import fc from 'fast-check';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { createNode, type HearthNode } from '../../engine/index.js';
import type { NodeID } from '../../engine/core/types.js';
import { generateKeyPair, signObject } from '../../engine/identity/identity.js';
import { RelayClient } from '../../engine/net/relay-client.js';
import {
  buildRelayHello,
  checkRelayPass,
  delegateRelayPass,
  issueRelayPass,
  RELAY_PASS_DELEGATED_MAX_TTL_SECONDS,
  type RelayPass,
} from '../../engine/net/relay-wire.js';
import { RelayPasses } from '../../engine/net/relay-passes.js';
import { openMemoryStorage } from '../../engine/store/memory.js';
import { CORE_SCHEMA } from '../../engine/store/core-schema.js';
import { createRelay, type Relay } from '../../relay/server.js';
import { RawClient, joinRaw, type Json } from './relay-helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});
const HOUR = 3_600_000;
const quietRelay = async () => {
  const r = await createRelay({ port: 0, log: () => undefined });
  cleanups.push(() => r.close());
  return r;
};

describe('room pass chains (codec)', () => {
  const founder = generateKeyPair();
  const room = founder.nodeId;
  const member = generateKeyPair();
  const invitee = generateKeyPair();
  const other = generateKeyPair();
  const now = Date.now();
  const own = issueRelayPass(founder, member.nodeId, now);

  it('a member delegates its founder pass; the chain checks with the room id alone', () => {
    const p = delegateRelayPass(member, own, invitee.nodeId, now);
    expect(p.by).toEqual(own);
    expect(checkRelayPass(p, room, invitee.nodeId, now)).toBeNull();
    expect(Date.parse(p.expires_at) - now).toBe(RELAY_PASS_DELEGATED_MAX_TTL_SECONDS * 1000);
    // capped at the parent's expiry
    const short = issueRelayPass(founder, member.nodeId, now, 3600);
    expect(delegateRelayPass(member, short, invitee.nodeId, now).expires_at).toBe(short.expires_at);
    // direct passes are unchanged: no `by`, same fields as before
    expect(Object.keys(own).sort()).toEqual(['expires_at', 'node_id', 'room', 'signature', 'type', 'v']);
  });

  it('forged, expired, outliving and overlong chains are refused with the seed codes', () => {
    const good = delegateRelayPass(member, own, invitee.nodeId, now);
    const strip = (p: RelayPass) => {
      const { signature: _s, ...rest } = p;
      return rest;
    };
    const cases: [string, unknown][] = [
      // the invitee signs its own pass, naming the member's pass as parent
      ['invalid_signature', signObject(invitee, { ...strip(good) })],
      // the member forges its parent pass (signed by itself, not the community key)
      [
        'invalid_signature',
        signObject(member, { ...strip(good), by: signObject(member, { ...strip(own) }) }),
      ],
      // a parent for another member
      ['invalid_signature', { ...good, by: issueRelayPass(founder, other.nodeId, now) }],
      // the parent ran out
      [
        'expired',
        delegateRelayPass(
          member,
          issueRelayPass(founder, member.nodeId, now - 2 * HOUR, 3600),
          invitee.nodeId,
          now - 2 * HOUR,
          600,
        ),
      ],
      // the delegated pass itself ran out
      ['expired', delegateRelayPass(member, own, invitee.nodeId, now - 2 * HOUR, 3600)],
      // outlives its parent
      [
        'bad_request',
        signObject(member, {
          ...strip(good),
          by: issueRelayPass(founder, member.nodeId, now, 3600),
          expires_at: new Date(now + 2 * HOUR).toISOString(),
        }),
      ],
      // longer than a delegated pass may live
      [
        'bad_request',
        signObject(member, { ...strip(good), expires_at: new Date(now + 8 * 24 * HOUR).toISOString() }),
      ],
      // three links: community → member → invitee → other
      ['bad_request', signObject(invitee, { ...strip(good), node_id: other.nodeId, by: good })],
      ['bad_request', { ...good, by: 'pass' }],
    ];
    for (const [code, p] of cases) {
      const target = (p as Json).node_id ?? invitee.nodeId;
      expect(checkRelayPass(p, room, target as NodeID, now)).toBe(code);
    }
    // a delegated pass cannot be delegated again; an expired one not at all
    expect(() => delegateRelayPass(invitee, good, other.nodeId, now)).toThrow(
      expect.objectContaining({ code: 'unauthorized' }),
    );
    expect(() =>
      delegateRelayPass(
        member,
        issueRelayPass(founder, member.nodeId, now - 2 * HOUR, 60),
        other.nodeId,
        now,
      ),
    ).toThrow(expect.objectContaining({ code: 'expired' }));
  });

  it('property: changing any field of a valid chain makes it invalid', () => {
    const good = delegateRelayPass(member, own, invitee.nodeId, now) as unknown as Json;
    const paths: string[][] = [
      ['node_id'],
      ['expires_at'],
      ['signature'],
      ['room'],
      ['by', 'node_id'],
      ['by', 'expires_at'],
      ['by', 'signature'],
      ['by', 'room'],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...paths), fc.string({ minLength: 1, maxLength: 60 }), (path, v) => {
        const copy = structuredClone(good);
        const parent = path.length === 2 ? copy.by : copy;
        const key = path[path.length - 1]!;
        fc.pre(parent[key] !== v);
        parent[key] = v;
        return checkRelayPass(copy, room, invitee.nodeId, now) !== null;
      }),
      { numRuns: 300 },
    );
  });
});

describe('room pass fuzz', () => {
  it('checkRelayPass never throws on arbitrary input, including deep `by` nesting, and admits none of it', () => {
    const founder = generateKeyPair();
    const member = generateKeyPair();
    const now = Date.now();
    const good = delegateRelayPass(member, issueRelayPass(founder, member.nodeId, now), founder.nodeId, now);
    let deep: unknown = good;
    for (let i = 0; i < 10_000; i++) deep = { ...good, by: deep };
    expect(checkRelayPass(deep, founder.nodeId, founder.nodeId, now)).toBe('bad_request');
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), (a, b) => {
        const asBy = { ...(good as unknown as Json), by: a };
        return (
          checkRelayPass(a, founder.nodeId, founder.nodeId, now) !== null &&
          checkRelayPass(asBy, founder.nodeId, founder.nodeId, now) !== null &&
          checkRelayPass(
            { ...asBy, by: { ...(good.by as unknown as Json), x: b } },
            founder.nodeId,
            founder.nodeId,
            now,
          ) !== null
        );
      }),
      { numRuns: 500 },
    );
  });
});

describe('passes on a node (RelayPasses)', () => {
  it('the founder hands one pass per link, renews it past half its lifetime; a member keeps the best, persisted', async () => {
    let now = Date.now();
    const DAY = 24 * HOUR;
    const [founder, member, stranger] = [generateKeyPair(), generateKeyPair(), generateKeyPair()];
    const name = `pass-keeper-${now}`;
    const deps = (keys: typeof founder, store: Awaited<ReturnType<typeof openMemoryStorage>>) => ({
      keys,
      store,
      communityId: founder.nodeId,
      admission: () => 'invite' as const,
      levelOf: (n: NodeID) => (n === member.nodeId ? ('member' as const) : null),
      now: () => now,
    });
    const F = new RelayPasses(deps(founder, await openMemoryStorage(`${name}-f`, CORE_SCHEMA)));
    const mStore = await openMemoryStorage(name, CORE_SCHEMA);
    const M = new RelayPasses(deps(member, mStore));
    await M.load();
    expect(M.current()).toBeUndefined();
    const sent: RelayPass[] = [];
    const got: Promise<void>[] = [];
    const links = [member, stranger].map((k) => ({
      peer: k.nodeId,
      link: {},
      send: async (p: RelayPass) => {
        sent.push(p);
        got.push(M.onLinkMessage(founder.nodeId, p));
      },
    }));
    F.handOut(links);
    F.handOut(links);
    expect(sent.map((p) => p.node_id)).toEqual([member.nodeId]); // not the stranger, once per link
    await Promise.all(got);
    expect(M.current()).toEqual(sent[0]);
    now += 14 * DAY;
    F.handOut(links);
    expect(sent).toHaveLength(1);
    now += 2 * DAY; // past half of the 30-day lifetime: renewed
    F.handOut(links);
    expect(sent).toHaveLength(2);
    await Promise.all(got);
    expect(M.current()).toEqual(sent[1]);
    // a founder pass relayed by another peer, a delegated pass, or a shorter one do not replace it
    const fresh = issueRelayPass(founder, member.nodeId, now, 40 * 24 * 3600);
    await M.onLinkMessage(stranger.nodeId, fresh);
    expect(await M.accept(issueRelayPass(founder, member.nodeId, now, 3600))).toBe(false);
    expect(M.current()).toEqual(sent[1]);
    // persisted: a restarted node shows it; once it has run out, nothing
    const M2 = new RelayPasses(deps(member, mStore));
    await M2.load();
    expect(M2.current()).toEqual(sent[1]);
    now += 31 * DAY;
    await M2.load();
    expect(M2.current()).toBeUndefined();
  });
});

describe('room pass chains at the relay', () => {
  it('a delegated pass joins the members; forged, expired and overlong chains are refused and closed', async () => {
    const relay = await quietRelay();
    const founder = generateKeyPair();
    const room = founder.nodeId;
    const [member, invitee, stranger] = [generateKeyPair(), generateKeyPair(), generateKeyPair()];
    const now = Date.now();
    const own = issueRelayPass(founder, member.nodeId, now);
    const f = await joinRaw(relay.wsUrl, founder, room, 'F', issueRelayPass(founder, founder.nodeId, now));
    cleanups.push(() => f.c.close());
    const s = await joinRaw(relay.wsUrl, stranger, room, 'S');
    cleanups.push(() => s.c.close());
    expect(s.welcome.peers).toEqual([]);
    const c = await joinRaw(
      relay.wsUrl,
      invitee,
      room,
      'C',
      delegateRelayPass(member, own, invitee.nodeId, now),
    );
    cleanups.push(() => c.c.close());
    expect(c.welcome.peers.map((p: Json) => p.node_id)).toEqual([founder.nodeId]);
    const good = delegateRelayPass(member, own, stranger.nodeId, now);
    const { signature: _s, ...body } = good;
    const cases: [string, unknown][] = [
      ['invalid_signature', signObject(stranger, body)],
      ['expired', delegateRelayPass(member, own, stranger.nodeId, now - 2 * HOUR, 3600)],
      [
        'bad_request',
        signObject(invitee, { ...body, by: delegateRelayPass(member, own, invitee.nodeId, now) }),
      ],
      ['bad_request', delegateRelayPass(member, own, invitee.nodeId, now)], // borrowed
    ];
    for (const [code, pass] of cases) {
      const rc = new RawClient(relay.wsUrl);
      const ch = await rc.take('challenge');
      const h = buildRelayHello(stranger, room, ch.nonce, Date.now()) as unknown as Json;
      delete h.signature;
      rc.send(signObject(stranger, { ...h, pass }));
      expect((await rc.take('error')).code).toBe(code);
      await rc.closed();
    }
    // the stranger still sees no member
    expect(relay.stats().peers).toBe(3);
  });
});

describe('invite flow over a real relay', () => {
  const invite = { admission: 'invite' as const };
  const relayOnly = { mode: 'relay_only' as const };
  async function node(community: string | null, name?: string) {
    const n = await createNode({
      ...(name ? { name } : {}),
      config: { community: { ...invite, community_id: community }, transport: relayOnly },
      heartbeatMs: 300,
    });
    cleanups.push(() => n.close());
    return n;
  }
  const join = (n: HearthNode, relay: Relay, relayPass?: RelayPass) =>
    n.joinRelay({ url: relay.wsUrl, WebSocket, backoffInitialMs: 100, ...(relayPass ? { relayPass } : {}) });
  const linked = (n: HearthNode, p: HearthNode) => n.peers().some((x) => x.id === p.id && x.state === 'open');
  const storedPass = async (name: string) => {
    const st = await openMemoryStorage(name, CORE_SCHEMA);
    const rec = await st.get<{ pass: RelayPass }>('meta', 'relay_pass');
    await st.close();
    return rec?.pass;
  };

  it('the invitee joins with its invite pass, links and syncs, keeps the founder pass, rejoins with it; a member invites a third node; a stranger sees nobody', async () => {
    const relay = await quietRelay();
    const a = await node(null);
    await join(a, relay);
    // A invites B: the invited event and a room pass travel to B out of band (B has no log yet)
    const bName = `pass-b-${Date.now()}`;
    let b = await node(a.id, bName);
    const inv = await a.events.append('community.member.invited', {
      invitee_node_id: b.id,
      initial_level: 'member',
    });
    const invitePass = a.issueRelayPass(b.id);
    expect(await b.events.count()).toBe(0);
    await join(b, relay, invitePass);
    await expect.poll(() => linked(a, b) && linked(b, a), { timeout: 20_000 }).toBe(true);
    await expect.poll(async () => Boolean(await b.events.get(inv.event_id)), { timeout: 20_000 }).toBe(true);
    await b.events.append('community.member.joined', { invite_event_id: inv.event_id });
    // the founder handed B its own pass over the link; B keeps it in its store (not the log)
    await expect
      .poll(async () => (await storedPass(bName))?.signature !== invitePass.signature, { timeout: 10_000 })
      .toBe(true);
    const kept = (await storedPass(bName))!;
    expect(checkRelayPass(kept, a.id as NodeID, b.id as NodeID, Date.now())).toBeNull();
    expect((await b.events.list()).some((e) => JSON.stringify(e.data).includes(kept.signature))).toBe(false);

    // B restarts and rejoins with no pass in hand: the stored one admits it
    b.leaveRelay();
    await b.close();
    b = await node(a.id, bName);
    await join(b, relay);
    await expect.poll(() => linked(a, b) && linked(b, a), { timeout: 20_000 }).toBe(true);
    expect(await a.call('protocol.version.list', {}, { peer: b.id })).toMatchObject({ current: '3.0.0' });

    // B (a member) invites C: the invite carries a pass B delegates from its own
    const c = await node(a.id);
    const invC = await b.events.append('community.member.invited', {
      invitee_node_id: c.id,
      initial_level: 'member',
    });
    const cPass = b.issueRelayPass(c.id);
    expect(cPass.by?.node_id).toBe(b.id);
    await expect.poll(async () => Boolean(await a.events.get(invC.event_id)), { timeout: 20_000 }).toBe(true);
    await join(c, relay, cPass);
    await expect.poll(() => linked(a, c) && linked(c, a), { timeout: 20_000 }).toBe(true);
    // C in turn receives the founder's direct pass over the link: then (not before) it can delegate
    const x = generateKeyPair().nodeId;
    const delegatesAs = () => {
      try {
        return c.issueRelayPass(x).by?.node_id ?? null;
      } catch (e) {
        return (e as { code?: string }).code ?? 'thrown';
      }
    };
    await expect.poll(delegatesAs, { timeout: 10_000 }).toBe(c.id);

    // a stranger who knows the room id sees nobody and reaches nobody
    const stranger = new RelayClient({
      url: relay.wsUrl,
      keyPair: generateKeyPair(),
      room: a.id as NodeID,
      WebSocket,
    });
    cleanups.push(() => stranger.close());
    const errors: string[] = [];
    stranger.on('relay_error', (e) => errors.push(e.code));
    stranger.start();
    await stranger.waitReady(10_000);
    expect(stranger.peers()).toEqual([]);
    await stranger.forward(b.id as NodeID, new Uint8Array(8));
    await expect.poll(() => errors, { timeout: 5000 }).toContain('forward_target_offline');
    expect(stranger.peers()).toEqual([]);
    expect(
      a
        .peers()
        .map((p) => p.id)
        .sort(),
    ).toEqual([b.id, c.id].sort());
  }, 90_000);

  it('a node that is neither founder nor pass holder cannot issue a pass', async () => {
    const a = await node(null);
    const b = await node(a.id);
    expect(() => b.issueRelayPass(a.id)).toThrow(expect.objectContaining({ code: 'unauthorized' }));
  });
});
