/**
 * Issue #18 against the relay, shaped like the attacks, scaled to run in seconds on a loaded
 * machine. All traffic on loopback (the slowloris client binds 127.0.0.2 as its source so that
 * the per-address limits separate it from the honest checks). Every loop is bounded; every wait
 * is "eventually, within a generous bound"; bounds are asserted on the relay's own accounting
 * of every byte it holds for peers (`stats().queued_bytes`).
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import type { NodeID } from '../../engine/core/types.js';
import { generateKeyPair, signObject } from '../../engine/identity/identity.js';
import {
  RelayClient,
  buildRelayHello,
  encodeForwardFrame,
  issueRelayPass,
} from '../../engine/net/relay-client.js';
import { RELAY_CLOSE_POLICY, RELAY_FORWARD_HEADER_BYTES } from '../../engine/net/relay-wire.js';
import { IGNORED_WAITS_FREE } from '../../relay/forward.js';
import { createRelay, type Relay, type RelayOptions } from '../../relay/server.js';
import { RawClient, eventually, joinRaw, type Json } from './relay-helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) {
    try {
      await f();
    } catch {
      // best effort
    }
  }
});
async function relayWith(o: RelayOptions): Promise<Relay> {
  const r = await createRelay({ log: () => undefined, ...o });
  cleanups.push(() => r.close());
  return r;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MiB = 1024 * 1024;

/** Max of a sampled value while `run` is in progress. */
async function sampleMax(sample: () => number, run: Promise<unknown>): Promise<number> {
  let max = sample();
  let done = false;
  void run.finally(() => (done = true));
  while (!done) {
    max = Math.max(max, sample());
    await sleep(20);
  }
  return Math.max(max, sample());
}

/** Two raw clients joined to `room`, closed after the test. */
async function rawPair(relay: Relay, room: NodeID) {
  const [a, b] = [generateKeyPair(), generateKeyPair()];
  const { c: ca } = await joinRaw(relay.wsUrl, a, room);
  const { c: cb } = await joinRaw(relay.wsUrl, b, room);
  cleanups.push(
    () => ca.close(),
    () => cb.close(),
  );
  return { a, b, ca, cb };
}

/** An honest pair exchanging signals: returns each round trip in ms. */
async function signalRoundTrips(relay: Relay, room: NodeID, n: number): Promise<number[]> {
  const { b, ca, cb } = await rawPair(relay, room);
  const rtts: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    ca.send({ t: 'signal', to: b.nodeId, data: { i } });
    await cb.take('signal', (m) => m.data?.i === i, 20_000);
    rtts.push(performance.now() - t0);
    await sleep(50);
  }
  return rtts;
}

/**
 * a and c are engine RelayClients (c echoes what a sends it), b a raw client the test drives as a reader;
 * `roundTrips(n)`: n round trips a → c → a, one every 50 ms, each in ms.
 */
async function senderAndTwoReceivers(relay: Relay) {
  const room = generateKeyPair().nodeId;
  const [a, b, c] = [generateKeyPair(), generateKeyPair(), generateKeyPair()];
  const ca = new RelayClient({ url: relay.wsUrl, keyPair: a, room, WebSocket, reconnect: false });
  const cc = new RelayClient({ url: relay.wsUrl, keyPair: c, room, WebSocket, reconnect: false });
  cleanups.push(
    () => ca.close(),
    () => cc.close(),
  );
  ca.start();
  cc.start();
  await ca.waitReady(10_000);
  await cc.waitReady(10_000);
  const { c: rb } = await joinRaw(relay.wsUrl, b, room);
  cleanups.push(() => rb.ws.terminate());
  await eventually(() => ca.hasPeer(b.nodeId) && ca.hasPeer(c.nodeId), 'roster');
  cc.onForward(a.nodeId, (p) => void cc.forward(a.nodeId, p));
  const echoes: number[] = [];
  ca.onForward(c.nodeId, (p) => void echoes.push(new DataView(p.buffer, p.byteOffset).getFloat64(0)));
  const roundTrips = async (n: number) => {
    const rtts: number[] = [];
    for (let i = 0; i < n; i++) {
      const p = new Uint8Array(8);
      const t0 = performance.now();
      new DataView(p.buffer).setFloat64(0, t0);
      await ca.forward(c.nodeId, p);
      await eventually(() => echoes.includes(t0), `echo ${i}`, 20_000);
      rtts.push(performance.now() - t0);
      await sleep(50);
    }
    return rtts;
  };
  return { ca, b, rb, roundTrips };
}

