/**
 * The mesh in real browsers (Playwright, Debian Chromium): every peer is its own Chromium
 * process (its own profile, so its own NodeID), joined to one community through the app's join
 * link, linked through a relay started here so that the tests can stop and restart it.
 *
 * One scenario, in order (serial: each step builds on the mesh the previous one left):
 *  1. three browsers form a direct (WebRTC) mesh that the Peers panel shows; a remote capability
 *     call round-trips between every pair; an event appended on one appears on the other two;
 *  2. hostile raw WebSocket clients (oversized, malformed, flooding, impersonating) are rejected
 *     with a reason while the relay and the browsers' mesh carry on;
 *  3. a fourth browser without WebRTC reaches the others through relay forwarding (both ways);
 *  4. a browser process is killed (SIGKILL, no clean leave): the others drop it;
 *  5. the relay restarts on the same port: peers reconnect by themselves and calls work again;
 *  6. a browser hangs (SIGSTOP: its sockets stay open, so the relay sees nothing): the link
 *     heartbeats mark it gone within a few intervals (default 5 s × 3 missed).
 */
import { chromium, expect, test, type Browser, type BrowserServer, type Page } from '@playwright/test';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import type { NodeID } from '../../engine/core/types.js';
import { generateKeyPair, type KeyPair } from '../../engine/identity/identity.js';
import {
  RELAY_CLOSE_POLICY,
  RELAY_FORWARD_HEADER_BYTES,
  RELAY_FORWARD_MAX_BYTES,
  RELAY_SUBPROTOCOL,
  RELAY_TEXT_MAX_BYTES,
  buildRelayHello,
  decodeForwardFrame,
  encodeForwardFrame,
} from '../../engine/net/relay-client.js';
import { CHROMIUM_ARGS } from '../../playwright.config.js';
import { createRelay, type Relay } from '../../relay/server.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const STATIC_DIR = path.join(ROOT, 'app/dist');
/** mesh formation on 2 shared cores with four Chromiums: generous but bounded */
const LINK_TIMEOUT = 30_000;

// ---------------------------------------------------------------------------------------
// peers: one Chromium process each
// ---------------------------------------------------------------------------------------

interface Peer {
  name: string;
  server: BrowserServer;
  browser: Browser;
  page: Page;
  id: NodeID;
  shortId: string;
  errors: string[];
}

/** Wait for the node to boot; fail with the boot error when it did not. */
async function ready(page: Page): Promise<void> {
  await page.waitForFunction(() => window.hearthnetReady === true || !!window.hearthnetBootError, null, {
    timeout: 20_000,
  });
  const err = await page.evaluate(() => window.hearthnetBootError ?? null);
  expect(err, `boot error: ${JSON.stringify(err)}`).toBeNull();
}

/**
 * A browser of its own (launched as a server so its process can be killed), its page on the
 * relay's app, joined to `community` through the join link when given.
 */
