/**
 * RelayClient (engine/net/relay-client.ts) against the real relay with Node's `ws` as the
 * injected WebSocket: join, roster events, signals, forwarding, clock offset, reconnect
 * after a relay restart, and the backoff schedule.
 */
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { RECONNECT_BACKOFF_CAP_SECONDS } from '../../engine/core/constants.js';
import type { NodeID } from '../../engine/core/types.js';
import { generateKeyPair, type KeyPair } from '../../engine/identity/identity.js';
import {
  RelayClient,
  decodeForwardFrame,
  encodeForwardFrame,
  reconnectDelayMs,
  type RelayClientOptions,
  type RelayClientState,
} from '../../engine/net/relay-client.js';
import { createRelay, type Relay } from '../../relay/server.js';
import { eventually } from './relay-helpers.js';

const quiet = { log: () => undefined };
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

async function startRelay(port = 0): Promise<Relay> {
  const r = await createRelay({ ...quiet, port });
  cleanups.push(() => r.close());
  return r;
}

function client(
  relay: Relay,
  kp: KeyPair,
  room: NodeID,
  extra: Partial<RelayClientOptions> = {},
): RelayClient {
  const c = new RelayClient({ url: relay.wsUrl, keyPair: kp, room, WebSocket, ...extra });
  cleanups.push(() => c.close());
  return c;
}

