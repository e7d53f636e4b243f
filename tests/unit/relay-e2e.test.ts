/**
 * End-to-end encryption of relayed links (engine/net/relayed-port.ts): key agreement over any
 * pipe, roundtrips, tamper/replay/reorder/drop detection, identity binding, and a real relay
 * that only ever carries ciphertext (checked on the bytes that crossed it).
 */
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { canonical } from '../../engine/core/canonical.js';
import { b64url, fromUtf8, randomBytes, utf8 } from '../../engine/core/encoding.js';
import type { NodeID } from '../../engine/core/types.js';
import { generateKeyPair, type KeyPair } from '../../engine/identity/identity.js';
import { memoryPortPair, type BytePort } from '../../engine/net/port.js';
import { RelayClient, type WebSocketConstructor, type WebSocketLike } from '../../engine/net/relay-client.js';
import {
  E2E_RECORD_OFFER,
  E2E_RECORD_SEALED,
  acceptRelayedPorts,
  createE2eHandshake,
  openRelayedPort,
  secureBytePort,
  type SecurePort,
} from '../../engine/net/relayed-port.js';
import { createRelay, type Relay } from '../../relay/server.js';
import { eventually } from './relay-helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

/** Random bytes of any length (getRandomValues is capped at 64 KiB per call). */
function rnd(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let o = 0; o < n; o += 65536) out.set(randomBytes(Math.min(65536, n - o)), o);
  return out;
}

/** Two memory pipes joined by a man in the middle that may rewrite, drop or inject records. */
function mitmPipes(
  transform: (dir: 'ab' | 'ba', rec: Uint8Array, index: number) => Uint8Array[],
): [BytePort, BytePort] {
  const [a, ma] = memoryPortPair();
  const [mb, b] = memoryPortPair();
  let iab = 0;
  let iba = 0;
  ma.onMessage((m) => {
    for (const out of transform('ab', m, iab++)) void mb.send(out).catch(() => undefined);
  });
  mb.onMessage((m) => {
    for (const out of transform('ba', m, iba++)) void ma.send(out).catch(() => undefined);
  });
  ma.onClose((r) => mb.close(r));
  mb.onClose((r) => ma.close(r));
  return [a, b];
}

async function securePair(
  a: KeyPair,
  b: KeyPair,
  pa: BytePort,
  pb: BytePort,
): Promise<[SecurePort, SecurePort]> {
  return Promise.all([
    secureBytePort(pa, { self: a, peer: b.nodeId }),
    secureBytePort(pb, { self: b, peer: a.nodeId }),
  ]);
}

function collect(p: BytePort) {
  const got: Uint8Array[] = [];
  let closeReason: string | null = null;
  p.onMessage((m) => got.push(m));
  p.onClose((r) => (closeReason = r));
  return { got, closed: () => closeReason };
}

