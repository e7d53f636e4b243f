/**
 * X08 frames through link fragments without joins (issue #11): the sender cuts header + tensor bytes into link
 * fragments straight from the parts, the receiver decodes a frame from the fragments it came in and copies the
 * tensor bytes straight into place. Everything here must equal the joined path: the same link frames on the wire,
 * the same decoded frame, the same error for every bad input.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { bytesEqual } from '../../engine/core/encoding.js';
import type { Dtype, NodeID, Tensor } from '../../engine/core/types.js';
import { keyPairFromSeed } from '../../engine/identity/identity.js';
import { LinkMux, decodeLinkFrame } from '../../engine/net/frames.js';
import { memoryPortPair, type BytePort } from '../../engine/net/port.js';
import {
  FLAG_FINAL,
  FrameType,
  X08Error,
  decodeFrame,
  encodeDataHead,
  encodeFrame,
  encodeRaw,
  type X08Frame,
} from '../../engine/transport/tensor/frame.js';
import { decodeFrameParts } from '../../engine/transport/tensor/frame-parts.js';
import { Reassembly } from '../../engine/transport/tensor/reassembly.js';
import { TensorSession } from '../../engine/transport/tensor/session.js';
import {
  PURPOSE_SHARD_FORWARD,
  SessionTokenRegistry,
  checkSessionHello,
  mintSessionToken,
} from '../../engine/tokens/session.js';

const join = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};
/** `b` cut at the given (sorted, deduplicated) offsets; empty pieces allowed, as a peer may send them */
const split = (b: Uint8Array, cuts: number[]) => {
  const at = [0, ...cuts.map((c) => c % (b.length + 1)).sort((x, y) => x - y), b.length];
  return at.slice(1).map((end, i) => b.subarray(at[i]!, end));
};
const bytes = (n: number, s = 1) => {
  const out = new Uint8Array(n);
  let x = s >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
};
/** outcome of a decode: the frame with its data joined, or the error's reason and message */
function outcome(run: () => { frame: X08Frame; rest: Uint8Array[] }): unknown {
  try {
    const { frame, rest } = run();
    if (frame.type === FrameType.TENSOR_DATA)
      return { ...frame, data: Array.from(join([frame.data, ...rest])) };
    expect(rest).toEqual([]);
    return JSON.parse(
      JSON.stringify(frame, (_k, v: unknown) => (v instanceof Uint8Array ? Array.from(v) : v)),
    );
  } catch (e) {
    expect(e).toBeInstanceOf(X08Error);
    return { error: (e as X08Error).reason, message: (e as Error).message };
  }
}
type DataFrame = Extract<X08Frame, { type: typeof FrameType.TENSOR_DATA }>;
const dataFrame = (data: Uint8Array, shape = [data.length / 2], dtype: Dtype = 'fp16'): DataFrame => ({
  type: FrameType.TENSOR_DATA,
  seq: 9,
  flags: FLAG_FINAL,
  tensorId: 3,
  dtype,
  shape,
  data,
});

