/**
 * The mesh in Node: real relay (createRelay), real WebRTC through @roamhq/wrtc on loopback,
 * real end-to-end encrypted relay forwarding. Browsers are covered by the Playwright suite.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import SimplePeer from 'simple-peer';
import wrtc from '@roamhq/wrtc';
import { createRelay, type Relay } from '../../relay/server.js';
import { createNode, type HearthNode } from '../../engine/index.js';
import type { SimplePeerCtor } from '../../engine/net/webrtc-port.js';
import { generateKeyPair } from '../../engine/identity/identity.js';
import { RelayClient } from '../../engine/net/relay-client.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
const quietRelay = (port = 0) => createRelay({ port, log: () => {} });
/** A relay on a port below the kernel's ephemeral range (32768–60999), so that no port-0 server of a
 * parallel test file can take it while this relay is down for a restart. */
async function relayOnFixedPort(): Promise<Relay> {
  for (let i = 0; ; i++) {
    try {
      return await quietRelay(20_000 + Math.floor(Math.random() * 12_000));
    } catch (e) {
      if (i >= 20) throw e;
    }
  }
}

async function meshNode(
  relay: Relay,
  community: string | null,
  mode: 'auto' | 'relay_only' = 'auto',
  direct = true,
) {
  const n = await createNode({
    config: {
      community: { community_id: community },
      transport: { mode, webrtc_connect_timeout_seconds: 5 },
    },
    heartbeatMs: 300,
  });
  cleanups.push(() => n.close());
  await n.joinRelay({
    url: relay.wsUrl,
    WebSocket,
    ...(direct ? { SimplePeer: SimplePeer as unknown as SimplePeerCtor, wrtc } : {}),
    backoffInitialMs: 100,
  });
  return n;
}

const linkedTo = (n: HearthNode, peers: HearthNode[], link?: string) =>
  peers.every((p) =>
    n.peers().some((x) => x.id === p.id && x.state === 'open' && (!link || x.link === link)),
  );