describe('E2E key agreement over any pipe', () => {
  it('roundtrips both ways, up to the largest message, with one channel binding', async () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    const [pa, pb] = memoryPortPair();
    const [sa, sb] = await securePair(a, b, pa, pb);
    expect(sa.channelBinding).toBe(sb.channelBinding);
    expect(sa.encrypted).toBe(true);
    expect(sa.peer).toBe(b.nodeId);
    const ra = collect(sa);
    const rb = collect(sb);
    const msgs = [utf8('hello'), new Uint8Array(0), rnd(sa.maxMessageBytes), rnd(1000)];
    for (const m of msgs) await sa.send(m);
    await sb.send(utf8('back'));
    await eventually(() => rb.got.length === msgs.length && ra.got.length === 1, 'messages');
    rb.got.forEach((g, i) => expect(Buffer.compare(Buffer.from(g), Buffer.from(msgs[i]!))).toBe(0));
    expect(fromUtf8(ra.got[0]!)).toBe('back');
    await expect(sa.send(new Uint8Array(sa.maxMessageBytes + 1))).rejects.toMatchObject({
      code: 'too_large',
    });
    sa.close('done here');
    await eventually(() => rb.closed(), 'close reaches the peer');
    expect(rb.closed()).toBe('done here');
    await expect(sa.send(utf8('x'))).rejects.toMatchObject({ code: 'closed' });
  });

  it('two sessions between the same peers use different keys', async () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    const s1 = await securePair(a, b, ...memoryPortPair());
    const s2 = await securePair(a, b, ...memoryPortPair());
    expect(s1[0].channelBinding).not.toBe(s2[0].channelBinding);
  });

  const tamperCase = async (
    what: string,
    edit: (rec: Uint8Array, dataIndex: number) => Uint8Array[],
  ): Promise<{ delivered: string[]; reason: string }> => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    let dataIndex = 0;
    const [pa, pb] = mitmPipes((dir, rec) => {
      // records a→b after OFFER and CONFIRM are data: index them
      if (dir !== 'ab' || rec[0] !== E2E_RECORD_SEALED) return [rec];
      const i = dataIndex++;
      if (i === 0) return [rec]; // CONFIRM
      return edit(rec, i - 1);
    });
    const [sa, sb] = await securePair(a, b, pa, pb);
    const rb = collect(sb);
    for (let i = 0; i < 5; i++) await sa.send(utf8(`m${i}`)).catch(() => undefined);
    await eventually(() => rb.closed(), `${what}: port closes`);
    return { delivered: rb.got.map((g) => fromUtf8(g)), reason: rb.closed()! };
  };

  it('a flipped ciphertext byte closes the port; nothing tampered is delivered', async () => {
    const r = await tamperCase('flip', (rec, i) => {
      if (i !== 2) return [rec];
      const t = rec.slice();
      t[t.length - 20]! ^= 0x01;
      return [t];
    });
    expect(r.delivered).toEqual(['m0', 'm1']);
    expect(r.reason).toMatch(/e2e|authentication/i);
  });

  it('a replayed record closes the port', async () => {
    const r = await tamperCase('replay', (rec, i) => (i === 1 ? [rec, rec] : [rec]));
    expect(r.delivered).toEqual(['m0', 'm1']);
  });

  it('reordered records close the port', async () => {
    let held: Uint8Array | null = null;
    const r = await tamperCase('reorder', (rec, i) => {
      if (i === 1) {
        held = rec;
        return [];
      }
      if (i === 2) return [rec, held!];
      return [rec];
    });
    expect(r.delivered).toEqual(['m0']);
  });

  it('a dropped record closes the port at the next one', async () => {
    const r = await tamperCase('drop', (rec, i) => (i === 1 ? [] : [rec]));
    expect(r.delivered).toEqual(['m0']);
  });

  it('an offer from the wrong identity or with a swapped ephemeral key is refused', async () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    const mallory = generateKeyPair();
    // mallory answers a's link to b with its own (validly signed) offer
    const [pa, pm] = memoryPortPair();
    const [ra, rm] = await Promise.allSettled([
      secureBytePort(pa, { self: a, peer: b.nodeId, timeoutMs: 5000 }),
      secureBytePort(pm, { self: mallory, peer: a.nodeId, timeoutMs: 5000 }),
    ]);
    expect(ra).toMatchObject({ status: 'rejected', reason: { code: 'invalid_signature' } });
    expect(rm.status).toBe('rejected');

    // a MITM that replaces b's ephemeral key in its signed offer
    const evilEph = b64url(randomBytes(32));
    const [qa, qb] = mitmPipes((dir, rec) => {
      if (dir !== 'ba' || rec[0] !== E2E_RECORD_OFFER) return [rec];
      const offer = JSON.parse(fromUtf8(rec.subarray(1)));
      offer.eph = evilEph;
      const body = canonical(offer);
      const out = new Uint8Array(1 + body.length);
      out[0] = E2E_RECORD_OFFER;
      out.set(body, 1);
      return [out];
    });
    const [xa, xb] = await Promise.allSettled([
      secureBytePort(qa, { self: a, peer: b.nodeId, timeoutMs: 5000 }),
      secureBytePort(qb, { self: b, peer: a.nodeId, timeoutMs: 5000 }),
    ]);
    expect(xa).toMatchObject({ status: 'rejected', reason: { code: 'invalid_signature' } });
    expect(xb.status).toBe('rejected');
  });

  it('stale offers are refused; a silent peer times out', async () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    const hs = createE2eHandshake({ self: b, peer: a.nodeId, now: () => Date.now() - 10 * 60_000 });
    const mine = createE2eHandshake({ self: a, peer: b.nodeId });
    expect(() => mine.complete(hs.offer)).toThrow(expect.objectContaining({ code: 'expired' }));
    const [pa] = memoryPortPair();
    await expect(secureBytePort(pa, { self: a, peer: b.nodeId, timeoutMs: 100 })).rejects.toMatchObject({
      code: 'timeout',
    });
  });
});

/** A WebSocket (over `ws`) that records every binary frame it sends or receives. */
function recordingWebSocket(log: Uint8Array[]): WebSocketConstructor {
  return class RecordingWebSocket implements WebSocketLike {
    private readonly inner: WebSocket;
    onopen: ((ev: any) => void) | null = null;
    onmessage: ((ev: any) => void) | null = null;
    onclose: ((ev: any) => void) | null = null;
    onerror: ((ev: any) => void) | null = null;
    constructor(url: string, protocols?: string | string[]) {
      this.inner = new WebSocket(url, protocols);
      this.inner.binaryType = 'arraybuffer';
      this.inner.onopen = (e) => this.onopen?.(e);
      this.inner.onmessage = (e) => {
        if (e.data instanceof ArrayBuffer) log.push(new Uint8Array(e.data.slice(0)));
        this.onmessage?.(e);
      };
      this.inner.onclose = (e) => this.onclose?.(e);
      this.inner.onerror = (e) => this.onerror?.(e);
    }
    get readyState() {
      return this.inner.readyState;
    }
    get bufferedAmount() {
      return this.inner.bufferedAmount;
    }
    get binaryType() {
      return this.inner.binaryType;
    }
    set binaryType(v: string) {
      this.inner.binaryType = v as 'arraybuffer';
    }
    send(d: string | Uint8Array) {
      if (typeof d !== 'string') log.push(d.slice());
      this.inner.send(d);
    }
    close(code?: number, reason?: string) {
      this.inner.close(code, reason);
    }
  };
}

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  return Buffer.from(hay.buffer, hay.byteOffset, hay.byteLength).indexOf(Buffer.from(needle));
}