describe('relay under attack (issue #18)', () => {
  it('1. signal flood at a peer that never reads: bounded by its byte queue, senders told rate_limited then closed for ignoring it, sink cut, honest pair unaffected', async () => {
    const relay = await relayWith({
      forwardHighWaterBytes: 1 * MiB,
      forwardLowWaterBytes: 256 * 1024,
      slowConsumerMs: 3000,
      messagesPerSecond: 100,
    });
    const room = generateKeyPair().nodeId;
    const sinkKp = generateKeyPair();
    const { c: sink } = await joinRaw(relay.wsUrl, sinkKp, room);
    sink.ws.pause(); // never reads again
    const senders = await Promise.all(
      Array.from({ length: 10 }, async () => (await joinRaw(relay.wsUrl, generateKeyPair(), room)).c),
    );
    // an honest member of the room watches for the sink's departure
    const { c: observer } = await joinRaw(relay.wsUrl, generateKeyPair(), room);
    cleanups.push(
      () => senders.forEach((s) => s.close()),
      () => sink.ws.terminate(),
      () => observer.close(),
    );
    const blob = 'x'.repeat(60 * 1024);
    let sinkGone = false;
    void observer
      .take('peer_left', (m) => m.node_id === sinkKp.nodeId, 30_000)
      .then(
        () => (sinkGone = true),
        () => undefined,
      );
    // 10 senders × 45 signals/s × 60 KiB for up to 4 s (≈ 100 MiB offered), stopping when cut off
    const flood = (async () => {
      for (let round = 0; round < 180; round++) {
        for (const s of senders)
          if (s.closeInfo === null) s.send({ t: 'signal', to: sinkKp.nodeId, data: blob });
        await sleep(22);
        if (sinkGone) break;
      }
    })();
    const honest = signalRoundTrips(relay, room, 20);
    const peak = await sampleMax(() => relay.stats().queued_bytes, Promise.all([flood, honest]));
    // ceiling: the high-water mark plus one message per sender
    expect(peak).toBeLessThanOrEqual(1 * MiB + 10 * 64 * 1024);
    const limited = senders
      .flatMap((s) => s.texts)
      .filter((m) => m.t === 'error' && m.code === 'rate_limited');
    expect(limited.length).toBeGreaterThan(0);
    expect(limited.every((m) => m.retry_after_ms > 0)).toBe(true);
    // senders that kept signalling inside the retry window they were given are closed (policy),
    // each after the grace of IGNORED_WAITS_FREE ignored refusals plus the strike budget
    for (const s of senders) {
      const refused = s.texts.filter((m) => m.t === 'error' && m.code === 'rate_limited').length;
      if (refused > IGNORED_WAITS_FREE + 10) expect(s.closeInfo?.code).toBe(RELAY_CLOSE_POLICY);
    }
    expect(senders.filter((s) => s.closeInfo?.code === RELAY_CLOSE_POLICY).length).toBeGreaterThan(0);
    expect(relay.metrics.get('hearthnet_relay_rejects_total', { reason: 'retry_ignored' })).toBeGreaterThan(
      0,
    );
    // the sink is cut off by the slow-consumer sweep, not by a ping timeout
    await eventually(() => sinkGone, 'sink cut off', 20_000);
    expect(relay.metrics.get('hearthnet_relay_rejects_total', { reason: 'slow_consumer' })).toBe(1);
    expect((await honest).length).toBe(20);
    await eventually(() => relay.stats().queued_bytes === 0, 'queues drained', 10_000);
  }, 60_000);

  it('3. a peer that stops reading does not freeze its sender: other destinations flow on, the sender is not kicked', async () => {
    const relay = await relayWith({ forwardHighWaterBytes: 2 * MiB, slowConsumerMs: 4000 });
    const { ca, b, rb, roundTrips } = await senderAndTwoReceivers(relay);
    rb.ws.pause(); // b stops reading
    const errors: string[] = [];
    ca.on('relay_error', (e) => errors.push(e.code));
    // bulk a → b: up to 64 MiB, stops when the relay cuts b off (forward rejects)
    const bulk = (async () => {
      const chunk = new Uint8Array(64 * 1024);
      for (let i = 0; i < 1024; i++) {
        try {
          await ca.forward(b.nodeId, chunk);
        } catch {
          return i;
        }
      }
      return 1024;
    })();
    // meanwhile a ↔ c round trips every 50 ms
    const rtts = await roundTrips(60);
    await bulk; // ends: b is cut off, then frames to it are answered forward_target_offline
    expect(relay.metrics.get('hearthnet_relay_rejects_total', { reason: 'slow_consumer' })).toBe(1);
    rtts.sort((x, y) => x - y);
    const p95 = rtts[Math.floor(rtts.length * 0.95)]!;
    // not a speed assertion: a frozen connection (the bug) stalls tens of seconds
    expect(p95).toBeLessThan(2000);
    expect(ca.state).toBe('ready');
    expect(errors).not.toContain('rate_limited');
    expect(relay.metrics.get('hearthnet_relay_backpressure_pauses_total')).toBeGreaterThanOrEqual(1);
    await eventually(() => relay.stats().queued_bytes === 0, 'held frames freed', 10_000);
  }, 90_000);

  /** a (a raw client: it ignores flow notices) writes 24 MiB at once to b, which reads one message every `everyMs`. */
  async function slowReader(o: RelayOptions, everyMs: number) {
    const relay = await relayWith({ forwardHighWaterBytes: 1 * MiB, forwardLowWaterBytes: 256 * 1024, ...o });
    const { b, ca, cb } = await rawPair(relay, generateKeyPair().nodeId);
    cb.ws.on('message', () => cb.ws.pause());
    const reader = setInterval(() => cb.ws.resume(), everyMs);
    cleanups.push(() => clearInterval(reader));
    const N = 384;
    for (let i = 0; i < N; i++) {
      const p = new Uint8Array(64 * 1024);
      new DataView(p.buffer).setUint32(0, i);
      ca.sendBinary(encodeForwardFrame(b.nodeId, p));
    }
    const got = cb.until(() => cb.bins.length >= N, `${N} frames`, 90_000);
    const maxQueued = await sampleMax(() => relay.stats().queued_bytes, got);
    clearInterval(reader);
    cb.bins.forEach((f, i) => expect(f.readUInt32BE(RELAY_FORWARD_HEADER_BYTES)).toBe(i));
    expect(relay.metrics.get('hearthnet_relay_rejects_total', { reason: 'slow_consumer' })).toBe(0);
    return { relay, ca, maxQueued };
  }

  it('3. a receiver that reads, only slower than its sender sends, pauses the sender: the backlog waits in the sender’s socket, not in the relay', async () => {
    // b reads one message every 20 ms (~3 MB/s): a pause lasts until it drains
    const { relay, ca, maxQueued } = await slowReader({ slowReaderPauseMs: 60_000 }, 20);
    expect(relay.metrics.get('hearthnet_relay_backpressure_pauses_total')).toBeGreaterThanOrEqual(1);
    expect(ca.has('flow', (m) => m.paused === true)).toBe(true);
    await ca.until(() => ca.has('flow', (m) => m.paused === false), 'flow resumed');
    // b's queue (1 MiB) and the frames of one read chunk; holding a's backlog here as well (up to
    // twice the mark) was the old rule
    expect(maxQueued).toBeLessThan(1.5 * MiB);
  }, 90_000);

  it('3. a sender paused for a slow reader reads on after slowReaderPauseMs: its frames for that reader are held, up to twice the mark', async () => {
    const { maxQueued } = await slowReader({ slowReaderPauseMs: 50 }, 20);
    expect(maxQueued).toBeGreaterThan(1.5 * MiB);
    expect(maxQueued).toBeLessThanOrEqual(3 * MiB + 256 * 1024);
  }, 90_000);

  it('3. a receiver that reads only a trickle holds up its sender’s other traffic no longer than slowReaderPauseMs at a time', async () => {
    const pauseMs = 400;
    const relay = await relayWith({
      forwardHighWaterBytes: 1 * MiB,
      forwardLowWaterBytes: 256 * 1024,
      slowConsumerMs: 60_000,
      slowReaderPauseMs: pauseMs,
    });
    const { ca, b, rb, roundTrips } = await senderAndTwoReceivers(relay);
    // b reads one message every 200 ms (~330 KB/s): it never drains to the low mark within a pause
    rb.ws.on('message', () => rb.ws.pause());
    const reader = setInterval(() => rb.ws.resume(), 200);
    cleanups.push(() => clearInterval(reader));
    let stop = false;
    const bulk = (async () => {
      const chunk = new Uint8Array(64 * 1024);
      while (!stop) await ca.forward(b.nodeId, chunk).catch(() => (stop = true));
    })();
    await eventually(() => relay.metrics.get('hearthnet_relay_backpressure_pauses_total') >= 1, 'a paused');
    const rtts = await roundTrips(40);
    stop = true;
    clearInterval(reader);
    rb.ws.terminate();
    await bulk;
    // draining 768 KiB at ~330 KB/s takes over 2 s: unbounded, a pause would hold a's other traffic until b is cut off
    expect(Math.max(...rtts)).toBeLessThan(pauseMs + 1000);
    expect(ca.state).toBe('ready');
  }, 90_000);

  it('a bulk sender yields the relay’s loop after turnReadBytes a turn: a small message never waits behind a whole 2 MiB read of its backlog', async () => {
    const turnReadBytes = 32 * 1024;
    const relay = await relayWith({
      turnReadBytes,
      forwardHighWaterBytes: 256 * MiB,
      forwardLowWaterBytes: 64 * MiB,
      pairBytesPerSecond: 1024 * MiB,
      connectionBytesPerSecond: 1024 * MiB,
    });
    const room = generateKeyPair().nodeId;
    const r = generateKeyPair();
    const { c: cr } = await joinRaw(relay.wsUrl, r, room);
    cleanups.push(() => cr.close());
    // the sender is another process, so it keeps writing while this one (the relay's) is busy
    const sender = spawn(
      process.execPath,
      [
        '-e',
        `const WebSocket = require('ws');
         const ws = new WebSocket(process.env.RELAY_URL, 'hearthnet-relay.v1');
         ws.on('message', (d, binary) => { if (!binary) process.send(JSON.parse(d.toString())); });
         process.on('message', (m) => {
           if (m.hello) ws.send(JSON.stringify(m.hello));
           if (m.frame) { const f = Buffer.from(m.frame, 'base64'); for (let i = 0; i < m.count; i++) ws.send(f); }
         });`,
      ],
      {
        cwd: process.cwd(),
        env: { ...process.env, RELAY_URL: relay.wsUrl },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      },
    );
    cleanups.push(() => sender.kill());
    const next = (t: string) =>
      new Promise<Json>((ok) => {
        const on = (m: Json) => {
          if (m.t !== t) return;
          sender.off('message', on);
          ok(m);
        };
        sender.on('message', on);
      });
    const s = generateKeyPair();
    const challenge = await next('challenge');
    const welcome = next('welcome');
    sender.send({ hello: buildRelayHello(s, room, challenge.nonce as string, Date.now()) });
    await welcome;

    const forwarded = () => relay.metrics.get('hearthnet_relay_forward_bytes_total');
    const frame = encodeForwardFrame(r.nodeId, new Uint8Array(16 * 1024));
    const total = 1024 * frame.length; // 16 MiB
    const perTurn: number[] = [];
    let last = forwarded();
    const measured = new Promise<void>((done) => {
      const deadline = performance.now() + 30_000;
      const turn = () => {
        const now = forwarded();
        perTurn.push(now - last);
        last = now;
        // this process stays busy 20 ms a turn (other rooms' traffic): the sender's frames pile up in the kernel
        for (const t0 = performance.now(); performance.now() - t0 < 20;);
        if (now >= total || performance.now() > deadline) done();
        else setImmediate(turn);
      };
      setImmediate(turn);
    });
    sender.send({ frame: Buffer.from(frame).toString('base64'), count: 1024 });
    await measured;
    expect(forwarded()).toBe(total);
    // a busy turn (past 4 shares; here the sender is the only one) handles at most that, the frame that crossed it
    // and the rest of libuv's 64 KiB read (without the share: up to 32 such reads, 2 MiB, from one socket in one turn)
    expect(Math.max(...perTurn)).toBeLessThanOrEqual(4 * turnReadBytes + frame.length + 64 * 1024);
  }, 60_000);

  it('6. slowloris: held and trickling sockets are closed within the timeout, extra sockets refused, /healthz answers throughout', async () => {
    const relay = await relayWith({ headersTimeoutMs: 1000, idleTimeoutMs: 1500, socketsPerIp: 40 });
    const socks: { s: net.Socket; closedAt: number | null }[] = [];
    const t0 = Date.now();
    for (let i = 0; i < 60; i++) {
      const s = net.connect({ host: '127.0.0.1', port: relay.port, localAddress: '127.0.0.2' });
      const rec = { s, closedAt: null as number | null };
      s.on('error', () => undefined);
      s.on('close', () => (rec.closedAt = Date.now()));
      s.resume(); // read, so the relay's close is seen
      socks.push(rec);
    }
    cleanups.push(() => socks.forEach((x) => x.s.destroy()));
    await Promise.all(
      socks.map((x) => new Promise((r) => (x.s.connecting ? x.s.once('connect', r).once('close', r) : r(0)))),
    );
    // half trickle a header byte every 300 ms (never finishing), half stay silent
    socks.forEach((x, i) => i % 2 === 0 && x.s.write('GET / HTTP/1.1\r\nHost: x\r\nX-Slow: '));
    const trickle = setInterval(
      () => socks.forEach((x, i) => i % 2 === 0 && !x.s.destroyed && x.s.write('a')),
      300,
    );
    cleanups.push(() => clearInterval(trickle));
    const health: number[] = [];
    while (Date.now() - t0 < 6000 && socks.some((x) => x.closedAt === null)) {
      const r = await fetch(relay.url + 'healthz', { signal: AbortSignal.timeout(5000) });
      health.push(r.status);
      await sleep(200);
    }
    clearInterval(trickle);
    expect(socks.every((x) => x.closedAt !== null)).toBe(true);
    // refused at once beyond 40 per address; the rest within header/idle timeout + check interval + slack
    expect(Math.max(...socks.map((x) => x.closedAt! - t0))).toBeLessThan(5000);
    expect(health.length).toBeGreaterThan(0);
    expect(health.every((s) => s === 200)).toBe(true);
    expect(
      relay.metrics.get('hearthnet_relay_rejects_total', { reason: 'ip_socket_limit' }),
    ).toBeGreaterThanOrEqual(20);
  }, 30_000);

  it('7. unjoined sockets cannot lock out a newcomer from the same address; fresh keys per address per minute are limited', async () => {
    const relay = await relayWith({ unjoinedPerIp: 4, freshKeysPerIpPerMinute: 5 });
    const room = generateKeyPair().nodeId;
    const held: RawClient[] = [];
    for (let i = 0; i < 12; i++) {
      const c = new RawClient(relay.wsUrl);
      held.push(c);
      await c.take('challenge');
    }
    cleanups.push(() => held.forEach((c) => c.close()));
    // an honest peer from the same address still joins (6 of 6)
    const honest = generateKeyPair();
    for (let i = 0; i < 6; i++) {
      const { c } = await joinRaw(relay.wsUrl, honest, room);
      c.close();
      await c.closed();
    }
    expect(
      relay.metrics.get('hearthnet_relay_rejects_total', { reason: 'unjoined_evicted' }),
    ).toBeGreaterThan(0);
    // fresh identities: 4 more pass (honest was the first), then rate_limited with retry_after_ms
    for (let i = 0; i < 4; i++) (await joinRaw(relay.wsUrl, generateKeyPair(), room)).c.close();
    const c = new RawClient(relay.wsUrl);
    const ch = await c.take('challenge');
    c.send(buildRelayHello(generateKeyPair(), room, ch.nonce, Date.now()));
    const e = await c.take('error');
    expect(e.code).toBe('rate_limited');
    expect(e.retry_after_ms).toBeGreaterThan(0);
    // a node that joined before is not fresh
    const again = await joinRaw(relay.wsUrl, honest, room);
    again.c.close();
  }, 30_000);

  it('7. roster leak: a stranger who knows an invite room id learns no member id and reaches no member; members with a pass see each other', async () => {
    const relay = await relayWith({ maxRoomPeers: 4 });
    const founder = generateKeyPair(); // the community key: its NodeID is the community id and the room
    const room = founder.nodeId;
    const [m1, m2, stranger] = [generateKeyPair(), generateKeyPair(), generateKeyPair()];
    const now = Date.now();
    const f = await joinRaw(
      relay.wsUrl,
      founder,
      room,
      'Founder',
      issueRelayPass(founder, founder.nodeId, now),
    );
    const a = await joinRaw(relay.wsUrl, m1, room, 'Member one', issueRelayPass(founder, m1.nodeId, now));
    cleanups.push(
      () => f.c.close(),
      () => a.c.close(),
    );
    expect(a.welcome.peers.map((p: Json) => p.node_id)).toEqual([founder.nodeId]);
    // squatters: the room's open side filled to capacity by throwaway keys locks no member out
    const squat = await Promise.all(
      Array.from({ length: 3 }, async () => (await joinRaw(relay.wsUrl, generateKeyPair(), room)).c),
    );
    const s = await joinRaw(relay.wsUrl, stranger, room, 'Stranger');
    cleanups.push(
      () => squat.forEach((c) => c.close()),
      () => s.c.close(),
    );
    // a member joining later while the strangers are there
    const b = await joinRaw(relay.wsUrl, m2, room, 'Member two', issueRelayPass(founder, m2.nodeId, now));
    cleanups.push(() => b.c.close());
    expect(b.welcome.peers.map((p: Json) => p.node_id).sort()).toEqual([founder.nodeId, m1.nodeId].sort());
    // the stranger cannot reach a member: signals and forward frames find nobody
    s.c.send({ t: 'signal', to: m1.nodeId, data: { sdp: 'x' } });
    const e1 = await s.c.take('error', (m) => m.to === m1.nodeId);
    expect(e1.code).toBe('forward_target_offline');
    s.c.sendBinary(encodeForwardFrame(founder.nodeId, new Uint8Array([1, 2, 3])));
    const e2 = await s.c.take('error', (m) => m.to === founder.nodeId);
    expect(e2.code).toBe('forward_target_offline');
    // members still reach each other
    a.c.send({ t: 'signal', to: m2.nodeId, data: { hi: 1 } });
    expect((await b.c.take('signal')).from).toBe(m1.nodeId);
    await sleep(200);
    // nothing the stranger received names a member (the founder's id is the room id it knew
    // already; the errors only echo the ids of its own attempts), and nothing a member received
    // names a stranger
    const strangerText = JSON.stringify(s.c.texts.filter((m) => m.t !== 'error'));
    for (const id of [m1.nodeId, m2.nodeId, 'Member', 'Founder']) expect(strangerText).not.toContain(id);
    expect(s.c.texts.some((m) => m.t === 'peer_joined' || m.t === 'peer_left')).toBe(false);
    expect(s.welcome.peers.map((p: Json) => p.node_id)).not.toContain(founder.nodeId);
    const strangers = [stranger.nodeId, ...s.welcome.peers.map((p: Json) => p.node_id)];
    expect(strangers.length).toBe(4);
    for (const c of [f.c, a.c, b.c]) {
      expect(c.texts.some((m) => m.t === 'signal' && m.from !== m1.nodeId)).toBe(false);
      for (const id of strangers) expect(JSON.stringify(c.texts)).not.toContain(id);
    }
    expect(relay.stats().peers).toBe(7);
  });

  it('7. a forged, expired or borrowed room pass is refused with the seed code and the connection closed', async () => {
    const relay = await relayWith({});
    const founder = generateKeyPair();
    const room = founder.nodeId;
    const member = generateKeyPair();
    const stranger = generateKeyPair();
    const now = Date.now();
    const cases: [string, unknown][] = [
      // signed by the stranger's own key instead of the community key …
      [
        'invalid_signature',
        signObject(stranger, { ...issueRelayPass(founder, stranger.nodeId, now), signature: '' }),
      ],
      ['invalid_signature', { ...issueRelayPass(founder, member.nodeId, now), node_id: stranger.nodeId }],
      ['bad_request', issueRelayPass(founder, member.nodeId, now)], // … a member's pass, borrowed
      ['expired', issueRelayPass(founder, stranger.nodeId, now - 3_600_000, 60)],
      ['bad_request', { ...issueRelayPass(founder, stranger.nodeId, now), extra: 'x'.repeat(100) }],
      ['bad_request', 'pass'],
    ];
    for (const [code, pass] of cases) {
      const c = new RawClient(relay.wsUrl);
      const ch = await c.take('challenge');
      const h = buildRelayHello(stranger, room, ch.nonce, Date.now()) as unknown as Json;
      delete h.signature;
      c.send(signObject(stranger, { ...h, pass }));
      const e = await c.take('error');
      expect(e.code).toBe(code);
      await c.closed();
    }
    expect(relay.stats().peers).toBe(0);
  });

  it('lower: a hello padded with 20 KB of unknown fields, or a display name with bidi overrides, is refused', async () => {
    const relay = await relayWith({});
    const room = generateKeyPair().nodeId;
    const kp = generateKeyPair();
    const pad = new RawClient(relay.wsUrl);
    const ch = await pad.take('challenge');
    const h = buildRelayHello(kp, room, ch.nonce, Date.now()) as unknown as Json;
    delete h.signature;
    pad.send(signObject(kp, { ...h, junk: 'j'.repeat(20_000) }));
    expect((await pad.take('error')).code).toBe('bad_request');
    for (const name of ['evil\u202Egnp.exe', 'a\u2066b', 'zero\u200Bwidth']) {
      const c = new RawClient(relay.wsUrl);
      const chx = await c.take('challenge');
      c.send(buildRelayHello(kp, room, chx.nonce, Date.now(), name));
      expect((await c.take('error')).code).toBe('bad_request');
    }
    const ok = await joinRaw(relay.wsUrl, kp, room, 'Ana María 👩‍🍳');
    expect(ok.welcome.t).toBe('welcome');
    ok.c.close();
  });

  it('lower: forward floods to absent peers cost strikes and end in a close', async () => {
    const relay = await relayWith({ messagesPerSecond: 5, strikesBeforeClose: 5 });
    const room = generateKeyPair().nodeId;
    const { c } = await joinRaw(relay.wsUrl, generateKeyPair(), room);
    const frame = encodeForwardFrame(generateKeyPair().nodeId, new Uint8Array(10));
    for (let i = 0; i < 50 && c.closeInfo === null; i++) c.sendBinary(frame);
    await c.closed(10_000);
    expect(c.texts.some((m) => m.t === 'error' && m.code === 'rate_limited')).toBe(true);
  });
});