describe('RelayClient', () => {
  it('joins, sees the roster, exchanges signals and forwarded frames', async () => {
    const relay = await startRelay();
    const room = generateKeyPair().nodeId;
    const a = generateKeyPair();
    const b = generateKeyPair();
    const ca = client(relay, a, room, { displayName: 'alice' });
    const cb = client(relay, b, room, { displayName: 'bob' });
    const joinedSeen: NodeID[] = [];
    ca.on('peer_joined', (p) => joinedSeen.push(p.node_id));
    ca.start();
    await ca.waitReady();
    expect(ca.peers()).toEqual([]);
    cb.start();
    await cb.waitReady();
    expect(cb.peers().map((p) => [p.node_id, p.display_name])).toEqual([[a.nodeId, 'alice']]);
    await eventually(() => joinedSeen.includes(b.nodeId), 'peer_joined at a');
    expect(ca.hasPeer(b.nodeId)).toBe(true);

    const signals: unknown[] = [];
    cb.on('signal', (s) => s.from === a.nodeId && signals.push(s.data));
    ca.signal(b.nodeId, { type: 'offer', sdp: 'v=0' });
    await eventually(() => signals.length === 1, 'signal');
    expect(signals[0]).toEqual({ type: 'offer', sdp: 'v=0' });

    const got: number[][] = [];
    cb.onForward(a.nodeId, (p) => {
      got.push([...p]);
    });
    for (let i = 0; i < 20; i++) await ca.forward(b.nodeId, new Uint8Array([i, i + 1]));
    await eventually(() => got.length === 20, 'forwards');
    expect(got.map((g) => g[0])).toEqual([...Array(20).keys()]);

    // forward to an absent peer → relay_error with the target
    const errs: { code: string; to?: NodeID }[] = [];
    ca.on('relay_error', (e) => errs.push(e));
    const ghost = generateKeyPair().nodeId;
    await ca.forward(ghost, new Uint8Array([1]));
    await eventually(
      () => errs.find((e) => e.code === 'forward_target_offline' && e.to === ghost),
      'offline error',
    );

    const left: NodeID[] = [];
    ca.on('peer_left', (p) => left.push(p.node_id));
    cb.close();
    await eventually(() => left.includes(b.nodeId), 'peer_left');
    expect(ca.hasPeer(b.nodeId)).toBe(false);
  });

  it('estimates the clock offset from server_time and joins despite a 10-minute local skew', async () => {
    const relay = await startRelay();
    const room = generateKeyPair().nodeId;
    const skew = -10 * 60_000;
    const c = client(relay, generateKeyPair(), room, { now: () => Date.now() + skew });
    c.start();
    await c.waitReady();
    expect(Math.abs(c.clockOffsetMs - -skew)).toBeLessThan(5000);
    expect(Math.abs(c.now() - Date.now())).toBeLessThan(5000);
    const fine = client(relay, generateKeyPair(), room);
    fine.start();
    await fine.waitReady();
    expect(fine.appliedClockOffsetMs).toBe(0); // |offset| ≤ 2 s is not applied
  });

  it('reconnects with backoff after a relay restart and rejoins the room', async () => {
    let relay = await createRelay({ ...quiet });
    const port = relay.port;
    const room = generateKeyPair().nodeId;
    const a = generateKeyPair();
    const b = generateKeyPair();
    const opts = { backoffInitialMs: 50, backoffCapMs: 400 };
    const ca = client(relay, a, room, opts);
    const cb = client(relay, b, room, opts);
    const states: RelayClientState[] = [];
    ca.on('state', (s) => states.push(s));
    let disconnects = 0;
    ca.on('disconnected', () => disconnects++);
    ca.start();
    cb.start();
    await ca.waitReady();
    await cb.waitReady();
    await eventually(() => ca.hasPeer(b.nodeId), 'b in roster');

    await relay.close();
    await eventually(() => ca.state === 'backoff' || ca.state === 'connecting', 'a notices the outage');
    expect(disconnects).toBe(1);
    expect(ca.peers()).toEqual([]);
    await expect(ca.forward(b.nodeId, new Uint8Array([1]))).rejects.toMatchObject({
      code: 'relay_unreachable',
    });
    // let a couple of attempts fail against the closed port
    await eventually(() => ca.failedAttempts >= 2, 'failed attempts', 20_000);

    relay = await createRelay({ ...quiet, port });
    cleanups.push(() => relay.close());
    await ca.waitReady(20_000);
    await cb.waitReady(20_000);
    await eventually(() => ca.hasPeer(b.nodeId) && cb.hasPeer(a.nodeId), 'roster after restart', 20_000);
    expect(ca.failedAttempts).toBe(0);
    expect(states).toContain('backoff');
    const got: number[] = [];
    cb.onForward(a.nodeId, (p) => {
      got.push(p[0]!);
    });
    await ca.forward(b.nodeId, new Uint8Array([42]));
    await eventually(() => got.includes(42), 'forward after restart');
  });

  it('a replaced client stops instead of fighting for its NodeID', async () => {
    const relay = await startRelay();
    const room = generateKeyPair().nodeId;
    const kp = generateKeyPair();
    const c1 = client(relay, kp, room, { backoffInitialMs: 20 });
    c1.start();
    await c1.waitReady();
    const c2 = client(relay, kp, room);
    c2.start();
    await c2.waitReady();
    await eventually(() => c1.state === 'replaced', 'replaced');
    expect(c2.state).toBe('ready');
  });

  it('backoff doubles from the initial delay, is jittered, and never exceeds the cap', () => {
    const cap = RECONNECT_BACKOFF_CAP_SECONDS * 1000;
    const lo = [0, 1, 2, 3, 10, 40].map((n) => reconnectDelayMs(n, 500, cap, 0));
    const hi = [0, 1, 2, 3, 10, 40].map((n) => reconnectDelayMs(n, 500, cap, 0.999999));
    expect(lo.slice(0, 4)).toEqual([250, 500, 1000, 2000]);
    expect(hi[0]).toBeCloseTo(500, 0);
    for (const d of [...lo, ...hi]) {
      expect(d).toBeGreaterThan(0);
      expect(d).toBeLessThanOrEqual(cap);
    }
    expect(hi[5]).toBeCloseTo(cap, 0);
  });

  it('forward frame codec rejects malformed headers', () => {
    const id = generateKeyPair().nodeId;
    const f = encodeForwardFrame(id, new Uint8Array([1, 2]));
    expect(decodeForwardFrame(f).addr).toBe(id);
    expect(() => decodeForwardFrame(f.subarray(0, 10))).toThrow();
    const g = f.slice();
    g[1] = 50;
    expect(() => decodeForwardFrame(g)).toThrow();
    expect(() => encodeForwardFrame('ed25519:short' as NodeID, new Uint8Array())).toThrow();
    expect(() => encodeForwardFrame(id, new Uint8Array(128 * 1024))).toThrow();
  });
});
