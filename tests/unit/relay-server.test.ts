/**
 * Relay server against real `ws` clients on 127.0.0.1: hello/challenge, rooms, signalling,
 * forwarding with backpressure, hostile clients, HTTP surface. No timed assertions: every
 * wait is "eventually, within a generous bound".
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, signObject, type KeyPair } from '../../engine/identity/identity.js';
import {
  RELAY_CLOSE_POLICY,
  RELAY_CLOSE_REPLACED,
  buildRelayHello,
  decodeForwardFrame,
  encodeForwardFrame,
} from '../../engine/net/relay-client.js';
import { parseIceServers, parseRelayConfig } from '../../relay/config.js';
import { createRelay, type Relay } from '../../relay/server.js';
import { RawClient, eventually, joinRaw, parseProm, type Json } from './relay-helpers.js';

const quiet = { log: () => undefined };
const logs: Record<string, unknown>[] = [];

describe('relay: hello, rooms, signalling, forwarding', () => {
  let relay: Relay;
  const room1 = generateKeyPair().nodeId;
  const room2 = generateKeyPair().nodeId;

  beforeAll(async () => {
    relay = await createRelay({ log: (r) => logs.push(r) });
  });
  afterAll(async () => {
    await relay.close();
  });

  it('challenge → signed hello → welcome with roster; peer_joined / peer_left', async () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    const { c: ca, welcome: wa } = await joinRaw(relay.wsUrl, a, room1, 'alice');
    expect(wa.peers).toEqual([]);
    expect(wa.node_id).toBe(a.nodeId);
    expect(typeof wa.server_time).toBe('string');
    const { c: cb, welcome: wb } = await joinRaw(relay.wsUrl, b, room1, 'bob');
    expect(wb.peers.map((p: Json) => [p.node_id, p.display_name])).toEqual([[a.nodeId, 'alice']]);
    const joined = await ca.take('peer_joined');
    expect(joined).toMatchObject({ node_id: b.nodeId, display_name: 'bob' });
    cb.close();
    const left = await ca.take('peer_left');
    expect(left.node_id).toBe(b.nodeId);
    ca.close();
  });

  it('bad signature → invalid_signature + close', async () => {
    const a = generateKeyPair();
    const c = new RawClient(relay.wsUrl);
    const ch = await c.take('challenge');
    const hello = buildRelayHello(a, room1, ch.nonce, Date.now());
    const sig = hello.signature;
    hello.signature = sig.slice(0, 20) + (sig[20] === 'A' ? 'B' : 'A') + sig.slice(21);
    c.send(hello);
    const err = await c.take('error');
    expect(err.code).toBe('invalid_signature');
    expect((await c.closed()).code).toBe(RELAY_CLOSE_POLICY);
  });

  it('a peer claiming another NodeID (signed with its own key) → invalid_signature', async () => {
    const victim = generateKeyPair();
    const attacker = generateKeyPair();
    const { c: cv } = await joinRaw(relay.wsUrl, victim, room1);
    const c = new RawClient(relay.wsUrl);
    const ch = await c.take('challenge');
    const forged = signObject(attacker, {
      t: 'hello',
      v: 1,
      type: 'relay.hello',
      node_id: victim.nodeId,
      room: room1,
      nonce: ch.nonce,
      ts: new Date().toISOString(),
    });
    c.send(forged);
    expect((await c.take('error')).code).toBe('invalid_signature');
    await c.closed();
    // the victim is untouched: still connected, not replaced
    expect(cv.closeInfo).toBeNull();
    cv.close();
  });

  it('stale nonce (another connection’s challenge) and stale ts → expired', async () => {
    const a = generateKeyPair();
    const other = new RawClient(relay.wsUrl);
    const otherCh = await other.take('challenge');
    const c = new RawClient(relay.wsUrl);
    await c.take('challenge');
    c.send(buildRelayHello(a, room1, otherCh.nonce, Date.now()));
    expect((await c.take('error')).code).toBe('expired');
    await c.closed();
    other.close();

    const d = new RawClient(relay.wsUrl);
    const ch = await d.take('challenge');
    d.send(buildRelayHello(a, room1, ch.nonce, Date.now() - 10 * 60_000));
    expect((await d.take('error')).code).toBe('expired');
    await d.closed();
  });

  it('rooms are isolated for roster, signals and forwarding; absent target → forward_target_offline', async () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    const x = generateKeyPair();
    const { c: ca } = await joinRaw(relay.wsUrl, a, room1);
    const { c: cx, welcome: wx } = await joinRaw(relay.wsUrl, x, room2);
    expect(wx.peers.map((p: Json) => p.node_id)).not.toContain(a.nodeId);
    const { c: cb } = await joinRaw(relay.wsUrl, b, room1);
    await ca.take('peer_joined', (m) => m.node_id === b.nodeId);

    // signal inside the room works and carries the authenticated sender
    ca.send({ t: 'signal', to: b.nodeId, data: { type: 'offer', sdp: 'v=0 …' } });
    const sig = await cb.take('signal');
    expect(sig).toEqual({ t: 'signal', from: a.nodeId, data: { type: 'offer', sdp: 'v=0 …' } });

    // across rooms: refused
    ca.send({ t: 'signal', to: x.nodeId, data: { hi: 1 } });
    const e1 = await ca.take('error', (m) => m.code === 'forward_target_offline');
    expect(e1.to).toBe(x.nodeId);
    ca.sendBinary(encodeForwardFrame(x.nodeId, new Uint8Array([1, 2, 3])));
    const e2 = await ca.take('error', (m) => m.code === 'forward_target_offline' && m !== e1);
    expect(e2.to).toBe(x.nodeId);

    // forward inside the room: address rewritten to the sender
    ca.sendBinary(encodeForwardFrame(b.nodeId, new Uint8Array([9, 8, 7])));
    await cb.until(() => cb.bins.length === 1, 'forward');
    const f = decodeForwardFrame(new Uint8Array(cb.bins[0]!));
    expect(f.addr).toBe(a.nodeId);
    expect([...f.payload]).toEqual([9, 8, 7]);

    // nothing leaked into room2
    expect(cx.texts.filter((m) => m.t !== 'challenge' && m.t !== 'welcome')).toEqual([]);
    expect(cx.bins.length).toBe(0);
    for (const c of [ca, cb, cx]) c.close();
  });

  it('forwarded frames arrive in order and byte-identical under a slow receiver; sender paused, nothing lost', async () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    const { c: ca } = await joinRaw(relay.wsUrl, a, room1);
    const { c: cb } = await joinRaw(relay.wsUrl, b, room1);
    const pausesBefore = relay.metrics.get('hearthnet_relay_backpressure_pauses_total');
    cb.ws.pause(); // the receiver stops reading
    const N = 480;
    const SIZE = 64 * 1024;
    const frameFor = (i: number) => {
      const p = new Uint8Array(SIZE);
      let x = (i * 2654435761) >>> 0;
      for (let j = 0; j < SIZE; j++) {
        x = (x * 1103515245 + 12345) >>> 0;
        p[j] = x >>> 24;
      }
      new DataView(p.buffer).setUint32(0, i);
      return p;
    };
    for (let i = 0; i < N; i++) ca.sendBinary(encodeForwardFrame(b.nodeId, frameFor(i)));
    // The relay must pause the sender once the receiver's queue passes 4 MiB.
    await eventually(
      () => relay.metrics.get('hearthnet_relay_backpressure_pauses_total') > pausesBefore,
      'backpressure pause',
      30_000,
    );
    cb.ws.resume();
    await cb.until(() => cb.bins.length >= N, `${N} frames`, 60_000);
    expect(cb.bins.length).toBe(N);
    for (let i = 0; i < N; i++) {
      const f = decodeForwardFrame(new Uint8Array(cb.bins[i]!));
      expect(f.addr).toBe(a.nodeId);
      expect(Buffer.compare(Buffer.from(f.payload), Buffer.from(frameFor(i)))).toBe(0);
    }
    // per-pair buffering stayed bounded (acceptance: ≤ 8 MiB)
    expect(relay.metrics.get('hearthnet_relay_forward_pending_bytes_max')).toBeLessThanOrEqual(
      8 * 1024 * 1024,
    );
    expect(relay.metrics.get('hearthnet_relay_forward_pending_bytes_max')).toBeGreaterThan(4 * 1024 * 1024);
    ca.close();
    cb.close();
  }, 120_000);

  it('never logs payloads or signal content', () => {
    const text = JSON.stringify(logs);
    expect(text).not.toContain('v=0');
    expect(text).not.toContain('sdp');
    expect(text).toContain('joined');
  });
});

describe('relay: hostile clients', () => {
  let relay: Relay;
  const room = generateKeyPair().nodeId;
  let good: { a: KeyPair; b: KeyPair; ca: RawClient; cb: RawClient };

  const goodPairWorks = async (tag: number) => {
    const { a, b, ca, cb } = good;
    ca.send({ t: 'signal', to: b.nodeId, data: { tag } });
    const s = await cb.take('signal', (m) => m.data?.tag === tag);
    expect(s.from).toBe(a.nodeId);
    const before = ca.bins.length;
    cb.sendBinary(encodeForwardFrame(a.nodeId, new Uint8Array([tag & 255, 1, 2])));
    await ca.until(() => ca.bins.length > before, 'forward to good peer');
    expect([...decodeForwardFrame(new Uint8Array(ca.bins[before]!)).payload]).toEqual([tag & 255, 1, 2]);
    expect(ca.closeInfo).toBeNull();
    expect(cb.closeInfo).toBeNull();
  };

  beforeAll(async () => {
    relay = await createRelay({ ...quiet, maxRoomPeers: 6 });
    const a = generateKeyPair();
    const b = generateKeyPair();
    const ca = (await joinRaw(relay.wsUrl, a, room)).c;
    const cb = (await joinRaw(relay.wsUrl, b, room)).c;
    good = { a, b, ca, cb };
  });
  afterAll(async () => {
    good.ca.close();
    good.cb.close();
    await relay.close();
  });

  it('oversized text → bad_request (kept); oversized frame above the hard cap → closed 1009', async () => {
    const h = generateKeyPair();
    const { c } = await joinRaw(relay.wsUrl, h, room);
    c.send({ t: 'signal', to: good.a.nodeId, data: 'x'.repeat(70 * 1024) });
    const e = await c.take('error');
    expect(e.code).toBe('bad_request');
    expect(e.message).toMatch(/above/);
    c.sendBinary(new Uint8Array(130 * 1024)); // above the 128 KiB forward cap
    expect((await c.take('error', (m) => m !== e)).code).toBe('bad_request');
    c.send('y'.repeat(300 * 1024)); // above the WebSocket maxPayload
    expect((await c.closed()).code).toBe(1009);
    await goodPairWorks(1);
  });

  it('malformed JSON and unknown types → bad_request; repeated violations → closed', async () => {
    const h = generateKeyPair();
    const { c } = await joinRaw(relay.wsUrl, h, room);
    c.send('{not json');
    expect((await c.take('error')).message).toMatch(/not JSON/);
    c.send({ t: 'launch_missiles' });
    expect((await c.take('error', (m) => /unknown message type/.test(m.message))).code).toBe('bad_request');
    c.send([1, 2, 3]);
    c.send({ t: 'signal', to: 'nobody', data: 1 });
    c.sendBinary(new Uint8Array([7, 7, 7]));
    for (let i = 0; i < 10; i++) c.send('garbage');
    const ci = await c.closed();
    expect(ci.code).toBe(RELAY_CLOSE_POLICY);
    await goodPairWorks(2);
  });

  it('flooding signals → rate_limited with retry_after_ms, then closed; good pair unaffected', async () => {
    const h = generateKeyPair();
    const { c } = await joinRaw(relay.wsUrl, h, room);
    for (let i = 0; i < 300; i++) c.send({ t: 'signal', to: good.b.nodeId, data: { flood: i } });
    const e = await c.take('error', (m) => m.code === 'rate_limited');
    expect(e.retry_after_ms).toBeGreaterThan(0);
    expect((await c.closed()).code).toBe(RELAY_CLOSE_POLICY);
    const floodSeen = good.cb.texts.filter((m) => m.t === 'signal' && m.data?.flood !== undefined).length;
    expect(floodSeen).toBeLessThanOrEqual(100); // bucket of 50 (+ refill while the flood is read)
    await goodPairWorks(3);
  });

  it('unauthenticated misuse: garbage before hello, binary before hello', async () => {
    const c1 = new RawClient(relay.wsUrl);
    await c1.take('challenge');
    c1.send('{"t":"signal"}');
    expect((await c1.take('error')).code).toBe('bad_request');
    await c1.closed();

    const c2 = new RawClient(relay.wsUrl);
    await c2.take('challenge');
    c2.sendBinary(encodeForwardFrame(good.a.nodeId, new Uint8Array([1])));
    expect((await c2.take('error')).code).toBe('bad_request');
    await c2.closed();
    await goodPairWorks(4);
  });

  it('deeply nested JSON does not take the relay down', async () => {
    const h = generateKeyPair();
    const { c } = await joinRaw(relay.wsUrl, h, room);
    const depth = 30_000;
    c.send(`{"t":"signal","to":"${good.b.nodeId}","data":${'['.repeat(depth)}${']'.repeat(depth)}}`);
    const u = new RawClient(relay.wsUrl);
    const ch = await u.take('challenge');
    u.send(`{"t":"hello","v":1,"x":${'['.repeat(depth)}${']'.repeat(depth)},"nonce":"${ch.nonce}"}`);
    expect((await u.take('error')).code).toBe('bad_request');
    await u.closed();
    c.close();
    await goodPairWorks(9);
  });

  it('malformed forward frames and forward to self → bad_request', async () => {
    const h = generateKeyPair();
    const { c } = await joinRaw(relay.wsUrl, h, room);
    const bad = encodeForwardFrame(good.a.nodeId, new Uint8Array([1]));
    bad[0] = 2;
    c.sendBinary(bad);
    expect((await c.take('error')).message).toMatch(/malformed/);
    c.sendBinary(encodeForwardFrame(h.nodeId, new Uint8Array([1])));
    expect((await c.take('error', (m) => /oneself/.test(m.message))).code).toBe('bad_request');
    c.close();
    await goodPairWorks(5);
  });

  it('a second connection with the same NodeID replaces the first (4001); peers see left+joined', async () => {
    const r = generateKeyPair();
    const { c: r1 } = await joinRaw(relay.wsUrl, r, room);
    await good.ca.take('peer_joined', (m) => m.node_id === r.nodeId);
    const { c: r2 } = await joinRaw(relay.wsUrl, r, room);
    expect((await r1.closed()).code).toBe(RELAY_CLOSE_REPLACED);
    await good.ca.take('peer_left', (m) => m.node_id === r.nodeId);
    await good.ca.take('peer_joined', (m) => m.node_id === r.nodeId);
    good.ca.send({ t: 'signal', to: r.nodeId, data: { to: 'r2' } });
    expect((await r2.take('signal')).data).toEqual({ to: 'r2' });
    r2.close();
    await good.ca.take('peer_left', (m) => m.node_id === r.nodeId);
    await goodPairWorks(6);
  });

  it('room full → capacity_exceeded', async () => {
    const extra: RawClient[] = [];
    // room holds a, b + 4 more
    for (let i = 0; i < 4; i++) extra.push((await joinRaw(relay.wsUrl, generateKeyPair(), room)).c);
    const c = new RawClient(relay.wsUrl);
    const ch = await c.take('challenge');
    c.send(buildRelayHello(generateKeyPair(), room, ch.nonce, Date.now()));
    expect((await c.take('error')).code).toBe('capacity_exceeded');
    await c.closed();
    for (const e of extra) e.close();
    await goodPairWorks(7);
  });

  it('the relay is still healthy after all of it', async () => {
    const res = await fetch(relay.url + 'healthz');
    expect(res.status).toBe(200);
    const h = (await res.json()) as Json;
    expect(h.ok).toBe(true);
    const prom = parseProm(await (await fetch(relay.url + 'metrics')).text());
    expect(prom.get('hearthnet_relay_rejects_total{reason="malformed_json"}')).toBeGreaterThanOrEqual(1);
    expect(prom.get('hearthnet_relay_rejects_total{reason="unknown_type"}')).toBeGreaterThanOrEqual(1);
    expect(prom.get('hearthnet_relay_rejects_total{reason="message_rate"}')).toBeGreaterThanOrEqual(1);
    expect(prom.get('hearthnet_relay_rejects_total{reason="oversized"}')).toBeGreaterThanOrEqual(1);
    expect(prom.get('hearthnet_relay_rejects_total{reason="oversized_frame"}')).toBeGreaterThanOrEqual(1);
    expect(prom.get('hearthnet_relay_rejects_total{reason="replaced"}')).toBeGreaterThanOrEqual(1);
    expect(prom.get('hearthnet_relay_errors_total{code="capacity_exceeded"}')).toBeGreaterThanOrEqual(1);
    await goodPairWorks(8);
  });
});

/**
 * A relay with a per-pair budget of 5 frames a second (capped for `graceMs` means disconnected) whose clock runs at
 * `speed` × real time, and two raw clients a → b joined to one room.
 */
