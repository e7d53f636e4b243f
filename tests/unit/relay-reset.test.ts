/**
 * Hostile TCP endings and refusal floods at the relay (issue #18): a client that resets its socket
 * in the middle of a WebSocket frame, or right after asking for a refused upgrade, never takes the
 * relay down (`/healthz` answers, a new peer joins); a flood of refused messages is logged as a
 * few aggregated lines with counts, not one line per refusal.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../engine/identity/identity.js';
import { createRelay } from '../../relay/server.js';
import { eventually, joinRaw } from './relay-helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

const healthy = async (url: string) => {
  const r = await fetch(`${url}healthz`);
  return r.status === 200 && ((await r.json()) as { ok: boolean }).ok;
};

describe('relay: TCP resets', () => {
  it('survives clients resetting mid-frame and after a refused upgrade', async () => {
    const relay = await createRelay({ log: () => undefined });
    cleanups.push(() => relay.close());
    const room = generateKeyPair().nodeId;
    const peerKp = generateKeyPair();
    const peer = await joinRaw(relay.wsUrl, peerKp, room);
    cleanups.push(() => peer.c.close());

    for (let i = 0; i < 10; i++) {
      // a joined client starts a 64 KiB binary frame (header + a few masked bytes), then resets
      const { c } = await joinRaw(relay.wsUrl, generateKeyPair(), room);
      const sock = (c.ws as unknown as { _socket: net.Socket })._socket;
      const head = Buffer.from([0x82, 0xfe, 0x00, 0x00, 1, 2, 3, 4]); // FIN+binary, masked, 16-bit length
      head.writeUInt16BE(65535, 2);
      sock.write(Buffer.concat([head, Buffer.alloc(1000, 7)]));
      sock.resetAndDestroy();
    }
    for (let i = 0; i < 20; i++) {
      // a refused upgrade (wrong path → 404 written to the socket), reset before reading it
      const s = net.connect(relay.port, relay.host);
      await new Promise<void>((r) => s.once('connect', () => r()));
      s.on('error', () => undefined);
      s.write(
        'GET /nope HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      );
      if (i % 2) await new Promise((r) => setImmediate(r));
      s.resetAndDestroy();
    }
    expect(await healthy(relay.url)).toBe(true);
    const late = await joinRaw(relay.wsUrl, generateKeyPair(), room);
    cleanups.push(() => late.c.close());
    expect(late.welcome.peers.map((p: { node_id: string }) => p.node_id)).toEqual([peerKp.nodeId]);
    await eventually(() => relay.stats().connections === 2, 'reset sockets to be gone');
  }, 60_000);
});

describe('relay: refusal log lines are aggregated', () => {
  it('a burst of refusals gives a few lines whose counts add up to the refusals', async () => {
    const logs: Record<string, unknown>[] = [];
    const relay = await createRelay({ log: (r) => logs.push(r) });
    cleanups.push(() => relay.close());
    const room = generateKeyPair().nodeId;
    const { c } = await joinRaw(relay.wsUrl, generateKeyPair(), room);
    const absent = generateKeyPair().nodeId;
    const N = 40; // inside the 50-message burst: refused as offline, never rate-limited or struck
    for (let i = 0; i < N; i++) c.send({ t: 'signal', to: absent, data: { i } });
    await c.until(() => c.texts.filter((m) => m.t === 'error').length >= N, 'the refusals');
    c.close();
    await c.closed();
    const reason = 'signal_target_offline';
    await eventually(
      () =>
        logs
          .filter((l) => l.msg === 'reject' && l.reason === reason)
          .reduce((n, l) => n + Number(l.count), 0) === N,
      'the aggregated counts',
    );
    const lines = logs.filter((l) => l.msg === 'reject' && l.reason === reason);
    // one line at once, the rest in one line per second of refusals (the burst takes well under 3 s)
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines.length).toBeLessThanOrEqual(4);
    expect(lines[0]!.count).toBe(1);
    expect(relay.metrics.get('hearthnet_relay_rejects_total', { reason })).toBe(N);
  }, 30_000);
});
