/**
 * Link acceptance suite (automerge-repo style): one set of cases for every BytePort implementation
 * that carries a peer link. Call `linkAcceptanceSuite(kind)` with a factory that yields a connected
 * `[BytePort, BytePort]` plus the `LinkInfo` each side hands to `node.connect`; a new port (M29's
 * serial link, a WebTransport port) runs the whole suite with one call. Every wait is bounded.
 */
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createNode, HnError, type HearthNode, type NodeOptions } from '../../engine/index.js';
import type { NodeID } from '../../engine/core/types.js';
import { utf8 } from '../../engine/core/encoding.js';
import { descriptor } from '../../engine/modules/registry.js';
import type { BytePort } from '../../engine/net/port.js';
import { CONTROL_CAP, encodeLinkFrame, KIND_CONTROL, LinkMux, X08_CAP } from '../../engine/net/frames.js';
import type { LinkInfo, Transport } from '../../engine/net/session.js';

export type Side = 0 | 1;

export interface LinkPair {
  ports: [BytePort, BytePort];
  /** What side `s` passes to `node.connect` (honest). */
  info(s: Side, expectedPeer: NodeID): LinkInfo;
  /** The same, but side `s` presents a wrong link binding (DTLS fingerprint / E2E binding / peer). */
  forged(s: Side, expectedPeer: NodeID): LinkInfo;
}

export interface LinkKind {
  name: Transport;
  pair(): Promise<LinkPair>;
}

/**
 * What a small-frame byte port (a LoRa stick: 32-byte frames, no room for the 64 KiB messages, the
 * LinkMux or the node handshake) promises; the suite checks exactly these.
 */
export interface SmallFrameCaps {
  /** every message is exactly this many bytes; any other length rejects with `bad_request` */
  frameBytes: number;
  /** sends queued at most; one more rejects with `capacity_exceeded` (bounded buffering) */
  maxPending: number;
  /** the medium may lose frames: delivery is an in-order subsequence (else: all of them, in order) */
  lossy: boolean;
  /** close reaches the other side (a radio has no connection: false) */
  closePropagates: boolean;
}
export interface SmallFramePair {
  ports: [BytePort, BytePort];
  /** write raw bytes into side `s`'s incoming byte stream (line noise) */
  garbage(s: Side, bytes: Uint8Array): void;
  /** malformed input side `s` counted so far */
  malformed(s: Side): number;
}
export interface SmallFrameKind {
  name: string;
  caps: SmallFrameCaps;
  pair(): Promise<SmallFramePair>;
}

export const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) {
    try {
      await f();
    } catch {
      // best effort
    }
  }
});
export const track = (...ports: BytePort[]) => {
  for (const p of ports) cleanups.push(() => p.close('test over'));
};

/** Fail instead of hanging: resolves with `p` or rejects after `ms`. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<never>((_, rej) => {
      t = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const same = (x: Uint8Array, y: Uint8Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(y);

function collect(p: BytePort) {
  const got: Uint8Array[] = [];
  let closeReason: string | null = null;
  p.onMessage((m) => got.push(m));
  p.onClose((r) => (closeReason ??= r));
  return { got, closed: () => closeReason };
}

function busyWait(ms: number) {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // the receiver is slow: it holds the thread
  }
}

const nodes: HearthNode[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.close().catch(() => undefined);
});
async function node(opts: NodeOptions = {}): Promise<HearthNode> {
  const n = await createNode({ heartbeatMs: 1000, ...opts });
  nodes.push(n);
  return n;
}
const member = (founder: HearthNode, opts: NodeOptions = {}) =>
  node({ ...opts, config: { ...opts.config, community: { community_id: founder.id } } });

/** Link two nodes over a fresh link of `kind`; both handshakes must complete. */
async function linkNodes(kind: LinkKind, x: HearthNode, y: HearthNode) {
  const lp = await kind.pair();
  return within(
    Promise.all([x.connect(lp.ports[0], lp.info(0, y.id)), y.connect(lp.ports[1], lp.info(1, x.id))]),
    12_000,
    'link handshake',
  );
}