describe('mesh through a real relay', () => {
  it('three peers form a full mesh of direct WebRTC links; calls and events flow', async () => {
    const relay = await quietRelay();
    cleanups.push(() => relay.close());
    const a = await meshNode(relay, null);
    const b = await meshNode(relay, a.id);
    const c = await meshNode(relay, a.id);
    await expect
      .poll(
        () => linkedTo(a, [b, c], 'direct') && linkedTo(b, [a, c], 'direct') && linkedTo(c, [a, b], 'direct'),
        { timeout: 20_000 },
      )
      .toBe(true);
    expect(await a.call('protocol.version.list', {}, { peer: c.id })).toMatchObject({ current: '3.0.0' });
    const ev = await b.events.append('test.mesh.hello', { from: 'b' });
    await expect
      .poll(async () => !!(await a.events.get(ev.event_id)) && !!(await c.events.get(ev.event_id)), {
        timeout: 5000,
      })
      .toBe(true);
    await expect
      .poll(() => a.peers().every((p) => typeof p.rtt_ms === 'number'), { timeout: 5000 })
      .toBe(true);
  }, 60_000);

  it('a relay_only peer is reached through end-to-end encrypted relay forwarding', async () => {
    const relay = await quietRelay();
    cleanups.push(() => relay.close());
    const a = await meshNode(relay, null);
    const b = await meshNode(relay, a.id, 'relay_only');
    const c = await meshNode(relay, a.id, 'auto', false); // no WebRTC at all in this peer
    await expect
      .poll(() => linkedTo(a, [b, c], 'relay') && linkedTo(b, [a, c], 'relay'), { timeout: 20_000 })
      .toBe(true);
    expect(await b.call('protocol.version.list', {}, { peer: a.id })).toMatchObject({ current: '3.0.0' });
    const forwarded = () =>
      Number(
        /hearthnet_relay_forward_bytes_total(?:\{[^}]*\})? (\d+)/.exec(relay.metrics.render())?.[1] ?? 0,
      );
    const before = forwarded();
    await b.call('protocol.self.describe', {}, { peer: c.id });
    expect(forwarded()).toBeGreaterThan(before);
  }, 60_000);

  it('after a relay restart, direct links keep working and peers rejoin by themselves', async () => {
    let relay = await relayOnFixedPort();
    const port = relay.port;
    const a = await meshNode(relay, null);
    const b = await meshNode(relay, a.id);
    await expect.poll(() => linkedTo(a, [b], 'direct'), { timeout: 20_000 }).toBe(true);
    await relay.close();
    await expect.poll(() => a.relayState(), { timeout: 10_000 }).not.toBe('ready');
    // the direct link does not depend on the relay
    expect(await a.call('protocol.version.list', {}, { peer: b.id })).toMatchObject({ current: '3.0.0' });
    relay = await quietRelay(port);
    cleanups.push(() => relay.close());
    await expect
      .poll(() => a.relayState() === 'ready' && b.relayState() === 'ready', { timeout: 30_000 })
      .toBe(true);
    // a newcomer after the restart links to both
    const c = await meshNode(relay, a.id);
    await expect.poll(() => linkedTo(c, [a, b]), { timeout: 20_000 }).toBe(true);
  }, 90_000);

  it('a peer that leaves is dropped from the others', async () => {
    const relay = await quietRelay();
    cleanups.push(() => relay.close());
    const a = await meshNode(relay, null);
    const b = await meshNode(relay, a.id);
    await expect.poll(() => linkedTo(a, [b]), { timeout: 20_000 }).toBe(true);
    await b.close();
    await expect.poll(() => a.peers().filter((p) => p.state === 'open').length, { timeout: 10_000 }).toBe(0);
    await expect(a.call('protocol.version.list', {}, { peer: b.id })).rejects.toMatchObject({
      code: 'partition',
    });
  }, 60_000);

  it('an invite community: founder and invitee (room pass) link through the relay; a stranger who knows the room id sees nobody', async () => {
    const relay = await quietRelay();
    cleanups.push(() => relay.close());
    const invite = { admission: 'invite' as const };
    const relayOnly = { mode: 'relay_only' as const };
    const a = await createNode({ config: { community: invite, transport: relayOnly }, heartbeatMs: 300 });
    const b = await createNode({
      config: { community: { ...invite, community_id: a.id }, transport: relayOnly },
      heartbeatMs: 300,
    });
    cleanups.push(
      () => a.close(),
      () => b.close(),
    );
    const inv = await a.events.append('community.member.invited', {
      invitee_node_id: b.id,
      initial_level: 'member',
    });
    await b.events.receive(await a.events.list());
    expect(() => b.issueRelayPass(b.id)).toThrow(expect.objectContaining({ code: 'unauthorized' }));
    await a.joinRelay({ url: relay.wsUrl, WebSocket, backoffInitialMs: 100 });
    await b.joinRelay({
      url: relay.wsUrl,
      WebSocket,
      backoffInitialMs: 100,
      relayPass: a.issueRelayPass(b.id),
    });
    await expect
      .poll(() => linkedTo(a, [b], 'relay') && linkedTo(b, [a], 'relay'), { timeout: 20_000 })
      .toBe(true);
    // the stranger joins the same room id without a pass
    const stranger = new RelayClient({ url: relay.wsUrl, keyPair: generateKeyPair(), room: a.id, WebSocket });
    cleanups.push(() => stranger.close());
    const errors: string[] = [];
    stranger.on('relay_error', (e) => errors.push(e.code));
    stranger.start();
    await stranger.waitReady(10_000);
    expect(stranger.peers()).toEqual([]);
    await expect(stranger.forward(b.id, new Uint8Array(8))).resolves.toBeUndefined();
    await expect.poll(() => errors, { timeout: 5000 }).toContain('forward_target_offline');
    expect(stranger.peers()).toEqual([]);
    expect(a.peers().map((p) => p.id)).toEqual([b.id]);
    await b.events.append('community.member.joined', { invite_event_id: inv.event_id });
    expect(await a.call('protocol.version.list', {}, { peer: b.id })).toMatchObject({ current: '3.0.0' });
  }, 60_000);
});