describe('X08 frame in parts = X08 frame joined', () => {
  it('encodeDataHead + data is byte-identical to encodeFrame (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 0xffffffff }), { minLength: 1, maxLength: 8 }),
        fc.uint8Array({ minLength: 1, maxLength: 300 }),
        fc.integer({ min: 0, max: 0xffff }),
        (shape, data, tensorId) => {
          const f = { ...dataFrame(data, shape, 'int8'), tensorId };
          expect(bytesEqual(join([encodeDataHead(f), data]), encodeFrame(f))).toBe(true);
        },
      ),
    );
    // and it refuses what encodeFrame refuses
    expect(() => encodeDataHead({ ...dataFrame(bytes(4)), flags: 0x10 })).toThrow(X08Error);
    expect(() => encodeDataHead({ ...dataFrame(bytes(4)), shape: [] })).toThrow(X08Error);
  });

  it('valid frames of every type, split anywhere: the same frame (property)', () => {
    const frames: Uint8Array[] = [
      encodeFrame(dataFrame(bytes(600), [1, 300])),
      encodeFrame(dataFrame(bytes(2), [1, 1, 1, 1, 1, 1, 1, 1])),
      encodeFrame({ type: FrameType.TENSOR_END, seq: 2, flags: 0, tensorId: 7 }),
      encodeFrame({ type: FrameType.ACK, seq: 5, flags: 0 }),
      encodeFrame({ type: FrameType.CONTROL_BYE, seq: 5, flags: 0, reason: 'cancelled now' }),
      encodeFrame({ type: FrameType.CONTROL_FLOWCTL, seq: 5, flags: 0, window: 8, credits_added: 2 }),
      encodeFrame({ type: FrameType.CONTROL_PING, seq: 5, flags: 0, nonce: bytes(8) }),
    ];
    fc.assert(
      fc.property(fc.nat(frames.length - 1), fc.array(fc.nat(), { maxLength: 5 }), (i, cuts) => {
        const b = frames[i]!;
        expect(outcome(() => decodeFrameParts(split(b, cuts)))).toEqual(
          outcome(() => ({ frame: decodeFrame(b), rest: [] })),
        );
      }),
      { numRuns: 2000 },
    );
  });

  it('fuzz: random and mutated bytes, split anywhere → the same frame or the same X08Error', () => {
    const base = encodeFrame(dataFrame(bytes(200), [2, 50]));
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 120 }),
          fc
            .tuple(
              fc.integer({ min: 0, max: 12 }),
              fc.integer({ min: 0, max: 15 }),
              fc.uint8Array({ maxLength: 80 }),
            )
            .map(([t, fl, body]) => encodeRaw(t, 1, fl, body)),
          fc
            .tuple(
              fc.array(fc.tuple(fc.nat(base.length - 1), fc.nat(255)), { maxLength: 4 }),
              fc.integer({ min: -30, max: 30 }),
            )
            .map(([flips, resize]) => {
              const b = new Uint8Array(Math.max(0, base.length + resize));
              b.set(base.subarray(0, Math.min(b.length, base.length)));
              for (const [at, v] of flips) if (at < b.length) b[at] = v;
              return b;
            }),
        ),
        fc.array(fc.nat(), { maxLength: 4 }),
        fc.integer({ min: 1, max: 400 }),
        (b, cuts, max) => {
          const opts = { maxPayloadBytes: max };
          expect(outcome(() => decodeFrameParts(split(b, cuts), opts))).toEqual(
            outcome(() => ({ frame: decodeFrame(b, opts), rest: [] })),
          );
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('reassembly from pieces equals reassembly from joined chunks; over-long pieces are refused whole', () => {
    const data = bytes(1000, 5);
    const f = (d: Uint8Array, flags = 0) => ({ ...dataFrame(d, [500]), flags, data: d });
    const whole = new Reassembly();
    whole.add(f(data.subarray(0, 600)), 600, 4, 1 << 20);
    whole.add(f(data.subarray(600), FLAG_FINAL), 600, 4, 1 << 20);
    const pieces = new Reassembly();
    pieces.add(f(data.subarray(0, 10)), 600, 4, 1 << 20, [data.subarray(10, 300), data.subarray(300, 600)]);
    pieces.add(f(data.subarray(600, 600), FLAG_FINAL), 600, 4, 1 << 20, [data.subarray(600)]);
    expect(bytesEqual(pieces.end(3).data, whole.end(3).data)).toBe(true);
    // a chunk over max_chunk_bytes counts its pieces too; nothing is stored
    const r = new Reassembly();
    expect(() => r.add(f(data.subarray(0, 10)), 600, 4, 1 << 20, [data.subarray(10, 700)])).toThrow(
      expect.objectContaining({ reason: 'bad_frame' }),
    );
    expect(r.bytes).toBe(0);
    // and more than the shape declares, counted over the pieces
    const s = new Reassembly();
    s.add(f(data.subarray(0, 500)), 600, 4, 1 << 20);
    expect(() => s.add(f(data.subarray(0, 10)), 600, 4, 1 << 20, [data.subarray(10, 501)])).toThrow(
      expect.objectContaining({ reason: 'shape_mismatch' }),
    );
  });
});