async function budgetPair(graceMs: number, speed: number) {
  const t0 = Date.now();
  const relay = await createRelay({
    ...quiet,
    pairFramesPerSecond: 5,
    overBudgetGraceMs: graceMs,
    now: () => t0 + (Date.now() - t0) * speed,
  });
  try {
    const room = generateKeyPair().nodeId;
    const b = generateKeyPair();
    const { c: ca } = await joinRaw(relay.wsUrl, generateKeyPair(), room);
    const { c: cb } = await joinRaw(relay.wsUrl, b, room);
    return { relay, b, ca, cb };
  } catch (e) {
    await relay.close();
    throw e;
  }
}

describe('relay: rate limits on joins and connections', () => {
  it('joins per hour per node → rate_limited with retry_after_ms', async () => {
    const relay = await createRelay({ ...quiet, joinsPerHour: 2 });
    try {
      const kp = generateKeyPair();
      const room = generateKeyPair().nodeId;
      for (let i = 0; i < 2; i++) {
        const { c } = await joinRaw(relay.wsUrl, kp, room);
        c.close();
        await c.closed();
      }
      const c = new RawClient(relay.wsUrl);
      const ch = await c.take('challenge');
      c.send(buildRelayHello(kp, room, ch.nonce, Date.now()));
      const e = await c.take('error');
      expect(e.code).toBe('rate_limited');
      expect(e.retry_after_ms).toBeGreaterThan(0);
      await c.closed();
    } finally {
      await relay.close();
    }
  });

  it('connections per IP → capacity_exceeded', async () => {
    const relay = await createRelay({ ...quiet, connectionsPerIp: 2 });
    try {
      const c1 = new RawClient(relay.wsUrl);
      const c2 = new RawClient(relay.wsUrl);
      await c1.take('challenge');
      await c2.take('challenge');
      const c3 = new RawClient(relay.wsUrl);
      expect((await c3.take('error')).code).toBe('capacity_exceeded');
      await c3.closed();
      c1.close();
      c2.close();
    } finally {
      await relay.close();
    }
  });

  it('no hello in time → expired + close', async () => {
    const relay = await createRelay({ ...quiet, helloTimeoutMs: 200 });
    try {
      const c = new RawClient(relay.wsUrl);
      await c.take('challenge');
      expect((await c.take('error')).code).toBe('expired');
      expect((await c.closed()).code).toBe(RELAY_CLOSE_POLICY);
    } finally {
      await relay.close();
    }
  });

  it('a receiver that never drains is cut off; its sender is released and keeps working', async () => {
    const relay = await createRelay({ ...quiet, slowConsumerMs: 300 });
    try {
      const room = generateKeyPair().nodeId;
      const [a, b, c] = [generateKeyPair(), generateKeyPair(), generateKeyPair()];
      const { c: ca } = await joinRaw(relay.wsUrl, a, room);
      const { c: cb } = await joinRaw(relay.wsUrl, b, room);
      const { c: cc } = await joinRaw(relay.wsUrl, c, room);
      cb.ws.pause(); // b stops reading for good
      const frame = encodeForwardFrame(b.nodeId, new Uint8Array(64 * 1024));
      for (let i = 0; i < 480; i++) ca.sendBinary(frame);
      await ca.take('peer_left', (m) => m.node_id === b.nodeId, 60_000);
      expect(relay.metrics.get('hearthnet_relay_rejects_total', { reason: 'slow_consumer' })).toBe(1);
      // a's socket is read again: its signal to c goes through
      ca.send({ t: 'signal', to: c.nodeId, data: { after: true } });
      expect((await cc.take('signal', undefined, 60_000)).data).toEqual({ after: true });
      expect(ca.closeInfo).toBeNull();
      ca.close();
      cc.close();
      cb.ws.terminate();
    } finally {
      await relay.close();
    }
  }, 120_000);

  it.each([
    ['', 1],
    // the relay's clock at half speed: every window-end timer fires before the relay's clock says the window is over
    // (as a timer can by a ms, libuv's monotonic clock against Date.now); the queue must still wait for the window
    [' (its window timers firing early)', 0.5],
  ])(
    'a pair that stays at its forwarding budget is paced, then sent rate_limited and disconnected%s',
    async (_, speed) => {
      const { relay, b, ca, cb } = await budgetPair(2000, speed);
      try {
        // one burst the relay reads in one chunk: the frames past the budget were read before reading paused, and must
        // be paced too (they wait for the next window), not passed on at once
        ca.sendBinaryBurst(
          Array.from({ length: 200 }, (_, i) => encodeForwardFrame(b.nodeId, new Uint8Array([i]))),
        );
        const e = await ca.take('error', (m) => m.code === 'rate_limited', 30_000);
        expect(e.message).toMatch(/budget/);
        await ca.closed(30_000);
        expect(relay.metrics.get('hearthnet_relay_budget_pauses_total')).toBeGreaterThanOrEqual(1);
        // paced: the budget's 5 frames a window, in order, for the windows before the disconnect — not the burst
        await cb.until(() => cb.bins.length >= 5, 'paced frames');
        await new Promise((r) => setTimeout(r, 300));
        const got = cb.bins.map((x) => decodeForwardFrame(new Uint8Array(x)).payload[0]);
        expect(got).toEqual(got.map((_, i) => i));
        expect(got.length).toBeLessThanOrEqual(15);
        cb.close();
      } finally {
        await relay.close();
      }
    },
    90_000,
  );

  it('a sender kept at its budget is disconnected even when the relay’s timers run late (loaded machine)', async () => {
    // The relay's clock runs 3× real time: every resume timer fires "late" in the relay's own time,
    // as it does on a loaded machine; the run of capped windows must not reset because of that.
    const { relay, b, ca, cb } = await budgetPair(6000, 3);
    try {
      // a sender that keeps sending well over its budget, in small bursts, for as long as it is let
      let n = 0;
      const tick = setInterval(() => {
        if (ca.closeInfo) return;
        for (let k = 0; k < 3; k++) ca.sendBinary(encodeForwardFrame(b.nodeId, new Uint8Array([n++ & 255])));
      }, 50);
      const e = await ca.take('error', (m) => m.code === 'rate_limited', 20_000);
      expect(e.message).toMatch(/budget/);
      await ca.closed(20_000);
      clearInterval(tick);
      expect(relay.metrics.get('hearthnet_relay_budget_pauses_total')).toBeGreaterThanOrEqual(2);
      cb.close();
    } finally {
      await relay.close();
    }
  }, 60_000);
});