describe('relayed ports through a real relay', () => {
  async function setup() {
    const relay: Relay = await createRelay({ log: () => undefined });
    cleanups.push(() => relay.close());
    const room = generateKeyPair().nodeId;
    const a = generateKeyPair();
    const b = generateKeyPair();
    const wire: Uint8Array[] = [];
    const WS = recordingWebSocket(wire);
    const ca = new RelayClient({ url: relay.wsUrl, keyPair: a, room, WebSocket: WS });
    const cb = new RelayClient({ url: relay.wsUrl, keyPair: b, room, WebSocket: WS });
    cleanups.push(
      () => ca.close(),
      () => cb.close(),
    );
    ca.start();
    cb.start();
    await ca.waitReady();
    await cb.waitReady();
    await eventually(() => ca.hasPeer(b.nodeId) && cb.hasPeer(a.nodeId), 'roster');
    const accepted: SecurePort[] = [];
    const stop = acceptRelayedPorts(cb, { self: b, onPort: (p) => accepted.push(p) });
    cleanups.push(stop);
    return { relay, room, a, b, ca, cb, wire, accepted };
  }

  it('the relay only ever carries ciphertext; data arrives intact and in order', async () => {
    const { relay, a, b, ca, wire, accepted } = await setup();
    const pa = await openRelayedPort(ca, b.nodeId, { self: a });
    await eventually(() => accepted.length === 1, 'accepted port');
    const pb = accepted[0]!;
    expect(pb.peer).toBe(a.nodeId);
    expect(pa.channelBinding).toBe(pb.channelBinding);
    const rb = collect(pb);
    const ra = collect(pa);

    const marker = utf8('PLAINTEXT-MARKER-do-not-leak');
    const big = new Uint8Array(60_000);
    for (let i = 0; i < big.length; i += marker.length)
      big.set(marker.subarray(0, Math.min(marker.length, big.length - i)), i);
    const msgs: Uint8Array[] = [];
    for (let i = 0; i < 50; i++) msgs.push(i % 10 === 0 ? big : utf8(`PLAINTEXT-MARKER-do-not-leak #${i}`));
    for (const m of msgs) await pa.send(m);
    await pb.send(marker);
    await eventually(() => rb.got.length === msgs.length && ra.got.length === 1, 'all messages', 30_000);
    rb.got.forEach((g, i) => expect(Buffer.compare(Buffer.from(g), Buffer.from(msgs[i]!))).toBe(0));

    // Every binary frame that crossed the relay (sent by a, received by b, and vice versa)
    expect(wire.length).toBeGreaterThanOrEqual(2 * (msgs.length + 1));
    for (const f of wire) expect(indexOf(f, marker)).toBe(-1);
    expect(wire.some((f) => indexOf(f, utf8('do-not-leak')) >= 0)).toBe(false);
    expect(relay.metrics.get('hearthnet_relay_forward_bytes_total')).toBeGreaterThan(50 * 34);

    pa.close('bye');
    await eventually(() => rb.closed(), 'close over the relay');
    expect(rb.closed()).toBe('bye');
  });

  it('a peer leaving the room closes the relayed port; a re-opened session replaces a stale one', async () => {
    const { a, b, ca, cb, accepted } = await setup();
    const pa1 = await openRelayedPort(ca, b.nodeId, { self: a });
    await eventually(() => accepted.length === 1, 'first accept');
    const rb1 = collect(accepted[0]!);
    // a loses its link state without closing (crash) and opens a new session
    const pa2 = await openRelayedPort(ca, b.nodeId, { self: a });
    await eventually(() => accepted.length === 2, 'second accept');
    expect(rb1.closed()).toBe('rehandshake');
    expect(pa1.closed).toBe(false); // orphaned on a's side: the link layer owns it
    const rb2 = collect(accepted[1]!);
    await pa2.send(utf8('second session'));
    await eventually(() => rb2.got.length === 1, 'data on the new session');
    expect(fromUtf8(rb2.got[0]!)).toBe('second session');

    const ra2 = collect(pa2);
    cb.close();
    await eventually(() => ra2.closed(), 'port closes when the peer leaves');
    expect(['peer_left', 'relay_unreachable']).toContain(ra2.closed());
    await expect(openRelayedPort(ca, b.nodeId, { self: a })).rejects.toMatchObject({ code: 'partition' });
  });

  it('refuses to open without a joined relay client', async () => {
    const a = generateKeyPair();
    const c = new RelayClient({
      url: 'ws://127.0.0.1:9/ws',
      keyPair: a,
      room: generateKeyPair().nodeId,
      WebSocket,
      reconnect: false,
    });
    await expect(openRelayedPort(c, generateKeyPair().nodeId as NodeID, { self: a })).rejects.toMatchObject({
      code: 'relay_unreachable',
    });
  });
});