const openPeers = (n: HearthNode) =>
  n
    .peers()
    .filter((p) => p.state === 'open')
    .map((p) => p.id);

/** A remote `protocol.version.list` answers exactly what the callee answers locally. */
async function remoteVersionCall(from: HearthNode, to: HearthNode) {
  const remote: unknown = await from.call('protocol.version.list', {}, { peer: to.id });
  expect(remote).toEqual(await to.call('protocol.version.list', {}));
  expect(JSON.stringify(remote)).toContain('3.0.0');
}

function registerCounter(n: HearthNode) {
  n.bus.register({
    descriptor: descriptor('llm.count', 'core', {
      stream_schema: { type: 'object', required: ['event', 'data'] },
      trust_required: 'member',
    }),
    handler: async function* (input: { n: number }) {
      for (let i = 1; i <= input.n; i++) yield { event: 'tick', data: { i } };
      return { total: input.n };
    },
  });
}

// ---------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------

/**
 * The link acceptance suite for one kind of link; call it once per BytePort implementation. A kind with
 * `caps` is a small-frame port: it runs the cases that apply to it (smallFrameSuite below).
 */
export function linkAcceptanceSuite(kind: LinkKind | SmallFrameKind): void {
  if ('caps' in kind) {
    smallFrameSuite(kind);
    return;
  }
  describe(`link acceptance: ${kind.name}`, () => {
    it('1. messages arrive in order and byte-identical, both directions at once', async () => {
      const { ports } = await kind.pair();
      const [a, b] = ports;
      const max = a.maxMessageBytes;
      expect(b.maxMessageBytes).toBe(max);
      expect(max).toBeGreaterThanOrEqual(64 * 1024);
      const ra = collect(a);
      const rb = collect(b);
      let seed = 1;
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.integer({ min: 1, max }), { minLength: 1, maxLength: 10 }),
          fc.array(fc.integer({ min: 1, max }), { minLength: 1, maxLength: 10 }),
          async (sizesAB, sizesBA) => {
            const ab = sizesAB.map((n) => pattern(n, seed++));
            const ba = sizesBA.map((n) => pattern(n, seed++));
            ra.got.length = 0;
            rb.got.length = 0;
            const sendAll = async (p: BytePort, msgs: Uint8Array[]) => {
              for (const m of msgs) await p.send(m);
            };
            await within(Promise.all([sendAll(a, ab), sendAll(b, ba)]), 10_000, 'sends');
            await expect
              .poll(() => rb.got.length === ab.length && ra.got.length === ba.length, { timeout: 10_000 })
              .toBe(true);
            expect(rb.got.map((m) => m.length)).toEqual(sizesAB);
            expect(ra.got.map((m) => m.length)).toEqual(sizesBA);
            for (let i = 0; i < ab.length; i++) expect(same(rb.got[i]!, ab[i]!)).toBe(true);
            for (let i = 0; i < ba.length; i++) expect(same(ra.got[i]!, ba[i]!)).toBe(true);
          },
        ),
        // one shared link: a failure leaves it in an unknown state, so no shrinking on it
        { numRuns: 6, seed: 42, endOnFailure: true },
      );
      expect(ra.closed()).toBeNull();
      expect(rb.closed()).toBeNull();
    });

    it('2. backpressure: 20 MiB to a slow receiver — nothing lost or reordered, and send waits', async () => {
      const { ports } = await kind.pair();
      const [a, b] = ports;
      const max = a.maxMessageBytes;
      const TOTAL = 20 * 1024 * 1024;
      const block = pattern(2 * max, 7);
      let x = 12345;
      const sizes: number[] = [];
      let sum = 0;
      while (TOTAL - sum > 2 * max) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        const n = 8 + ((x >>> 8) % (max - 7)); // 8 ..= max
        sizes.push(n);
        sum += n;
      }
      const rest = TOTAL - sum; // in (max, 2·max]: two last messages, each within the limit
      sizes.push(rest >> 1, rest - (rest >> 1));
      const body = (seq: number) => block.subarray(seq % max, (seq % max) + sizes[seq]! - 4);
      let received = 0;
      let receivedBytes = 0;
      let bad = 0;
      b.onMessage((m) => {
        const seq = new DataView(m.buffer, m.byteOffset, m.byteLength).getUint32(0);
        if (seq !== received || m.length !== sizes[seq] || !same(m.subarray(4), body(seq))) bad++;
        received++;
        receivedBytes += m.length;
        busyWait(1); // a slow consumer
      });
      let outstanding = 0;
      let waitedSends = 0;
      let sentBytes = 0;
      let maxAhead = 0;
      const sender = (async () => {
        for (let seq = 0; seq < sizes.length; seq++) {
          const m = new Uint8Array(sizes[seq]!);
          new DataView(m.buffer).setUint32(0, seq);
          m.set(body(seq), 4);
          const seen = received;
          outstanding++;
          await a.send(m);
          outstanding--;
          // the receiver consumed something while this send was outstanding: it really waited
          if (received > seen) waitedSends++;
          sentBytes += m.length;
          maxAhead = Math.max(maxAhead, sentBytes - receivedBytes);
        }
      })();
      await within(sender, 30_000, '20 MiB of sends');
      await expect.poll(() => received, { timeout: 20_000 }).toBe(sizes.length);
      expect(bad).toBe(0);
      expect(receivedBytes).toBe(TOTAL);
      expect(outstanding).toBe(0);
      expect(waitedSends).toBeGreaterThan(0);
      // the sender never ran far ahead of the receiver: the transport held it back
      expect(maxAhead).toBeLessThan(16 * 1024 * 1024);
    });

    it('3. close reaches the other side; send after close rejects with HnError closed', async () => {
      const { ports } = await kind.pair();
      const [a, b] = ports;
      const ca = collect(a);
      const cb = collect(b);
      await a.send(utf8('last words'));
      await expect.poll(() => cb.got.length, { timeout: 5000 }).toBe(1);
      a.close('test close');
      expect(a.closed).toBe(true);
      const early = a.send(utf8('too late'));
      await expect(early).rejects.toBeInstanceOf(HnError);
      await expect(early).rejects.toMatchObject({ code: 'closed' });
      await expect.poll(() => cb.closed(), { timeout: 5000 }).not.toBeNull();
      await expect.poll(() => ca.closed(), { timeout: 5000 }).not.toBeNull();
      expect(b.closed).toBe(true);
      await expect(b.send(utf8('also too late'))).rejects.toMatchObject({ code: 'closed' });
      expect(cb.got.length).toBe(1);
      // a close listener registered after the fact is told too
      await within(new Promise<string>((r) => b.onClose(r)), 2000, 'late onClose');
    });

    it('4. LinkMux: 1 MiB CONTROL and 1 MiB+ X08 messages fragment and reassemble exactly', async () => {
      const { ports } = await kind.pair();
      const [a, b] = ports;
      const ma = new LinkMux(a);
      const mb = new LinkMux(b);
      const ctlA: Record<string, unknown>[] = [];
      const ctlB: Record<string, unknown>[] = [];
      ma.onControl((m) => ctlA.push(m));
      mb.onControl((m) => ctlB.push(m));
      const bigControl = (tag: string) => {
        const m = { type: 'test.big', tag, pad: '' };
        m.pad = 'x'.repeat(CONTROL_CAP - utf8(JSON.stringify(m)).length);
        expect(utf8(JSON.stringify(m)).length).toBe(CONTROL_CAP);
        return m;
      };
      const frag = Math.min(65536, a.maxMessageBytes) - 12;
      const sizes = [1024 * 1024 + 1, X08_CAP, 1, frag, frag + 1, 2 * frag, 1024 * 1024];
      const ids = [7, 0xffffffff];
      const outs = new Map<string, Uint8Array[]>();
      const ins = new Map<string, Uint8Array[]>();
      let seed = 100;
      for (const [dir, from, to] of [
        ['ab', ma, mb],
        ['ba', mb, ma],
      ] as const) {
        for (const id of ids) {
          const got: Uint8Array[] = [];
          to.channel(id).onMessage((m) => got.push(m));
          ins.set(`${dir}:${id}`, got);
          outs.set(
            `${dir}:${id}`,
            sizes.map((n) => pattern(n, seed++)),
          );
          void from;
        }
      }
      const jobs: Promise<void>[] = [ma.sendControl(bigControl('a')), mb.sendControl(bigControl('b'))];
      for (const [dir, from] of [
        ['ab', ma],
        ['ba', mb],
      ] as const)
        for (const id of ids) {
          const ch = from.channel(id);
          for (const m of outs.get(`${dir}:${id}`)!) jobs.push(ch.send(m));
        }
      await within(Promise.all(jobs), 20_000, 'mux sends');
      await expect
        .poll(
          () => [...ins.values()].every((g) => g.length === sizes.length) && ctlA.length + ctlB.length === 2,
          {
            timeout: 15_000,
          },
        )
        .toBe(true);
      expect(ctlB).toEqual([bigControl('a')]);
      expect(ctlA).toEqual([bigControl('b')]);
      for (const [k, sent] of outs) {
        const got = ins.get(k)!;
        expect(got.map((m) => m.length)).toEqual(sizes);
        for (let i = 0; i < sent.length; i++) expect(same(got[i]!, sent[i]!)).toBe(true);
      }
      expect(ma.closed || mb.closed).toBe(false);
    });

    const corruptions: [string, () => Uint8Array][] = [
      [
        'unknown kind',
        () => {
          const f = encodeLinkFrame({
            kind: KIND_CONTROL,
            more: false,
            channel: 0,
            msgNo: 2,
            payload: utf8('{"type":"x"}'),
          });
          f[1] = 0x07;
          return f;
        },
      ],
      [
        'msg_no gap',
        () =>
          encodeLinkFrame({
            kind: KIND_CONTROL,
            more: false,
            channel: 0,
            msgNo: 3,
            payload: utf8('{"type":"x"}'),
          }),
      ],
    ];
    it.each(corruptions)(
      '4. a corrupted frame (%s) written raw to the port closes the link',
      async (_what, frame) => {
        const { ports } = await kind.pair();
        const [a, b] = ports;
        const ma = new LinkMux(a);
        const mb = new LinkMux(b);
        const got: Record<string, unknown>[] = [];
        mb.onControl((m) => got.push(m));
        let closedA: string | null = null;
        let closedB: string | null = null;
        ma.onClose((r) => (closedA = r));
        mb.onClose((r) => (closedB = r));
        await ma.sendControl({ type: 'test.first' });
        await a.send(frame());
        await expect.poll(() => closedB, { timeout: 5000 }).toMatch(/^protocol: /);
        await expect.poll(() => closedA, { timeout: 5000 }).not.toBeNull();
        expect(got).toEqual([{ type: 'test.first' }]);
        await expect.poll(() => a.closed && b.closed, { timeout: 5000 }).toBe(true);
        await expect(ma.sendControl({ type: 'test.after' })).rejects.toMatchObject({ code: 'closed' });
      },
    );

    it('5. two nodes handshake over the link, call, stream and sync', async () => {
      const A = await node();
      const B = await member(A);
      registerCounter(B);
      const a1 = await A.events.append('test.link.before', { from: 'a' });
      const b1 = await B.events.append('test.link.before', { from: 'b' });
      const [sa, sb] = await linkNodes(kind, A, B);
      expect(sa.peer).toBe(B.id);
      expect(sb.peer).toBe(A.id);
      expect(A.peers()).toEqual([expect.objectContaining({ id: B.id, link: kind.name, state: 'open' })]);
      expect(B.peers()).toEqual([expect.objectContaining({ id: A.id, link: kind.name, state: 'open' })]);
      // remote call
      await remoteVersionCall(A, B);
      await remoteVersionCall(B, A);
      // stream (more frames than the ack window)
      const frames: { event: string; data: any }[] = [];
      for await (const f of A.stream('llm.count', { n: 40 }, { peer: B.id })) frames.push(f);
      expect(frames.filter((f) => f.event === 'tick').map((f) => f.data.i)).toEqual(
        Array.from({ length: 40 }, (_, i) => i + 1),
      );
      expect(frames.at(-1)).toEqual({ event: 'done', data: { total: 40 } });
      // sync: events from before the link cross both ways (the node may also sync by itself when
      // peers meet; either way, after an explicit sync both logs hold the same events)
      await within(A.events.sync(B.id), 10_000, 'sync');
      expect(await A.events.get(b1.event_id)).toBeTruthy();
      expect(await B.events.get(a1.event_id)).toBeTruthy();
      expect(await A.events.count()).toBe(await B.events.count());
      expect(await within(B.events.sync(A.id), 10_000, 'second sync')).toEqual({ sent: 0, received: 0 });
      // live push after sync
      const a2 = await A.events.append('test.link.live', { n: 2 });
      await expect.poll(async () => !!(await B.events.get(a2.event_id)), { timeout: 5000 }).toBe(true);
    });

    it('6. three peers: events reach everyone, C calls A, closing B leaves A–C working', async () => {
      const A = await node();
      const B = await member(A);
      const C = await member(A);
      await linkNodes(kind, A, B);
      await linkNodes(kind, B, C);
      await linkNodes(kind, A, C);
      expect(openPeers(A).sort()).toEqual([B.id, C.id].sort());
      expect(openPeers(B).sort()).toEqual([A.id, C.id].sort());
      expect(openPeers(C).sort()).toEqual([A.id, B.id].sort());
      const ev = await A.events.append('test.link.three', { n: 1 });
      await expect
        .poll(async () => !!(await B.events.get(ev.event_id)) && !!(await C.events.get(ev.event_id)), {
          timeout: 5000,
        })
        .toBe(true);
      await remoteVersionCall(C, A);
      await B.close();
      await expect.poll(() => openPeers(A), { timeout: 5000 }).toEqual([C.id]);
      await expect.poll(() => openPeers(C), { timeout: 5000 }).toEqual([A.id]);
      await expect(A.call('protocol.version.list', {}, { peer: B.id })).rejects.toMatchObject({
        code: 'partition',
      });
      await remoteVersionCall(C, A);
      await remoteVersionCall(A, C);
      const ev2 = await C.events.append('test.link.three', { n: 2 });
      await expect.poll(async () => !!(await A.events.get(ev2.event_id)), { timeout: 5000 }).toBe(true);
    });

    const refusedCleanly = async (A: HearthNode, B: HearthNode, lp: LinkPair) => {
      // whatever the other half did, no session stays open and the link is torn down
      await expect.poll(() => openPeers(A).length + openPeers(B).length, { timeout: 5000 }).toBe(0);
      await expect.poll(() => lp.ports[0].closed && lp.ports[1].closed, { timeout: 5000 }).toBe(true);
      await expect(B.call('protocol.version.list', {}, { peer: A.id })).rejects.toMatchObject({
        code: 'partition',
      });
      await expect(A.call('protocol.version.list', {}, { peer: B.id })).rejects.toMatchObject({
        code: 'partition',
      });
    };

    it('7. a side presenting a wrong link binding is refused', async () => {
      const A = await node();
      const B = await member(A);
      const lp = await kind.pair();
      const [ra, rb] = await within(
        Promise.allSettled([
          A.connect(lp.ports[0], lp.forged(0, B.id)),
          B.connect(lp.ports[1], lp.info(1, A.id)),
        ]),
        12_000,
        'refused handshake',
      );
      expect(rb.status).toBe('rejected');
      expect(ra.status).toBe('rejected');
      await refusedCleanly(A, B, lp);
      expect(
        A.metrics.get('hearthnet_signature_failures_total', { reason: 'link_auth' }) +
          B.metrics.get('hearthnet_signature_failures_total', { reason: 'link_auth' }),
      ).toBeGreaterThan(0);
    });

    it('7. a non-member of an invite-only community is refused', async () => {
      const A = await node({ config: { community: { admission: 'invite' } } });
      const B = await member(A);
      const lp = await kind.pair();
      const [ra] = await within(
        Promise.allSettled([
          A.connect(lp.ports[0], lp.info(0, B.id)),
          B.connect(lp.ports[1], lp.info(1, A.id)),
        ]),
        12_000,
        'refused handshake',
      );
      expect(ra.status).toBe('rejected');
      expect((ra as PromiseRejectedResult).reason).toMatchObject({ code: 'unauthorized' });
      await refusedCleanly(A, B, lp);
      expect(A.metrics.get('hearthnet_signature_failures_total', { reason: 'link_auth' })).toBeGreaterThan(0);
    });
  });
}