describe('relay: HTTP surface', () => {
  let relay: Relay;
  let noApp: Relay;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'hn-relay-'));
    const dist = path.join(dir, 'dist');
    mkdirSync(path.join(dist, 'assets'), { recursive: true });
    writeFileSync(path.join(dist, 'index.html'), '<!doctype html><title>app</title>');
    writeFileSync(path.join(dist, 'sw.js'), 'self.addEventListener("install",()=>{})');
    writeFileSync(path.join(dist, 'manifest.webmanifest'), '{"name":"HearthNet"}');
    writeFileSync(path.join(dist, 'assets', 'index-AbCd1234.js'), 'console.log(1)');
    writeFileSync(path.join(dist, 'assets', 'ort-wasm-simd-threaded.wasm'), Buffer.from([0, 97, 115, 109]));
    writeFileSync(path.join(dir, 'secret.txt'), 'do not serve');
    const models = path.join(dir, 'models');
    mkdirSync(models);
    writeFileSync(path.join(models, 'tiny.onnx'), Buffer.from('0123456789'));
    relay = await createRelay({
      ...quiet,
      staticDir: dist,
      modelsDir: models,
      iceServers: [{ urls: 'stun:stun.example.org:3478' }],
    });
    noApp = await createRelay({ ...quiet, staticDir: path.join(dir, 'nope') });
  });
  afterAll(async () => {
    await relay.close();
    await noApp.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const get = (p: string, init?: RequestInit) => fetch(relay.url + p.replace(/^\//, ''), init);
  const isolation = (r: Response) => {
    expect(r.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    expect(r.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
    expect(r.headers.get('cross-origin-resource-policy')).toBe('same-origin');
  };

  it('serves the app with isolation headers, MIME types and cache rules', async () => {
    const idx = await get('/');
    expect(idx.status).toBe(200);
    isolation(idx);
    expect(idx.headers.get('content-type')).toMatch(/^text\/html/);
    expect(idx.headers.get('cache-control')).toBe('no-cache');
    const sw = await get('/sw.js');
    expect(sw.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(sw.headers.get('cache-control')).toBe('no-cache');
    const wasm = await get('/assets/ort-wasm-simd-threaded.wasm');
    expect(wasm.headers.get('content-type')).toBe('application/wasm');
    isolation(wasm);
    const js = await get('/assets/index-AbCd1234.js');
    expect(js.headers.get('cache-control')).toMatch(/immutable/);
    const mf = await get('/manifest.webmanifest');
    expect(mf.headers.get('content-type')).toBe('application/manifest+json');
    const etag = idx.headers.get('etag')!;
    expect((await get('/', { headers: { 'if-none-match': etag } })).status).toBe(304);
  });

  it('SPA fallback for routes, 404 for missing assets, no path traversal, GET/HEAD only', async () => {
    const route = await get('/peers/settings');
    expect(route.status).toBe(200);
    expect(await route.text()).toContain('<title>app</title>');
    expect((await get('/assets/missing.js')).status).toBe(404);
    expect((await get('/..%2fsecret.txt')).status).toBe(404);
    expect((await get('/%2e%2e/secret.txt')).status).toBe(404);
    expect((await get('/models/..%2fsecret.txt')).status).toBe(404);
    const post = await get('/', { method: 'POST' });
    expect(post.status).toBe(405);
    isolation(post);
    const head = await get('/', { method: 'HEAD' });
    expect(head.status).toBe(200);
  });

  it('serves /models/ read-only with octet-stream and byte ranges', async () => {
    const m = await get('/models/tiny.onnx');
    expect(m.status).toBe(200);
    expect(m.headers.get('content-type')).toBe('application/octet-stream');
    isolation(m);
    expect(await m.text()).toBe('0123456789');
    const r = await get('/models/tiny.onnx', { headers: { range: 'bytes=2-5' } });
    expect(r.status).toBe(206);
    expect(r.headers.get('content-range')).toBe('bytes 2-5/10');
    expect(await r.text()).toBe('2345');
    expect((await get('/models/none.onnx')).status).toBe(404);
    expect((await get('/models/')).status).toBe(404);
  });

  it('/healthz JSON, /metrics Prometheus text, /config.json with ICE servers', async () => {
    const h = await get('/healthz');
    isolation(h);
    const hj = (await h.json()) as Json;
    expect(hj).toMatchObject({ ok: true, rooms: 0, peers: 0 });
    expect(typeof hj.version).toBe('string');
    expect(typeof hj.uptime_seconds).toBe('number');
    expect(Number.isFinite(Date.parse(hj.server_time))).toBe(true);
    const mt = await get('/metrics');
    expect(mt.headers.get('content-type')).toMatch(/^text\/plain; version=0.0.4/);
    const prom = parseProm(await mt.text());
    for (const k of [
      'hearthnet_relay_connections',
      'hearthnet_relay_peers',
      'hearthnet_relay_rooms',
      'hearthnet_relay_forward_bytes_total',
      'hearthnet_relay_uptime_seconds',
    ]) {
      expect([...prom.keys()].some((s) => s.startsWith(k))).toBe(true);
    }
    const cfg = (await (await get('/config.json')).json()) as Json;
    expect(cfg.ice_servers).toEqual([{ urls: 'stun:stun.example.org:3478' }]);
    expect(cfg.relay.ws_path).toBe('/ws');
    expect((await get('/ws')).status).toBe(426);
  });

  it('without a built app it serves a "build the app first" page', async () => {
    const r = await fetch(noApp.url);
    expect(r.status).toBe(200);
    expect(await r.text()).toMatch(/npm run build/);
    isolation(r);
  });
});

describe('relay: configuration', () => {
  it('flags win over env, env over defaults', () => {
    const c = parseRelayConfig(
      ['--port', '9000', '--max-room-peers=8'],
      { PORT: '7000', HOST: '127.0.0.1' },
      '/srv',
    );
    expect(c.port).toBe(9000);
    expect(c.host).toBe('127.0.0.1');
    expect(c.maxRoomPeers).toBe(8);
    expect(c.joinsPerHour).toBe(60);
    expect(c.staticDir).toBe('/srv/app/dist');
    expect(c.forward).toBe(true);
    const d = parseRelayConfig([], {});
    expect(d.port).toBe(7080);
    expect(d.host).toBe('0.0.0.0');
    expect(() => parseRelayConfig(['--port', 'x'], {})).toThrow(/integer/);
    expect(() => parseRelayConfig(['--nope', '1'], {})).toThrow(/unknown flag/);
  });

  it('ICE servers from JSON or comma-separated URLs', () => {
    expect(parseIceServers('stun:a.example:3478,turn:b.example:3478', 'u', 'p')).toEqual([
      { urls: 'stun:a.example:3478' },
      { urls: 'turn:b.example:3478', username: 'u', credential: 'p' },
    ]);
    expect(parseIceServers('[{"urls":["turns:c.example:5349"],"username":"x","credential":"y"}]')).toEqual([
      { urls: ['turns:c.example:5349'], username: 'x', credential: 'y' },
    ]);
    expect(() => parseIceServers('http://nope')).toThrow();
    expect(() => parseIceServers('[{"urls":5}]')).toThrow();
    expect(parseRelayConfig([], { ICE_SERVERS: 'stun:x.example:3478' }).iceServers).toEqual([
      { urls: 'stun:x.example:3478' },
    ]);
  });
});
