/**
 * Link acceptance suite: one set of cases run against every BytePort implementation that carries
 * a peer link — the in-memory pair, the relay-forwarded end-to-end encrypted port (real relay on
 * loopback) and the direct WebRTC data channel (simple-peer + @roamhq/wrtc on loopback).
 * Each factory yields a connected `[BytePort, BytePort]` plus the `LinkInfo` each side would
 * hand to `node.connect` (as engine/net/mesh.ts does). Every wait is bounded.
 */
import { afterAll, beforeAll, expect } from 'vitest';
import WebSocket from 'ws';
import SimplePeer from 'simple-peer';
import wrtc from '@roamhq/wrtc';
import { createRelay, type Relay } from '../../relay/server.js';
import { generateKeyPair } from '../../engine/identity/identity.js';
import { memoryPortPair } from '../../engine/net/port.js';
import { RelayClient, type WebSocketConstructor } from '../../engine/net/relay-client.js';
import { acceptRelayedPorts, openRelayedPort, type SecurePort } from '../../engine/net/relayed-port.js';
import { openWebRtc, type SimplePeerCtor } from '../../engine/net/webrtc-port.js';

import { cleanups, linkAcceptanceSuite, track, within, type LinkKind } from '../suites/link-suite.js';

// ---------------------------------------------------------------------------------------
// Factories (the suite itself is tests/suites/link-suite.ts)
// ---------------------------------------------------------------------------------------

let relay: Relay | null = null;
beforeAll(async () => {
  relay = await createRelay({ port: 0, log: () => undefined });
});
afterAll(async () => {
  await relay?.close();
});

const memoryKind: LinkKind = {
  name: 'memory',
  async pair() {
    const ports = memoryPortPair();
    track(...ports);
    return {
      ports,
      info: (_s, expectedPeer) => ({ transport: 'memory', expectedPeer }),
      // a memory link has no channel binding; the binding it does have is the expected NodeID
      forged: () => ({ transport: 'memory', expectedPeer: generateKeyPair().nodeId }),
    };
  },
};

const relayKind: LinkKind = {
  name: 'relay',
  async pair() {
    const url = relay!.wsUrl;
    const room = generateKeyPair().nodeId;
    const ka = generateKeyPair();
    const kb = generateKeyPair();
    const WS = WebSocket as unknown as WebSocketConstructor;
    const ca = new RelayClient({ url, keyPair: ka, room, WebSocket: WS, reconnect: false });
    const cb = new RelayClient({ url, keyPair: kb, room, WebSocket: WS, reconnect: false });
    cleanups.push(
      () => ca.close(),
      () => cb.close(),
    );
    ca.start();
    cb.start();
    await Promise.all([ca.waitReady(5000), cb.waitReady(5000)]);
    await expect.poll(() => ca.hasPeer(kb.nodeId) && cb.hasPeer(ka.nodeId), { timeout: 5000 }).toBe(true);
    const accepted = new Promise<SecurePort>((resolve, reject) => {
      const off = acceptRelayedPorts(cb, {
        self: kb,
        onPort: (p) => {
          off();
          resolve(p);
        },
        onError: (_peer, e) => reject(e),
      });
      cleanups.push(off);
    });
    const [pa, pb] = await within(
      Promise.all([openRelayedPort(ca, kb.nodeId, { self: ka, timeoutMs: 5000 }), accepted]),
      6000,
      'relayed port',
    );
    track(pa, pb);
    expect(pa.channelBinding).toBe(pb.channelBinding);
    const binding = `e2e:${pa.channelBinding}`;
    return {
      ports: [pa, pb],
      info: (_s, expectedPeer) => ({
        transport: 'relay',
        expectedPeer,
        dtlsLocal: binding,
        dtlsRemote: binding,
      }),
      forged: (_s, expectedPeer) => {
        const other = `e2e:${'A'.repeat(43)}`;
        return { transport: 'relay', expectedPeer, dtlsLocal: other, dtlsRemote: other };
      },
    };
  },
};

const directKind: LinkKind = {
  name: 'direct',
  async pair() {
    const SP = SimplePeer as unknown as SimplePeerCtor;
    // signalling passes straight from one side to the other (simple-peer signals asynchronously)
    const to: { b?: ReturnType<typeof openWebRtc> } = {};
    const a = openWebRtc({
      initiator: true,
      SimplePeer: SP,
      wrtc,
      onSignal: (d) => to.b!.signal(d),
      timeoutMs: 8000,
    });
    const b = openWebRtc({
      initiator: false,
      SimplePeer: SP,
      wrtc,
      onSignal: (d) => a.signal(d),
      timeoutMs: 8000,
    });
    to.b = b;
    cleanups.push(
      () => a.destroy(),
      () => b.destroy(),
    );
    const [la, lb] = await within(Promise.all([a.ready, b.ready]), 10_000, 'WebRTC channel');
    track(la.port, lb.port);
    expect(la.dtlsLocal).toBe(lb.dtlsRemote);
    expect(la.dtlsRemote).toBe(lb.dtlsLocal);
    const links = [la, lb] as const;
    return {
      ports: [la.port, lb.port],
      info: (s, expectedPeer) => ({
        transport: 'direct',
        expectedPeer,
        dtlsLocal: links[s].dtlsLocal,
        dtlsRemote: links[s].dtlsRemote,
      }),
      // a swapped SDP: this side negotiated with someone else's certificate
      forged: (s, expectedPeer) => ({
        transport: 'direct',
        expectedPeer,
        dtlsLocal: links[s].dtlsLocal,
        dtlsRemote: Array.from({ length: 32 }, () => 'AB').join(':'),
      }),
    };
  },
};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/** Deterministic bytes (xorshift32) so large payloads are cheap to make and to check. */
for (const kind of [memoryKind, relayKind, directKind]) linkAcceptanceSuite(kind);