async function launchPeer(
  name: string,
  relayUrl: string,
  opts: { community?: NodeID; noWebRtc?: boolean } = {},
): Promise<Peer> {
  const server = await chromium.launchServer({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
  const browser = await chromium.connect(server.wsEndpoint());
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  if (opts.noWebRtc) {
    // a browser without WebRTC: the app finds no RTCPeerConnection and links through the relay
    await page.addInitScript(() => {
      const w = window as unknown as Record<string, unknown>;
      for (const k of [
        'RTCPeerConnection',
        'webkitRTCPeerConnection',
        'RTCDataChannel',
        'RTCSessionDescription',
        'RTCIceCandidate',
      ])
        delete w[k];
    });
  }
  if (opts.community) {
    await page.goto(`${relayUrl}#join=${opts.community}`);
    await ready(page);
    await expect(page.getByTestId('join-banner')).toBeVisible();
    // the banner saves the community and reloads the page
    await Promise.all([
      page.waitForEvent('load', { timeout: 20_000 }),
      page.getByRole('button', { name: 'Join' }).click(),
    ]);
  } else {
    await page.goto(relayUrl);
  }
  await ready(page);
  if (opts.community) {
    expect(await page.evaluate(() => window.hearthnet!.communityId)).toBe(opts.community);
    await expect(page.getByTestId('community-id')).toHaveText(opts.community);
  }
  const { id, shortId } = await page.evaluate(() => ({
    id: window.hearthnet!.id,
    shortId: window.hearthnet!.shortId,
  }));
  return { name, server, browser, page, id, shortId, errors };
}

/**
 * Signal the whole Chromium process group (Playwright starts Chromium as a group leader):
 * SIGKILL is a crash, not a clean leave; SIGSTOP is a hung machine whose sockets stay open.
 */
function signalPeer(p: Peer, sig: 'SIGKILL' | 'SIGSTOP'): void {
  const pid = p.server.process().pid;
  if (!pid) throw new Error(`${p.name}: no browser process`);
  try {
    process.kill(-pid, sig);
  } catch {
    process.kill(pid, sig);
  }
}

async function closePeer(p: Peer | undefined): Promise<void> {
  if (!p) return;
  const bounded = (x: Promise<unknown>) =>
    Promise.race([x.catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  await bounded(p.server.kill()); // SIGKILL: also ends a stopped or dead browser
  await bounded(p.browser.close());
}

interface PeerView {
  id: string;
  link: string;
  state: string;
}
/** The peers a node lists, sorted by id. A page that is gone answers with null. */
async function peersOf(p: Peer): Promise<PeerView[] | null> {
  return p.page
    .evaluate(() =>
      window
        .hearthnet!.peers()
        .map((x) => ({ id: x.id as string, link: x.link as string, state: x.state as string }))
        .sort((a, b) => (a.id < b.id ? -1 : 1)),
    )
    .catch(() => null);
}
/** The open links a node has, as `id → link type`. */
async function openLinks(p: Peer): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const x of (await peersOf(p)) ?? []) if (x.state === 'open') out[x.id] = x.link;
  return out;
}
const expectLinks = (p: Peer, want: Record<string, 'direct' | 'relay'>, timeout = LINK_TIMEOUT) =>
  expect
    .poll(() => openLinks(p), { message: `${p.name}'s open links`, timeout, intervals: [250, 500, 1000] })
    .toEqual(want);

const relayState = (p: Peer) => p.page.evaluate(() => window.hearthnet!.relayState()).catch(() => null);

/** `protocol.self.describe` on `to`, called from `from`: the signed answer names the callee. */
async function remoteCall(from: Peer, to: Peer): Promise<void> {
  const res = await from.page.evaluate(
    (peer) =>
      window.hearthnet!.call('protocol.self.describe', {}, { peer: peer as NodeID, timeout_ms: 10_000 }),
    to.id,
  );
  expect(res.node_id, `${from.name} → ${to.name}: answered by the callee`).toBe(to.id);
  expect(typeof res.signature).toBe('string');
}

/** Append an event on `on`; it must appear in every one of `at`. */
async function eventReaches(on: Peer, at: Peer[], tag: string): Promise<void> {
  const ev = await on.page.evaluate((t) => window.hearthnet!.events.append('app.test.mesh', { tag: t }), tag);
  for (const p of at) {
    await expect
      .poll(
        () =>
          p.page.evaluate(async (id) => (await window.hearthnet!.events.get(id))?.data ?? null, ev.event_id),
        { message: `event ${tag} from ${on.name} at ${p.name}`, timeout: 15_000 },
      )
      .toEqual({ tag });
  }
}

/** The Peers panel lists `others` with their link type and state. */
async function panelShows(p: Peer, others: Peer[], link: 'direct' | 'relay'): Promise<void> {
  await expect(p.page.getByTestId('relay-state')).toContainText('joined');
  await expect(p.page.getByTestId('peer-row')).toHaveCount(others.length, { timeout: 10_000 });
  for (const o of others) {
    const row = p.page.getByTestId('peer-row').filter({ hasText: o.shortId });
    await expect(row).toContainText(link);
    await expect(row).toContainText('open');
    await expect(row).toContainText(/\d+ ms/, { timeout: 15_000 }); // heartbeat RTT
  }
}

// ---------------------------------------------------------------------------------------
// hostile clients: raw `ws` sockets speaking (or mangling) the relay protocol
// ---------------------------------------------------------------------------------------

interface RawClient {
  ws: WebSocket;
  texts: Record<string, any>[];
  /** binary (forward) frames received */
  binaries: Uint8Array[];
  closed: Promise<{ code: number; reason: string }>;
  /** the next text message matching `pred` (already received or still to come) */
  next(pred: (m: Record<string, any>) => boolean, timeoutMs?: number): Promise<Record<string, any>>;
  challenge: Promise<string>;
}

function rawClient(wsUrl: string): RawClient {
  const ws = new WebSocket(wsUrl, RELAY_SUBPROTOCOL);
  const texts: Record<string, any>[] = [];
  const binaries: Uint8Array[] = [];
  interface Waiter {
    pred: (m: Record<string, any>) => boolean;
    resolve: (m: Record<string, any>) => void;
    reject: (e: Error) => void;
  }
  const waiters = new Set<Waiter>();
  let ended = false;
  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      binaries.push(new Uint8Array(data as Buffer));
      return;
    }
    let m: Record<string, any>;
    try {
      m = JSON.parse(String(data)) as Record<string, any>;
    } catch {
      return;
    }
    texts.push(m);
    for (const w of [...waiters]) if (w.pred(m)) w.resolve(m);
  });
  ws.on('error', () => {}); // the close event reports the outcome
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => {
      ended = true;
      for (const w of [...waiters]) w.reject(new Error(`socket closed (${code} ${String(reason)})`));
      resolve({ code, reason: reason.toString() });
    }),
  );
  const next = (pred: (m: Record<string, any>) => boolean, timeoutMs = 10_000) => {
    const seen = texts.find(pred);
    if (seen) return Promise.resolve(seen);
    if (ended) return Promise.reject(new Error('socket closed'));
    return new Promise<Record<string, any>>((resolve, reject) => {
      const w: Waiter = {
        pred,
        resolve: (m) => {
          done();
          resolve(m);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      };
      const t = setTimeout(() => w.reject(new Error('no matching relay message in time')), timeoutMs);
      const done = () => {
        clearTimeout(t);
        waiters.delete(w);
      };
      waiters.add(w);
    });
  };
  const challenge = next((m) => m.t === 'challenge').then((m) => String(m.nonce));
  challenge.catch(() => {}); // a refused socket never gets one; only callers that await it care
  return { ws, texts, binaries, closed, next, challenge };
}