// ---------------------------------------------------------------------------------------
// Small-frame ports (parameterised by SmallFrameCaps)
// ---------------------------------------------------------------------------------------

/** `got` is `sent` (lossless) or an in-order subsequence of it (lossy), each message byte-identical. */
function expectDelivered(got: Uint8Array[], sent: Uint8Array[], lossy: boolean) {
  if (!lossy) {
    expect(got.length).toBe(sent.length);
    for (let i = 0; i < sent.length; i++) expect(same(got[i]!, sent[i]!)).toBe(true);
    return;
  }
  let j = 0;
  for (const g of got) {
    while (j < sent.length && !same(g, sent[j]!)) j++;
    expect(j, 'a delivered frame out of order, duplicated or corrupted').toBeLessThan(sent.length);
    j++;
  }
}

function smallFrameSuite(kind: SmallFrameKind): void {
  const { frameBytes: F, maxPending, lossy } = kind.caps;
  describe(`link acceptance (small frames, ${F} B): ${kind.name}`, () => {
    it('1. frames arrive in order and byte-identical, each direction in turn (half duplex)', async () => {
      const { ports } = await kind.pair();
      const [a, b] = ports;
      expect(a.maxMessageBytes).toBe(F);
      expect(b.maxMessageBytes).toBe(F);
      const ra = collect(a);
      const rb = collect(b);
      let seed = 1;
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }), async (nab, nba) => {
          const ab = Array.from({ length: nab }, () => pattern(F, seed++));
          const ba = Array.from({ length: nba }, () => pattern(F, seed++));
          ra.got.length = 0;
          rb.got.length = 0;
          for (const m of ab) await within(a.send(m), 20_000, 'send a→b');
          await expect.poll(() => rb.got.length, { timeout: 10_000 }).toBe(lossy ? rb.got.length : nab);
          for (const m of ba) await within(b.send(m), 20_000, 'send b→a');
          await expect.poll(() => ra.got.length, { timeout: 10_000 }).toBe(lossy ? ra.got.length : nba);
          expectDelivered(rb.got, ab, lossy);
          expectDelivered(ra.got, ba, lossy);
        }),
        { numRuns: 3, seed: 42, endOnFailure: true },
      );
      expect(ra.closed()).toBeNull();
      expect(rb.closed()).toBeNull();
    });

    it('2. a message of any other size rejects with bad_request, nothing reaches the air, the port stays usable', async () => {
      const { ports } = await kind.pair();
      const [a, b] = ports;
      const rb = collect(b);
      for (const n of [0, 1, F - 1, F + 1, 2 * F, 64 * 1024]) {
        const p = a.send(new Uint8Array(n));
        await expect(p, `${n} bytes`).rejects.toBeInstanceOf(HnError);
        await expect(p).rejects.toMatchObject({ code: 'bad_request' });
      }
      const ok = pattern(F, 99);
      await within(a.send(ok), 20_000, 'valid send');
      await expect.poll(() => rb.got.length, { timeout: 10_000 }).toBe(1);
      expect(same(rb.got[0]!, ok)).toBe(true);
      expect(a.closed || b.closed).toBe(false);
    });

    it('3. bounded buffering: send waits for the air; past maxPending it rejects with capacity_exceeded', async () => {
      const { ports } = await kind.pair();
      const [a, b] = ports;
      const rb = collect(b);
      const msgs = Array.from({ length: maxPending + 3 }, (_, i) => pattern(F, 200 + i));
      let settledEarly = 0;
      const sends = msgs.map((m) => a.send(m));
      for (const p of sends.slice(0, maxPending))
        p.then(
          () => settledEarly++,
          () => settledEarly++,
        );
      // a frame needs the stick's answer and its time on air: no accepted send is done at once
      for (let i = 0; i < 5; i++) await Promise.resolve();
      expect(settledEarly).toBe(0);
      const out = await within(Promise.allSettled(sends), 60_000, 'queued sends');
      const ok = out.filter((r) => r.status === 'fulfilled').length;
      expect(ok).toBe(maxPending);
      for (const r of out.slice(maxPending)) {
        expect(r.status).toBe('rejected');
        expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'capacity_exceeded' });
      }
      await expect.poll(() => rb.got.length, { timeout: 10_000 }).toBe(lossy ? rb.got.length : maxPending);
      expectDelivered(rb.got, msgs.slice(0, maxPending), lossy);
      // the queue drained: the port takes frames again
      await within(a.send(pattern(F, 300)), 20_000, 'send after the queue drained');
    });

    it('4. garbage on the line is counted and the de-framer resyncs; the port stays open', async () => {
      const lp = await kind.pair();
      const [a, b] = lp.ports;
      const rb = collect(b);
      const before = lp.malformed(1);
      const noise = pattern(300, 5);
      lp.garbage(1, noise);
      lp.garbage(
        1,
        new Uint8Array([0x94, 0xc3, 0xff, 0xff, 0x0a, 0x2b, 0x48, 0x4e, 0x52, 0x58, 0x3a, 0x0d, 0x0a]),
      );
      await expect.poll(() => lp.malformed(1), { timeout: 5000 }).toBeGreaterThan(before);
      expect(rb.got).toEqual([]);
      const m = pattern(F, 77);
      await within(a.send(m), 20_000, 'send after garbage');
      await expect.poll(() => rb.got.length, { timeout: 10_000 }).toBe(1);
      expect(same(rb.got[0]!, m)).toBe(true);
      expect(b.closed).toBe(false);
    });

    it('5. close: onClose fires, later sends reject with closed, a late listener is told', async () => {
      const { ports } = await kind.pair();
      const [a, b] = ports;
      const ca = collect(a);
      const cb = collect(b);
      a.close('test close');
      expect(a.closed).toBe(true);
      await expect.poll(() => ca.closed(), { timeout: 5000 }).not.toBeNull();
      const late = a.send(pattern(F, 1));
      await expect(late).rejects.toBeInstanceOf(HnError);
      await expect(late).rejects.toMatchObject({ code: 'closed' });
      await within(new Promise<string>((r) => a.onClose(r)), 2000, 'late onClose');
      if (kind.caps.closePropagates) {
        await expect.poll(() => cb.closed(), { timeout: 5000 }).not.toBeNull();
        await expect(b.send(pattern(F, 2))).rejects.toMatchObject({ code: 'closed' });
      } else {
        // nothing to tear down on air: the other side stays open and may still transmit
        expect(b.closed).toBe(false);
        await within(b.send(pattern(F, 3)), 20_000, 'the other side still sends');
        expect(cb.closed()).toBeNull();
        expect(ca.got).toEqual([]); // a closed port delivers nothing
      }
    });
  });
}