/** A BytePort that records what it is asked to send (the LinkMux under test writes into it). */
function recordingPort(maxMessageBytes = 65536): BytePort & { sent: Uint8Array[] } {
  const sent: Uint8Array[] = [];
  return {
    sent,
    send: async (m) => void sent.push(m.slice()),
    onMessage: () => {},
    onClose: () => {},
    close: () => {},
    closed: false,
    maxMessageBytes,
  };
}

describe('LinkMux channel: sendParts / onMessageParts', () => {
  it('sendParts puts on the wire exactly the link frames of send(join(parts)) (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 70_000 }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 40, max: 65536 }),
        async (sizes, max) => {
          const parts = sizes.map((n, i) => bytes(n, i + 1));
          const a = recordingPort(max);
          const b = recordingPort(max);
          await new LinkMux(a).channel(5).sendParts(parts);
          await new LinkMux(b).channel(5).send(join(parts));
          expect(a.sent.length).toBe(b.sent.length);
          a.sent.forEach((f, i) => expect(bytesEqual(f, b.sent[i]!)).toBe(true));
          for (const f of a.sent) expect(f.length).toBeLessThanOrEqual(max);
          expect(bytesEqual(join(a.sent.map((f) => decodeLinkFrame(f).payload)), join(parts))).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('a message in fragments reaches onMessageParts as its fragments, onMessage joined; early ones too', async () => {
    const [pa, pb] = memoryPortPair({ maxMessageBytes: 65536, highWaterBytes: 8 << 20 });
    const ma = new LinkMux(pa);
    const mb = new LinkMux(pb);
    const msgs = [bytes(1, 1), bytes(65524, 2), bytes(200_000, 3), bytes(70_000, 4)];
    // channel 1: receiver registered late (messages wait as early ones); channel 2: joined delivery
    const c1 = mb.channel(1);
    const c2 = mb.channel(2);
    for (const m of msgs) await ma.channel(1).send(m);
    for (const m of msgs) await ma.channel(2).send(m);
    await new Promise((r) => setTimeout(r, 20));
    const got1: Uint8Array[][] = [];
    const got2: Uint8Array[] = [];
    c1.onMessageParts((p) => got1.push(p));
    c2.onMessage((m) => got2.push(m));
    await new Promise((r) => setTimeout(r, 20));
    expect(got1.map((p) => p.length)).toEqual([1, 1, 4, 2]);
    got1.forEach((p, i) => expect(bytesEqual(join(p), msgs[i]!)).toBe(true));
    got2.forEach((m, i) => expect(bytesEqual(m, msgs[i]!)).toBe(true));
    expect(got2.length).toBe(4);
    ma.close();
  });
});

describe('X08 session on a link channel (fragments, no joins)', () => {
  const HOST = keyPairFromSeed(new Uint8Array(32).fill(1));
  const CALLER = keyPairFromSeed(new Uint8Array(32).fill(2));
  const COMMUNITY = keyPairFromSeed(new Uint8Array(32).fill(9)).nodeId;
  const membership = (id: NodeID) => (id === HOST.nodeId || id === CALLER.nodeId ? 'trusted' : null);

  async function linkPair(compression: 'zstd' | 'none') {
    const [pa, pb] = memoryPortPair({ maxMessageBytes: 65536, highWaterBytes: 8 << 20 });
    const ma = new LinkMux(pa);
    const mb = new LinkMux(pb);
    const wire: Uint8Array[] = [];
    const send = pa.send.bind(pa);
    pa.send = (m) => (wire.push(m), send(m));
    const registry = new SessionTokenRegistry();
    const minted = mintSessionToken(HOST, {
      caller: CALLER.nodeId,
      communityId: COMMUNITY,
      membership,
      registry,
    });
    const [server, client] = await Promise.all([
      TensorSession.accept(mb.channel(1), {
        local: HOST.nodeId,
        peer: CALLER.nodeId,
        expectedPurpose: PURPOSE_SHARD_FORWARD,
        validateToken: (tok, hello) =>
          checkSessionHello(tok, hello, {
            self: HOST.nodeId,
            linkPeer: CALLER.nodeId,
            linkKind: 'memory',
            communityId: COMMUNITY,
            membership,
            registry,
          }),
        config: { compression_threshold_bytes: 1024 },
      }),
      TensorSession.connect(ma.channel(1), minted.token, {
        sessionId: minted.sessionId,
        purpose: PURPOSE_SHARD_FORWARD,
        local: CALLER.nodeId,
        remote: HOST.nodeId,
        config: { compression_threshold_bytes: 1024 },
        negotiation: { compression },
      }),
    ]);
    return { server, client, ma, wire };
  }

  it('tensors of every size arrive intact, frames on the wire are the spec frames, cut at 64 KiB', async () => {
    const { server, client, ma, wire } = await linkPair('none');
    const sizes = [2, 4096, 65488, 65536, 262144, 1 << 20, (1 << 20) + 6];
    for (const [i, n] of sizes.entries()) {
      const t: Tensor = { dtype: 'fp16', shape: [n / 2], data: bytes(n, i + 3) };
      wire.length = 0;
      const got = server.recvTensor();
      await client.sendTensor(i, t);
      const r = await got;
      expect(r.tensorId).toBe(i);
      expect(bytesEqual(r.tensor.data, t.data)).toBe(true);
      // rebuild the X08 frames from the link fragments: each one decodes as the spec frame of that chunk
      const x08: Uint8Array[] = [];
      let cur: Uint8Array[] = [];
      for (const w of wire) {
        const lf = decodeLinkFrame(w);
        expect(w.length).toBeLessThanOrEqual(65536);
        if (lf.kind !== 2) continue;
        cur.push(lf.payload);
        if (lf.more) continue;
        x08.push(join(cur));
        cur = [];
      }
      const data = x08.map((b) => decodeFrame(b)).filter((f) => f.type === FrameType.TENSOR_DATA);
      expect(data.length).toBe(Math.ceil(n / 262144));
      expect(bytesEqual(join(data.map((f) => (f as { data: Uint8Array }).data)), t.data)).toBe(true);
    }
    expect(client.stats.bytes_sent).toBeGreaterThan(sizes.reduce((a, b) => a + b, 0));
    expect(server.stats.bytes_received).toBe(client.stats.bytes_sent);
    ma.close();
  });

  it('zstd-compressed tensors arrive intact through fragments', async () => {
    const { server, client, ma } = await linkPair('zstd');
    expect(client.negotiated?.compression).toBe('zstd');
    const data = new Uint8Array(600_000).map((_, i) => (i >> 9) & 0xff);
    const got = server.recvTensor();
    await client.sendTensor(1, { dtype: 'int8', shape: [600_000], data });
    expect(bytesEqual((await got).tensor.data, data)).toBe(true);
    expect(client.stats.bytes_compressed_out).toBeLessThan(data.length);
    ma.close();
  });

  it('a bad frame in fragments closes the session with the same NACK as a joined one', async () => {
    const { server, client, ma } = await linkPair('none');
    // a TENSOR_DATA whose payload_length lies (one byte short), 100 KiB: crosses the link in two fragments
    const good = encodeFrame({ ...dataFrame(bytes(100_000)), seq: 2 });
    new DataView(good.buffer).setUint32(8, good.length - 17);
    const closed = new Promise((r) => server.onClose(r));
    const clientClosed = new Promise((r) => client.onClose(r));
    await ma.channel(1).send(good);
    expect(await closed).toMatchObject({ reason: 'bad_frame', by: 'local', error: true });
    expect(server.bufferedBytes).toBe(0);
    expect(await clientClosed).toMatchObject({ reason: 'bad_frame', by: 'remote' });
    ma.close();
  });
});