/** A hostile client with an identity of its own, joined to `room`. */
async function joinedClient(
  wsUrl: string,
  room: NodeID,
  kp: KeyPair = generateKeyPair(),
): Promise<RawClient> {
  const c = rawClient(wsUrl);
  const nonce = await c.challenge;
  c.ws.send(JSON.stringify(buildRelayHello(kp, room, nonce, Date.now(), 'hostile')));
  await c.next((m) => m.t === 'welcome');
  return c;
}

const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([
    p,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: timed out`)), ms)),
  ]);

// ---------------------------------------------------------------------------------------
// the scenario
// ---------------------------------------------------------------------------------------

test.describe.configure({ mode: 'serial' });

test.describe('mesh of browsers through a real relay', () => {
  let relay: Relay;
  let relayPort = 0;
  const relayLog: Record<string, unknown>[] = [];
  let A: Peer, B: Peer, C: Peer, D: Peer | undefined;
  let community: NodeID;

  const startRelay = async (port: number): Promise<Relay> => {
    // the port was just released: retry briefly if the OS still holds it
    for (let i = 0; ; i++) {
      try {
        return await createRelay({
          host: '127.0.0.1',
          port,
          staticDir: STATIC_DIR,
          log: (rec) => relayLog.push(rec),
        });
      } catch (e) {
        if (i >= 20 || (e as { code?: string }).code !== 'EADDRINUSE') throw e;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  };

  test.beforeAll(async () => {
    test.setTimeout(120_000);
    relay = await startRelay(0);
    relayPort = relay.port;
    A = await launchPeer('A', relay.url);
    community = (await A.page.evaluate(() => window.hearthnet!.communityId)) as NodeID;
    expect(community).toBe(A.id); // the first node founds the community
    [B, C] = await Promise.all([
      launchPeer('B', relay.url, { community }),
      launchPeer('C', relay.url, { community }),
    ]);
  });

  test.afterAll(async () => {
    await Promise.all([A, B, C, D].map((p) => closePeer(p)));
    await relay?.close().catch(() => {});
  });

  test('three browsers link directly; calls and events cross the mesh; the Peers panel shows it', async () => {
    test.setTimeout(90_000);
    const all = [A, B, C];
    for (const p of all) {
      const want: Record<string, 'direct'> = {};
      for (const o of all) if (o !== p) want[o.id] = 'direct';
      await expectLinks(p, want);
    }
    await expect.poll(() => relay.stats()).toMatchObject({ rooms: 1, peers: 3 });
    // a remote capability call round-trips between every ordered pair
    for (const p of all) for (const o of all) if (o !== p) await remoteCall(p, o);
    // an event appended on one node reaches the other two
    await eventReaches(A, [B, C], 'from-A');
    await eventReaches(C, [A, B], 'from-C');
    // the acceptance view: each window's Peers panel lists the other two, direct and open
    for (const p of all)
      await panelShows(
        p,
        all.filter((o) => o !== p),
        'direct',
      );
    for (const p of all) expect(p.errors, `${p.name} page errors`).toEqual([]);
  });

  test('hostile clients are rejected with a reason; the relay and the mesh carry on', async () => {
    test.setTimeout(90_000);
    const wsUrl = relay.wsUrl;
    const rejects = () =>
      relayLog.filter((r) => r.msg === 'reject' || r.msg === 'socket error').map((r) => r.reason);

    // malformed: not JSON before hello → bad_request and closed
    {
      const c = rawClient(wsUrl);
      await c.challenge;
      c.ws.send('{"t":"hello",');
      const err = await c.next((m) => m.t === 'error');
      expect(err).toMatchObject({ code: 'bad_request', message: 'message is not JSON' });
      expect(await withTimeout(c.closed, 5000, 'close')).toEqual({
        code: RELAY_CLOSE_POLICY,
        reason: 'malformed_json',
      });
    }
    // malformed: JSON that is not an object, and a hello with missing fields
    {
      const c = rawClient(wsUrl);
      await c.challenge;
      c.ws.send('[1,2,3]');
      expect(await c.next((m) => m.t === 'error')).toMatchObject({
        code: 'bad_request',
        message: 'message is not a JSON object',
      });
      expect((await withTimeout(c.closed, 5000, 'close')).code).toBe(RELAY_CLOSE_POLICY);
      const c2 = rawClient(wsUrl);
      await c2.challenge;
      c2.ws.send(JSON.stringify({ t: 'hello', v: 1, node_id: 'nobody' }));
      expect(await c2.next((m) => m.t === 'error')).toMatchObject({
        code: 'bad_request',
        message: 'malformed hello',
      });
      expect(await withTimeout(c2.closed, 5000, 'close')).toEqual({
        code: RELAY_CLOSE_POLICY,
        reason: 'bad_hello',
      });
    }
    // oversized: a text message above the limit → bad_request and closed
    {
      const c = rawClient(wsUrl);
      await c.challenge;
      c.ws.send(JSON.stringify({ t: 'hello', pad: 'x'.repeat(RELAY_TEXT_MAX_BYTES) }));
      expect(await c.next((m) => m.t === 'error')).toMatchObject({
        code: 'bad_request',
        message: expect.stringContaining(`above ${RELAY_TEXT_MAX_BYTES} bytes`),
      });
      expect(await withTimeout(c.closed, 5000, 'close')).toEqual({
        code: RELAY_CLOSE_POLICY,
        reason: 'oversized',
      });
    }
    // oversized: a WebSocket frame above the relay's frame cap → 1009 (message too big)
    {
      const c = rawClient(wsUrl);
      await c.challenge;
      c.ws.send(new Uint8Array(RELAY_FORWARD_MAX_BYTES * 2 + 1));
      expect((await withTimeout(c.closed, 5000, 'close')).code).toBe(1009);
    }
    // impersonation: a hello naming a browser's NodeID, signed with another key
    {
      const c = rawClient(wsUrl);
      const nonce = await c.challenge;
      const forged = { ...buildRelayHello(generateKeyPair(), community, nonce, Date.now()), node_id: B.id };
      c.ws.send(JSON.stringify(forged));
      expect(await c.next((m) => m.t === 'error')).toMatchObject({
        code: 'invalid_signature',
        message: 'hello signature does not verify for node_id',
      });
      expect(await withTimeout(c.closed, 5000, 'close')).toEqual({
        code: RELAY_CLOSE_POLICY,
        reason: 'bad_signature',
      });
      expect(c.texts.some((m) => m.t === 'welcome')).toBe(false);
    }
    // impersonation by replay: a hello validly signed for another connection's challenge
    {
      const kp = generateKeyPair();
      const first = rawClient(wsUrl);
      const second = rawClient(wsUrl);
      const [n1] = await Promise.all([first.challenge, second.challenge]);
      second.ws.send(JSON.stringify(buildRelayHello(kp, community, n1, Date.now())));
      expect(await second.next((m) => m.t === 'error')).toMatchObject({ code: 'expired' });
      expect((await withTimeout(second.closed, 5000, 'close')).reason).toBe('stale_nonce');
      first.ws.close();
    }

    // connection flood from one address: past the per-address cap each socket is refused
    {
      const flood = Array.from({ length: 40 }, () => rawClient(wsUrl));
      const outcomes = await Promise.all(
        flood.map((c) => c.next((m) => m.t === 'challenge' || m.t === 'error')),
      );
      const refused = outcomes.filter((m) => m.t === 'error');
      expect(refused.length).toBeGreaterThan(0);
      for (const m of refused)
        expect(m).toMatchObject({
          code: 'capacity_exceeded',
          message: 'too many connections from this address',
        });
      for (const c of flood) c.ws.terminate();
      await expect.poll(() => relay.stats().connections).toBe(3);
      const probe = rawClient(wsUrl); // served again once the flood is gone
      await probe.challenge;
      probe.ws.close();
    }
    // a hostile node with an identity of its own joins the room, then misbehaves
    const hostile = await joinedClient(wsUrl, community);
    expect(relay.stats().peers).toBe(4);
    // malformed after join: a strike and an error, not yet a close
    hostile.ws.send('not json');
    expect(await hostile.next((m) => m.t === 'error' && m.message === 'message is not JSON')).toMatchObject({
      code: 'bad_request',
    });
    // oversized forward frame (within the WebSocket cap, above the forward cap)
    hostile.ws.send(new Uint8Array(RELAY_FORWARD_MAX_BYTES + 1));
    expect(
      await hostile.next((m) => m.t === 'error' && String(m.message).startsWith('forward frame above')),
    ).toMatchObject({ code: 'bad_request' });
    // garbage to a browser through the relay: a bogus E2E offer and random bytes
    hostile.ws.send(encodeForwardFrame(A.id, new Uint8Array([0x01, ...new TextEncoder().encode('{"x":1}')])));
    hostile.ws.send(encodeForwardFrame(A.id, crypto.getRandomValues(new Uint8Array(1000))));
    hostile.ws.send(
      encodeForwardFrame(B.id, new Uint8Array(RELAY_FORWARD_MAX_BYTES - RELAY_FORWARD_HEADER_BYTES)),
    );
    // a signal and a forward frame that claim to come from a browser: the relay stamps the
    // authenticated sender on both (seen by a second client in the room)
    const hostileId = hostile.texts.find((m) => m.t === 'welcome')!.node_id as string;
    const witness = await joinedClient(wsUrl, community);
    const witnessId = witness.texts.find((m) => m.t === 'welcome')!.node_id as NodeID;
    hostile.ws.send(JSON.stringify({ t: 'signal', to: witnessId, from: A.id, data: { claim: A.id } }));
    expect(await witness.next((m) => m.t === 'signal' && m.data?.claim)).toEqual({
      t: 'signal',
      from: hostileId,
      data: { claim: A.id },
    });
    hostile.ws.send(encodeForwardFrame(witnessId, new Uint8Array([9, 9, 9])));
    await expect.poll(() => witness.binaries.length).toBe(1);
    expect(decodeForwardFrame(witness.binaries[0]!)).toEqual({
      addr: hostileId,
      payload: new Uint8Array([9, 9, 9]),
    });
    witness.ws.close();
    // signal flood: rate limited with retry_after_ms, then cut off
    for (let i = 0; i < 150 && hostile.ws.readyState === WebSocket.OPEN; i++)
      hostile.ws.send(JSON.stringify({ t: 'signal', to: A.id, data: { type: 'noise', i } }));
    const limited = await hostile.next((m) => m.t === 'error' && m.code === 'rate_limited');
    expect(limited.message).toBe('too many messages');
    expect(limited.retry_after_ms).toBeGreaterThan(0);
    expect(await withTimeout(hostile.closed, 10_000, 'close')).toEqual({
      code: RELAY_CLOSE_POLICY,
      reason: 'message_rate',
    });

    // every rejection left a reason in the relay's log; nothing broke inside the relay
    expect(rejects()).toEqual(
      expect.arrayContaining([
        'malformed_json',
        'malformed_message',
        'bad_hello',
        'oversized',
        'oversized_frame',
        'bad_signature',
        'stale_nonce',
        'message_rate',
        'ip_limit',
      ]),
    );
    expect(relayLog.filter((r) => r.level === 'error')).toEqual([]);
    expect(relay.metrics.render()).toMatch(/hearthnet_relay_rejects_total\{reason="message_rate"\} \d+/);

    // the relay is up, the hostile ones are gone, and the browsers never noticed
    const health = await fetch(new URL('/healthz', relay.url));
    expect(health.status).toBe(200);
    await expect.poll(() => relay.stats()).toMatchObject({ rooms: 1, peers: 3 });
    for (const p of [A, B, C]) expect(await relayState(p)).toBe('ready');
    for (const p of [A, B, C]) {
      const want: Record<string, 'direct'> = {};
      for (const o of [A, B, C]) if (o !== p) want[o.id] = 'direct';
      expect(await openLinks(p)).toEqual(want);
    }
    await remoteCall(A, B);
    await remoteCall(B, C);
    await remoteCall(C, A);
    await eventReaches(B, [A, C], 'after-hostiles');
    for (const p of [A, B, C]) expect(p.errors, `${p.name} page errors`).toEqual([]);
  });

  test('a browser without WebRTC reaches the others through relay forwarding', async () => {
    test.setTimeout(90_000);
    D = await launchPeer('D', relay.url, { community, noWebRtc: true });
    expect(await D.page.evaluate(() => typeof RTCPeerConnection)).toBe('undefined');
    const d = D;
    // relayed both ways: D lists the three as 'relay', each of them lists D as 'relay'
    await expectLinks(d, { [A.id]: 'relay', [B.id]: 'relay', [C.id]: 'relay' });
    for (const p of [A, B, C]) {
      const want: Record<string, 'direct' | 'relay'> = { [d.id]: 'relay' };
      for (const o of [A, B, C]) if (o !== p) want[o.id] = 'direct';
      await expectLinks(p, want);
    }
    await remoteCall(d, A);
    await remoteCall(B, d);
    await remoteCall(d, C);
    await eventReaches(d, [A, B, C], 'from-D');
    await eventReaches(A, [d], 'to-D');
    await panelShows(d, [A, B, C], 'relay');
    await expect(A.page.getByTestId('peer-row').filter({ hasText: d.shortId })).toContainText('relay');
    expect(d.errors).toEqual([]);
  });

  test('a killed browser is dropped by the others at once (the relay reports it left)', async () => {
    test.setTimeout(90_000);
    const d = D!;
    const t0 = Date.now();
    signalPeer(C, 'SIGKILL');
    // the others stop listing C as open: its relay socket dies with it, so peer_left comes at
    // once (well within the heartbeat window; the hung-browser test covers heartbeats alone)
    for (const p of [A, B, d])
      await expect
        .poll(async () => ((await peersOf(p)) ?? []).some((x) => x.id === C.id && x.state === 'open'), {
          message: `${p.name} still lists the killed browser as open`,
          timeout: 25_000,
        })
        .toBe(false);
    test.info().annotations.push({ type: 'killed peer dropped after', description: `${Date.now() - t0} ms` });
    await expect.poll(() => relay.stats().peers, { timeout: 10_000 }).toBe(3);
    // the rest of the mesh is untouched
    await expectLinks(A, { [B.id]: 'direct', [d.id]: 'relay' }, 5_000);
    await expectLinks(d, { [A.id]: 'relay', [B.id]: 'relay' }, 5_000);
    await remoteCall(A, B);
    await remoteCall(d, B);
    // and the Peers panel no longer shows it as open (the row goes, or says gone/closed)
    await expect(
      A.page.getByTestId('peer-row').filter({ hasText: C.shortId }).filter({ hasText: 'open' }),
    ).toHaveCount(0);
    await expect(A.page.getByTestId('peer-row').filter({ hasText: B.shortId })).toContainText('open');
  });

  test('the relay restarts: peers reconnect by themselves and calls work again', async () => {
    test.setTimeout(120_000);
    const d = D!;
    const peers = [A, B, d];
    await relay.close();
    // everyone notices; the relayed links (through the relay that went away) close
    for (const p of peers) await expect.poll(() => relayState(p), { timeout: 10_000 }).not.toBe('ready');
    await expect.poll(() => openLinks(d), { timeout: 10_000 }).toEqual({});
    // a direct link does not need the relay
    await remoteCall(A, B);

    relay = await startRelay(relayPort);
    expect(relay.port).toBe(relayPort);
    for (const p of peers) await expect.poll(() => relayState(p), { timeout: 30_000 }).toBe('ready');
    await expect.poll(() => relay.stats()).toMatchObject({ rooms: 1, peers: 3 });
    await expectLinks(d, { [A.id]: 'relay', [B.id]: 'relay' });
    await expectLinks(A, { [B.id]: 'direct', [d.id]: 'relay' });
    await expectLinks(B, { [A.id]: 'direct', [d.id]: 'relay' });
    await remoteCall(d, A);
    await remoteCall(B, d);
    await remoteCall(A, B);
    await eventReaches(d, [A, B], 'after-restart');
    await panelShows(d, [A, B], 'relay');
    for (const p of peers) expect(p.errors, `${p.name} page errors`).toEqual([]);
  });

  test('a hung browser is marked gone by heartbeats while the relay still lists it', async () => {
    test.setTimeout(90_000);
    const d = D!;
    await expectLinks(A, { [B.id]: 'direct', [d.id]: 'relay' }, 5_000);
    await expectLinks(d, { [A.id]: 'relay', [B.id]: 'relay' }, 5_000);
    // how each side's link to B ends, and when
    const watch = (p: Peer) =>
      p.page.evaluate((id) => {
        const w = window as unknown as { linkEnd?: { reason: string; at: number } };
        window
          .hearthnet!.session(id as NodeID)!
          .onClose((reason) => (w.linkEnd = { reason, at: Date.now() }));
      }, B.id);
    const linkEnd = (p: Peer) =>
      p.page.evaluate(
        () => (window as unknown as { linkEnd?: { reason: string; at: number } }).linkEnd ?? null,
      );
    await watch(A);
    await watch(d);
    const stateOfB = async (p: Peer) => ((await peersOf(p)) ?? []).find((x) => x.id === B.id)?.state ?? null;
    const t0 = Date.now();
    // frozen, not dead: its sockets stay open, so the relay sends no peer_left
    signalPeer(B, 'SIGSTOP');
    try {
      // the relayed link has only the heartbeats to tell (5 s, gone after 3 missed)
      await expect
        .poll(() => stateOfB(d), { message: "D's relayed link to the hung browser", timeout: 40_000 })
        .toBe('gone');
      // when D's node ended the link (its own clock), not when this poll looked: 3 missed 5 s heartbeats are
      // 15–20 s; the rest is slack for a loaded 2-core machine running two browsers' timers late
      const endD = await linkEnd(d);
      expect(endD).toMatchObject({ reason: 'peer silent' });
      const ms = endD!.at - t0;
      test.info().annotations.push({ type: 'hung peer marked gone after', description: `${ms} ms` });
      expect(ms).toBeLessThan(30_000); // within a few heartbeats
      await expect(d.page.getByTestId('peer-row').filter({ hasText: B.shortId })).toContainText('gone');
      // the direct link: the heartbeats, or WebRTC noticing first, end it within the same bound
      await expect
        .poll(() => stateOfB(A), { message: "A's direct link to the hung browser", timeout: 5_000 })
        .not.toBe('open');
      const endA = await linkEnd(A);
      expect(endA, 'A saw its link to B end').not.toBeNull();
      expect(endA!.at - t0).toBeLessThan(30_000);
      test.info().annotations.push({
        type: "A's direct link ended",
        description: `${endA!.at - t0} ms, ${endA!.reason}`,
      });
      await expect(
        A.page.getByTestId('peer-row').filter({ hasText: B.shortId }).filter({ hasText: 'open' }),
      ).toHaveCount(0);
      expect(relay.stats().peers).toBe(3); // the relay still holds B's (frozen) connection
      // the rest of the mesh works; a call to the hung peer fails fast instead of hanging
      await remoteCall(A, d);
      await remoteCall(d, A);
      await expect(
        A.page.evaluate(
          (id) => window.hearthnet!.call('protocol.self.describe', {}, { peer: id as NodeID }),
          B.id,
        ),
      ).rejects.toThrow(/partition|no open link/);
    } finally {
      signalPeer(B, 'SIGKILL'); // never leave a stopped browser behind (tracing would wait on it)
    }
    await expect.poll(() => relay.stats().peers, { timeout: 10_000 }).toBe(2);
  });
});
