/**
 * X08 sessions over in-memory ports: happy paths, flow control, keepalive/lifetime (fake clock), and every
 * bad-input case of digest A4 — each closing only its own session while a second session keeps working.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { bytesEqual } from '../../engine/core/encoding.js';
import { HnError } from '../../engine/core/errors.js';
import type { Dtype, NodeID, Tensor } from '../../engine/core/types.js';
import { ulid } from '../../engine/core/ulid.js';
import { keyPairFromSeed } from '../../engine/identity/identity.js';
import { memoryPortPair, type BytePort } from '../../engine/net/port.js';
import { initZstd, zstdCompress } from '../../engine/transport/tensor/compress.js';
import { fromFloat32, toFloat32 } from '../../engine/transport/tensor/dtype.js';
import {
  FLAG_COMPRESSED,
  FLAG_FINAL,
  FrameType,
  X08Error,
  decodeFrame,
  encodeFrame,
  encodeRaw,
  type HelloMsg,
  type X08Frame,
} from '../../engine/transport/tensor/frame.js';
import {
  TensorSession,
  type Clock,
  type TensorTransportConfig,
} from '../../engine/transport/tensor/session.js';
import {
  PURPOSE_SHARD_FORWARD,
  SessionTokenRegistry,
  checkSessionHello,
  mintSessionToken,
  type LinkKind,
} from '../../engine/tokens/session.js';

const seed = (n: number) => new Uint8Array(32).fill(n);
const HOST = keyPairFromSeed(seed(1));
const CALLER = keyPairFromSeed(seed(2));
const STRANGER = keyPairFromSeed(seed(3));
const COMMUNITY = keyPairFromSeed(seed(9)).nodeId;
const membership = (id: NodeID) =>
  id === HOST.nodeId || id === CALLER.nodeId || id === STRANGER.nodeId ? 'trusted' : null;
const BIG_PORT = { maxMessageBytes: (1 << 20) + (64 << 10), highWaterBytes: 4 << 20 };

const tick = () => new Promise<void>((r) => setTimeout(r, 0));
async function settle(n = 8): Promise<void> {
  for (let i = 0; i < n; i++) await tick();
}

function randomBytesSeeded(n: number, s = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = s >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function tensorOf(dtype: Dtype, shape: number[], s = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1) * { fp16: 2, fp32: 4, bf16: 2, int8: 1 }[dtype];
  return { dtype, shape, data: randomBytesSeeded(n, s) };
}

class FakeClock implements Clock {
  t = 1_700_000_000_000;
  private id = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  now = () => this.t;
  setTimeout = (fn: () => void, ms: number) => {
    const id = ++this.id;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  };
  clearTimeout = (h: unknown) => {
    this.timers.delete(h as number);
  };
  async advance(ms: number, stepMs = 1000): Promise<void> {
    const end = this.t + ms;
    while (this.t < end) {
      this.t = Math.min(end, this.t + stepMs);
      for (;;) {
        const due = [...this.timers.entries()]
          .filter(([, v]) => v.at <= this.t)
          .sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        this.timers.delete(due[0]);
        due[1].fn();
      }
      await settle(4);
    }
  }
}

interface PairOptions {
  config?: Partial<TensorTransportConfig>;
  serverConfig?: Partial<TensorTransportConfig>;
  clock?: Clock;
  port?: { maxMessageBytes?: number; highWaterBytes?: number };
  linkKind?: LinkKind;
  negotiation?: Partial<HelloMsg['negotiation']>;
}

/** A host (accept) and caller (connect) pair wired through the real session-token check. */
async function openPair(o: PairOptions = {}) {
  const [a, b] = memoryPortPair(o.port ?? BIG_PORT);
  const registry = new SessionTokenRegistry();
  const minted = mintSessionToken(HOST, {
    caller: CALLER.nodeId,
    communityId: COMMUNITY,
    membership,
    registry,
  });
  const [server, client] = await Promise.all([
    TensorSession.accept(b, {
      local: HOST.nodeId,
      peer: CALLER.nodeId,
      expectedPurpose: PURPOSE_SHARD_FORWARD,
      validateToken: (tok, hello) =>
        checkSessionHello(tok, hello, {
          self: HOST.nodeId,
          linkPeer: CALLER.nodeId,
          linkKind: o.linkKind ?? 'memory',
          communityId: COMMUNITY,
          membership,
          registry,
        }),
      config: { ...o.config, ...o.serverConfig },
      ...(o.clock ? { clock: o.clock } : {}),
    }),
    TensorSession.connect(a, minted.token, {
      sessionId: minted.sessionId,
      purpose: PURPOSE_SHARD_FORWARD,
      local: CALLER.nodeId,
      remote: HOST.nodeId,
      config: o.config ?? {},
      ...(o.negotiation ? { negotiation: o.negotiation } : {}),
      ...(o.clock ? { clock: o.clock } : {}),
    }),
  ]);
  return { server, client, a, b };
}

/** A healthy second session used to prove that a failure elsewhere leaves it untouched. */
async function assertStillWorks(p: { server: TensorSession; client: TensorSession }, id = 7): Promise<void> {
  expect(p.server.state).not.toBe('closed');
  const t = tensorOf('fp32', [3, 5], id);
  await p.client.sendTensor(id, t);
  const r = await p.server.recvTensor();
  expect(r.tensorId).toBe(id);
  expect(bytesEqual(r.tensor.data, t.data)).toBe(true);
}

/**
 * A hand-driven initiator: performs a valid HELLO with a real session token, then lets the test send any
 * frame (well-formed or not) to the real server session and see what comes back.
 */
async function rawInitiator(
  o: { config?: Partial<TensorTransportConfig>; negotiation?: Partial<HelloMsg['negotiation']> } = {},
) {
  const [a, b] = memoryPortPair(BIG_PORT);
  const registry = new SessionTokenRegistry();
  const minted = mintSessionToken(HOST, {
    caller: CALLER.nodeId,
    communityId: COMMUNITY,
    membership,
    registry,
  });
  const got: X08Frame[] = [];
  let portClosed = false;
  a.onMessage((m) => got.push(decodeFrame(m)));
  a.onClose(() => (portClosed = true));
  const serverP = TensorSession.accept(b, {
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
    config: o.config ?? {},
  });
  let seq = 0;
  const send = (f: { type: number; flags: number; seq?: number; [k: string]: unknown }) => {
    const s = f.seq ?? ++seq;
    if (f.seq !== undefined) seq = f.seq;
    return a.send(encodeFrame({ ...f, seq: s } as unknown as X08Frame));
  };
  await send({
    type: FrameType.CONTROL_HELLO,
    flags: 0,
    hello: {
      session_id: minted.sessionId,
      session_token: minted.token,
      from: CALLER.nodeId,
      to: HOST.nodeId,
      purpose: PURPOSE_SHARD_FORWARD,
      negotiation: {
        preferred_dtype: 'fp16',
        compression: 'zstd',
        max_chunk_bytes: 262144,
        flow_window: 16,
        ...o.negotiation,
      },
    },
  });
  const server = await serverP;
  await settle();
  return {
    server,
    got,
    send,
    sendBytes: (bytes: Uint8Array) => a.send(bytes),
    nextSeq: () => ++seq,
    get seq() {
      return seq;
    },
    portClosed: () => portClosed,
  };
}

const nacks = (frames: X08Frame[]) =>
  frames
    .filter((f): f is Extract<X08Frame, { type: 4 }> => f.type === FrameType.CONTROL_NACK)
    .map((f) => f.reason);

async function expectClosedWith(server: TensorSession, got: X08Frame[], reason: string): Promise<void> {
  await settle();
  expect(server.state).toBe('closed');
  expect(server.closeInfo).toMatchObject({ reason, by: 'local', error: true });
  expect(nacks(got)).toEqual([reason]);
  expect(server.bufferedBytes).toBe(0);
  await expect(server.recvTensor()).rejects.toBeInstanceOf(X08Error);
}

describe('X08 session: happy paths', () => {
  it('memory loopback: 10 mixed-size tensors arrive intact, stats consistent on both sides', async () => {
    const { server, client } = await openPair();
    const dtypes: Dtype[] = ['fp16', 'fp32', 'bf16', 'int8'];
    const sent: Tensor[] = [];
    for (let i = 0; i < 10; i++) {
      const shape = i === 9 ? [1, 600, 512] : [1 + i, 3 + 17 * i];
      const t =
        i === 8
          ? { dtype: 'fp16' as Dtype, shape: [256, 256], data: new Uint8Array(256 * 256 * 2) }
          : tensorOf(dtypes[i % 4]!, shape, i + 1);
      sent.push(t);
    }
    const sends = sent.map((t, i) => client.sendTensor(i, t, { gradient: i === 3 }));
    for (let i = 0; i < 10; i++) {
      const r = await server.recvTensor();
      expect(r.tensorId).toBe(i);
      expect(r.isGrad).toBe(i === 3);
      expect(r.tensor.dtype).toBe(sent[i]!.dtype);
      expect(r.tensor.shape).toEqual(sent[i]!.shape);
      expect(bytesEqual(r.tensor.data, sent[i]!.data)).toBe(true);
    }
    await Promise.all(sends);
    await client.flush();
    await settle();
    const c = client.stats;
    const s = server.stats;
    expect(c.tensors_sent).toBe(10);
    expect(s.tensors_received).toBe(10);
    expect(c.bytes_sent).toBe(s.bytes_received);
    expect(s.bytes_sent).toBe(c.bytes_received);
    expect(c.frames_sent).toBe(s.frames_received);
    expect(s.frames_sent).toBe(c.frames_received);
    const raw = sent.reduce((a, t) => a + t.data.length, 0);
    expect(c.bytes_uncompressed_out).toBe(raw);
    // the all-zero tensor compresses; random data does not: the gate leaves compression on after the first
    expect(c.bytes_compressed_out).toBeLessThan(raw);
    expect(c.rtt_estimate_ms).toBeGreaterThanOrEqual(0);
    expect(client.state).toBe('streaming');
  });

  it('5 MiB tensor: 1 MiB chunks → 5 TENSOR_DATA + END, 256 KiB default → 20 + END, byte-identical', async () => {
    const data = randomBytesSeeded(5 << 20, 77);
    const t: Tensor = { dtype: 'fp16', shape: [5, 1024, 512], data };
    for (const [chunk, expected] of [
      [1 << 20, 5],
      [262144, 20],
    ] as const) {
      const { server, client } = await openPair({
        config: { chunk_bytes: chunk },
        negotiation: { compression: 'none' },
      });
      expect(client.negotiated!.max_chunk_bytes).toBe(chunk);
      const before = server.stats.frames_received;
      const sending = client.sendTensor(42, t);
      const r = await server.recvTensor();
      await sending;
      expect(bytesEqual(r.tensor.data, data)).toBe(true);
      expect(r.tensor.shape).toEqual([5, 1024, 512]);
      // frames received = data chunks + END (no other frame is sent by the client meanwhile)
      expect(server.stats.frames_received - before).toBe(expected + 1);
      expect(client.stats.frames_sent).toBe(1 + expected + 1); // HELLO + chunks + END
      client.close();
    }
  });

  it('compresses above the threshold with zstd and the receiver restores the exact bytes', async () => {
    const { server, client } = await openPair();
    const vals = new Float32Array(200_000);
    for (let i = 0; i < vals.length; i++) vals[i] = Math.round(Math.sin(i / 50) * 8) / 8;
    const t = fromFloat32(vals, [1, 200_000], 'fp16');
    await client.sendTensor(1, t);
    const r = await server.recvTensor();
    expect(bytesEqual(r.tensor.data, t.data)).toBe(true);
    expect(client.stats.bytes_compressed_out).toBeLessThan(0.9 * t.data.length);
  });

  it('property: random shapes and dtypes round-trip (values equal modulo the dtype precision)', async () => {
    const { server, client } = await openPair();
    let id = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<Dtype>('fp16', 'fp32', 'bf16', 'int8'),
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 1, max: 1 << 30 }),
        async (dtype, shape, s) => {
          const n = shape.reduce((a, b) => a * b, 1);
          const vals = new Float32Array(n);
          const rnd = randomBytesSeeded(n * 4, s);
          for (let i = 0; i < n; i++) vals[i] = ((rnd[4 * i]! << 8) | rnd[4 * i + 1]!) / 1024 - 32;
          const t = fromFloat32(vals, shape, dtype, dtype === 'int8' ? 0.25 : undefined);
          const tid = id++ & 0xffff;
          await client.sendTensor(tid, t);
          const r = await server.recvTensor();
          expect(r.tensorId).toBe(tid);
          expect(bytesEqual(r.tensor.data, t.data)).toBe(true);
          const back = toFloat32(r.tensor, dtype === 'int8' ? 0.25 : undefined);
          const tol = { fp32: 0, fp16: 2 ** -6, bf16: 2 ** -3, int8: 0.125 }[dtype];
          for (let i = 0; i < n; i++)
            expect(Math.abs(back[i]! - vals[i]!)).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(vals[i]!)));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('property: random chunk sizes reassemble identically', async () => {
    const data = randomBytesSeeded(300_001 * 2, 5);
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1000, max: 262144 }), async (chunk) => {
        const { server, client } = await openPair({
          config: { chunk_bytes: chunk },
          negotiation: { compression: 'none' },
        });
        await client.sendTensor(1, { dtype: 'bf16', shape: [300_001], data });
        const r = await server.recvTensor();
        expect(bytesEqual(r.tensor.data, data)).toBe(true);
        expect(client.stats.frames_sent).toBe(1 + Math.ceil(data.length / chunk) + 1);
        client.close();
      }),
      { numRuns: 12 },
    );
  });

  it('interleaved tensors on one session reassemble per tensor_id; both directions work', async () => {
    const r = await rawInitiator();
    const t1 = randomBytesSeeded(40, 1);
    const t2 = randomBytesSeeded(24, 2);
    const d = (tensorId: number, data: Uint8Array, flags: number) =>
      r.send({ type: FrameType.TENSOR_DATA, flags, tensorId, dtype: 'int8', shape: [data.length * 2], data });
    await d(1, t1, 0);
    await d(2, t2, 0);
    await d(1, t1, FLAG_FINAL);
    await d(2, t2, FLAG_FINAL);
    await r.send({ type: FrameType.TENSOR_END, flags: 0, tensorId: 2 });
    await r.send({ type: FrameType.TENSOR_END, flags: 0, tensorId: 1 });
    const a = await r.server.recvTensor();
    const b = await r.server.recvTensor();
    expect(a.tensorId).toBe(2);
    expect(bytesEqual(a.tensor.data, new Uint8Array([...t2, ...t2]))).toBe(true);
    expect(b.tensorId).toBe(1);
    expect(bytesEqual(b.tensor.data, new Uint8Array([...t1, ...t1]))).toBe(true);
    await settle();
    // ACK right after each TENSOR_END, cumulative
    const acks = r.got.filter((f) => f.type === FrameType.ACK).map((f) => f.seq);
    expect(acks.at(-1)).toBe(r.seq);
    // host → caller direction on the same session
    await r.server.sendTensor(9, { dtype: 'int8', shape: [3], data: new Uint8Array([1, 2, 3]) });
    await settle();
    expect(r.got.some((f) => f.type === FrameType.TENSOR_DATA && f.tensorId === 9)).toBe(true);
  });

  it('the ACK of a TENSOR_END goes out after what the receiver sends back in the same turn, and still goes out', async () => {
    const r = await rawInitiator();
    // the receiver answers as a shard host does: as soon as the tensor is complete, in the same event-loop turn
    const answered = r.server
      .recvTensor()
      .then((got) =>
        r.server.sendTensor(got.tensorId, { dtype: 'int8', shape: [2], data: new Uint8Array([7, 8]) }),
      );
    const data = new Uint8Array([1, 2, 3, 4]);
    await r.send({
      type: FrameType.TENSOR_DATA,
      flags: FLAG_FINAL,
      tensorId: 5,
      dtype: 'int8',
      shape: [4],
      data,
    });
    await r.send({ type: FrameType.TENSOR_END, flags: 0, tensorId: 5 });
    await answered;
    await settle();
    const kinds = r.got.filter((f) => f.type !== FrameType.CONTROL_HELLO).map((f) => f.type);
    // one wake-up of the peer carries the answer and the ACK, instead of an ACK alone before the answer
    expect(kinds).toEqual([FrameType.TENSOR_DATA, FrameType.TENSOR_END, FrameType.ACK]);
    expect(r.got.at(-1)).toMatchObject({ type: FrameType.ACK, seq: r.seq });
  });

  it('two sessions on two port pairs run at once without interference', async () => {
    const p1 = await openPair();
    const p2 = await openPair();
    const t1 = tensorOf('fp16', [300, 300], 1);
    const t2 = tensorOf('fp32', [200, 200], 2);
    const s1 = p1.client.sendTensor(1, t1);
    const s2 = p2.client.sendTensor(1, t2);
    const [r1, r2] = await Promise.all([p1.server.recvTensor(), p2.server.recvTensor()]);
    await Promise.all([s1, s2]);
    expect(bytesEqual(r1.tensor.data, t1.data)).toBe(true);
    expect(bytesEqual(r2.tensor.data, t2.data)).toBe(true);
  });
});

describe('X08 flow control', () => {
  /** A hand-driven responder: answers the real client's HELLO and never ACKs unless told to. */
  async function rawResponder(window: number) {
    const [a, b] = memoryPortPair(BIG_PORT);
    const got: X08Frame[] = [];
    let seq = 0;
    let hello: HelloMsg | null = null;
    b.onMessage((m) => {
      const f = decodeFrame(m);
      got.push(f);
      if (f.type === FrameType.CONTROL_HELLO) {
        hello = f.hello;
        void b.send(
          encodeFrame({
            type: FrameType.CONTROL_HELLO,
            seq: ++seq,
            flags: 0,
            hello: {
              ...f.hello,
              session_token: '',
              from: HOST.nodeId,
              to: CALLER.nodeId,
              negotiation: { ...f.hello.negotiation, flow_window: window, compression: 'none' },
            },
          }),
        );
      }
    });
    const client = await TensorSession.connect(a, 'hntoken://v1/unused.by.raw', {
      sessionId: ulid(),
      purpose: PURPOSE_SHARD_FORWARD,
      local: CALLER.nodeId,
      remote: HOST.nodeId,
      config: { chunk_bytes: 1000 },
    });
    expect(hello).not.toBeNull();
    const data = () => got.filter((f) => f.type === FrameType.TENSOR_DATA || f.type === FrameType.TENSOR_END);
    const ack = (upTo: number) => b.send(encodeFrame({ type: FrameType.ACK, seq: upTo, flags: 0 }));
    const flowctl = (w: number, credits: number) =>
      b.send(
        encodeFrame({
          type: FrameType.CONTROL_FLOWCTL,
          seq: ++seq,
          flags: 0,
          window: w,
          credits_added: credits,
        }),
      );
    return { client, got, data, ack, flowctl };
  }

  it('the sender pauses at the window and resumes on ACK and on FLOWCTL credits', async () => {
    const r = await rawResponder(4);
    const t = tensorOf('int8', [10_000], 3); // 10 chunks of 1000 B + END
    let done = false;
    const sending = r.client.sendTensor(1, t).then(() => (done = true));
    await settle();
    expect(r.data()).toHaveLength(4);
    expect(r.client.inFlight).toBe(4);
    await settle();
    expect(r.data()).toHaveLength(4); // still blocked: no timer unblocks a sender
    await r.ack(r.data()[1]!.seq); // ACK the first two → two more may go
    await settle();
    expect(r.data()).toHaveLength(6);
    await r.flowctl(4, 3); // three extra credits until the next ACK
    await settle();
    expect(r.data()).toHaveLength(9);
    await r.ack(r.data()[8]!.seq); // credits end with this ACK: window 4 again
    await settle();
    expect(r.data()).toHaveLength(11); // remaining 2 frames (chunk 10 + END)
    await sending;
    expect(done).toBe(true);
  });

  it('window_overrun: W+1 unacknowledged data frames close the session; a second session is untouched', async () => {
    const other = await openPair();
    // rx limit 1000 → a completed unread 600-byte tensor holds ACKs back (backpressure), so frames pile up unacked
    const r = await rawInitiator({ config: { rx_buffer_bytes_max: 1000 }, negotiation: { flow_window: 4 } });
    const d = (tensorId: number, n: number) =>
      r.send({
        type: FrameType.TENSOR_DATA,
        flags: FLAG_FINAL,
        tensorId,
        dtype: 'int8',
        shape: [n],
        data: new Uint8Array(n),
      });
    const end = (tensorId: number) => r.send({ type: FrameType.TENSOR_END, flags: 0, tensorId });
    await d(1, 600);
    await end(1);
    await d(2, 10);
    await end(2);
    await settle();
    expect(r.server.state).toBe('streaming');
    expect(r.got.filter((f) => f.type === FrameType.ACK)).toHaveLength(0);
    await d(3, 10); // 5th unacked data frame with W = 4
    await expectClosedWith(r.server, r.got, 'window_overrun');
    await assertStillWorks(other);
  });
});

describe('X08 bad input: each closes only its own session with the spec reason', () => {
  it('unknown frame type 0xFF → unknown_frame_type', async () => {
    const other = await openPair();
    const r = await rawInitiator();
    await r.sendBytes(encodeRaw(0xff, r.nextSeq(), 0, null));
    await expectClosedWith(r.server, r.got, 'unknown_frame_type');
    await assertStillWorks(other);
  });

  it('sequence gap → seq_gap', async () => {
    const other = await openPair();
    const r = await rawInitiator();
    await r.send({ type: FrameType.CONTROL_PING, seq: r.seq + 2, flags: 0, nonce: new Uint8Array(8) });
    await expectClosedWith(r.server, r.got, 'seq_gap');
    await assertStillWorks(other);
  });

  it('shape changes mid-tensor → shape_mismatch', async () => {
    const other = await openPair();
    const r = await rawInitiator();
    await r.send({
      type: FrameType.TENSOR_DATA,
      flags: 0,
      tensorId: 1,
      dtype: 'fp16',
      shape: [4, 4],
      data: new Uint8Array(16),
    });
    await r.send({
      type: FrameType.TENSOR_DATA,
      flags: FLAG_FINAL,
      tensorId: 1,
      dtype: 'fp16',
      shape: [4, 5],
      data: new Uint8Array(16),
    });
    await expectClosedWith(r.server, r.got, 'shape_mismatch');
    await assertStillWorks(other);
  });

  it('TENSOR_END without FINAL, and more data than the shape → shape_mismatch', async () => {
    const r1 = await rawInitiator();
    await r1.send({
      type: FrameType.TENSOR_DATA,
      flags: 0,
      tensorId: 1,
      dtype: 'int8',
      shape: [8],
      data: new Uint8Array(8),
    });
    await r1.send({ type: FrameType.TENSOR_END, flags: 0, tensorId: 1 });
    await expectClosedWith(r1.server, r1.got, 'shape_mismatch');
    const r2 = await rawInitiator();
    await r2.send({
      type: FrameType.TENSOR_DATA,
      flags: 0,
      tensorId: 1,
      dtype: 'int8',
      shape: [8],
      data: new Uint8Array(6),
    });
    await r2.send({
      type: FrameType.TENSOR_DATA,
      flags: FLAG_FINAL,
      tensorId: 1,
      dtype: 'int8',
      shape: [8],
      data: new Uint8Array(6),
    });
    await expectClosedWith(r2.server, r2.got, 'shape_mismatch');
  });

  it('more tensors open than the window → shape_mismatch', async () => {
    const r = await rawInitiator({ negotiation: { flow_window: 2 } });
    await r.send({
      type: FrameType.TENSOR_DATA,
      flags: 0,
      tensorId: 1,
      dtype: 'int8',
      shape: [8],
      data: new Uint8Array(1),
    });
    await r.send({
      type: FrameType.TENSOR_DATA,
      flags: 0,
      tensorId: 2,
      dtype: 'int8',
      shape: [8],
      data: new Uint8Array(1),
    });
    await settle();
    await r.send({
      type: FrameType.TENSOR_DATA,
      flags: 0,
      tensorId: 3,
      dtype: 'int8',
      shape: [8],
      data: new Uint8Array(1),
    });
    await expectClosedWith(r.server, r.got, 'shape_mismatch');
  });

  it('corrupt compressed body, and a valid zstd frame of the wrong size → decompress_failed', async () => {
    await initZstd();
    const other = await openPair();
    const good = zstdCompress(new Uint8Array(4096), 3);
    const corrupt = good.slice();
    corrupt[corrupt.length - 3]! ^= 0xff;
    corrupt[8]! ^= 0x55;
    for (const [body, declared] of [
      [corrupt, 4096],
      [good, 2048], // content size ≠ declared
      [randomBytesSeeded(300, 9), 4096], // not zstd at all
    ] as const) {
      const r = await rawInitiator();
      await r.send({
        type: FrameType.TENSOR_DATA,
        flags: FLAG_COMPRESSED | FLAG_FINAL,
        tensorId: 1,
        dtype: 'int8',
        shape: [declared],
        data: body,
      });
      await r.send({ type: FrameType.TENSOR_END, flags: 0, tensorId: 1 });
      await expectClosedWith(r.server, r.got, 'decompress_failed');
    }
    await assertStillWorks(other);
  });

  it('oversized tensor → tensor_too_large on the first chunk, nothing buffered', async () => {
    const other = await openPair();
    const r = await rawInitiator({ config: { rx_buffer_bytes_max: 1 << 20 } });
    await r.send({
      type: FrameType.TENSOR_DATA,
      flags: 0,
      tensorId: 1,
      dtype: 'fp32',
      shape: [512, 513],
      data: new Uint8Array(64),
    });
    await expectClosedWith(r.server, r.got, 'tensor_too_large');
    // shapes whose product overflows any integer are caught by incremental multiplication
    const r2 = await rawInitiator();
    await r2.send({
      type: FrameType.TENSOR_DATA,
      flags: 0,
      tensorId: 1,
      dtype: 'fp32',
      shape: Array(8).fill(0xffffffff),
      data: new Uint8Array(4),
    });
    await expectClosedWith(r2.server, r2.got, 'tensor_too_large');
    // a second tensor that would push the session's reassembly over the limit
    const r3 = await rawInitiator({ config: { rx_buffer_bytes_max: 1000 } });
    await r3.send({
      type: FrameType.TENSOR_DATA,
      flags: 0,
      tensorId: 1,
      dtype: 'int8',
      shape: [600],
      data: new Uint8Array(10),
    });
    await r3.send({
      type: FrameType.TENSOR_DATA,
      flags: 0,
      tensorId: 2,
      dtype: 'int8',
      shape: [600],
      data: new Uint8Array(10),
    });
    await expectClosedWith(r3.server, r3.got, 'tensor_too_large');
    await assertStillWorks(other);
  });

  it('malformed header fields → bad_frame (version, reserved, ENCRYPTED, length, PING size, n_dims, dim 0)', async () => {
    const cases: ((seq: number) => Uint8Array)[] = [
      (s) => encodeRaw(FrameType.CONTROL_PING, s, 0, new Uint8Array(8), 2),
      (s) => {
        const b = encodeRaw(FrameType.CONTROL_PING, s, 0, new Uint8Array(8));
        b[3] = 1;
        return b;
      },
      (s) =>
        encodeRaw(
          FrameType.TENSOR_DATA,
          s,
          0x8,
          encodeFrame({
            type: 1,
            seq: 0,
            flags: 0,
            tensorId: 1,
            dtype: 'int8',
            shape: [1],
            data: new Uint8Array(1),
          }).subarray(16),
        ),
      (s) => encodeRaw(FrameType.CONTROL_PING, s, 0x100, new Uint8Array(8)),
      (s) => {
        const b = encodeRaw(FrameType.CONTROL_PING, s, 0, new Uint8Array(8));
        b[11] = 9;
        return b;
      },
      (s) => encodeRaw(FrameType.CONTROL_PING, s, 0, new Uint8Array(7)),
      (s) => encodeRaw(FrameType.TENSOR_DATA, s, 0, new Uint8Array([0, 1, 4, 0, 1, 2, 3, 4])),
      (s) => encodeRaw(FrameType.TENSOR_DATA, s, 0, new Uint8Array([0, 1, 4, 9, ...new Uint8Array(36), 1])),
      (s) => encodeRaw(FrameType.TENSOR_DATA, s, 0, new Uint8Array([0, 1, 4, 2, 0, 0, 0, 2, 0, 0, 0, 0, 1])),
    ];
    for (const make of cases) {
      const r = await rawInitiator();
      await r.sendBytes(make(r.nextSeq()));
      await expectClosedWith(r.server, r.got, 'bad_frame');
    }
  });

  it('payload above max_chunk_bytes + 36 → bad_frame', async () => {
    const r = await rawInitiator({ negotiation: { max_chunk_bytes: 1024 } });
    await r.send({
      type: FrameType.TENSOR_DATA,
      flags: 0,
      tensorId: 1,
      dtype: 'int8',
      shape: [4096],
      data: new Uint8Array(1025),
    });
    await expectClosedWith(r.server, r.got, 'bad_frame');
  });

  it('TENSOR_DATA before READY → NACK + close (bad_frame)', async () => {
    const [a, b] = memoryPortPair();
    const got: X08Frame[] = [];
    a.onMessage((m) => got.push(decodeFrame(m)));
    const acc = TensorSession.accept(b, {
      local: HOST.nodeId,
      peer: CALLER.nodeId,
      expectedPurpose: PURPOSE_SHARD_FORWARD,
      validateToken: () => {},
    });
    await a.send(
      encodeFrame({
        type: FrameType.TENSOR_DATA,
        seq: 1,
        flags: 0,
        tensorId: 1,
        dtype: 'int8',
        shape: [1],
        data: new Uint8Array(1),
      }),
    );
    await expect(acc).rejects.toMatchObject({ reason: 'bad_frame' });
    await settle();
    expect(nacks(got)).toEqual(['bad_frame']);
  });
});

describe('X08 HELLO: purpose and session token (core §14 item 39)', () => {
  async function tryConnect(o: {
    token?: (minted: ReturnType<typeof mintSessionToken>) => string;
    sessionId?: (minted: ReturnType<typeof mintSessionToken>) => string;
    purpose?: string;
    as?: typeof CALLER;
    linkKind?: LinkKind;
    allowRelayed?: boolean;
    now?: number;
    registry?: SessionTokenRegistry;
    minted?: ReturnType<typeof mintSessionToken>;
  }) {
    const as = o.as ?? CALLER;
    const registry = o.registry ?? new SessionTokenRegistry();
    const minted =
      o.minted ??
      mintSessionToken(HOST, { caller: CALLER.nodeId, communityId: COMMUNITY, membership, registry });
    const [a, b] = memoryPortPair();
    const serverGot: X08Frame[] = [];
    let dataAccepted = 0;
    const acc = TensorSession.accept(b, {
      local: HOST.nodeId,
      peer: as.nodeId,
      expectedPurpose: PURPOSE_SHARD_FORWARD,
      validateToken: (tok, hello) =>
        checkSessionHello(tok, hello, {
          self: HOST.nodeId,
          linkPeer: as.nodeId,
          linkKind: o.linkKind ?? 'memory',
          ...(o.allowRelayed ? { allowRelayed: true } : {}),
          communityId: COMMUNITY,
          membership,
          registry,
          ...(o.now !== undefined ? { now: o.now } : {}),
        }),
    });
    acc.then(
      (s) =>
        s.recvTensor().then(
          () => dataAccepted++,
          () => {},
        ),
      () => {},
    );
    const con = TensorSession.connect(a, o.token ? o.token(minted) : minted.token, {
      sessionId: o.sessionId ? o.sessionId(minted) : minted.sessionId,
      purpose: o.purpose ?? PURPOSE_SHARD_FORWARD,
      local: as.nodeId,
      remote: HOST.nodeId,
    });
    const results = await Promise.allSettled([acc, con]);
    void serverGot;
    return { results, registry, minted, dataAccepted: () => dataAccepted };
  }

  const rejectedWith = (r: PromiseSettledResult<unknown>, reason: string) => {
    expect(r.status).toBe('rejected');
    const e = (r as PromiseRejectedResult).reason;
    expect(e).toBeInstanceOf(HnError);
    expect((e as X08Error).reason ?? (e as HnError).code).toBe(reason);
  };

  it('a valid session token is accepted once; reusing it is refused (token_expired)', async () => {
    const registry = new SessionTokenRegistry();
    const first = await tryConnect({ registry });
    expect(first.results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
    const again = await tryConnect({ registry, minted: first.minted });
    rejectedWith(again.results[0]!, 'token_expired');
    rejectedWith(again.results[1]!, 'token_expired');
  });

  it('wrong session_id → token_scope_insufficient', async () => {
    const r = await tryConnect({ sessionId: () => ulid() });
    rejectedWith(r.results[1]!, 'token_scope_insufficient');
  });

  it('token presented by a different link peer → invalid_signature', async () => {
    const r = await tryConnect({ as: STRANGER });
    rejectedWith(r.results[0]!, 'invalid_signature');
    rejectedWith(r.results[1]!, 'invalid_signature');
  });

  it('expired token → token_expired', async () => {
    const r = await tryConnect({ now: Math.floor(Date.now() / 1000) + 3601 });
    rejectedWith(r.results[1]!, 'token_expired');
  });

  it('relayed link is refused unless allowed → unauthorized', async () => {
    rejectedWith((await tryConnect({ linkKind: 'relayed' })).results[1]!, 'unauthorized');
    const ok = await tryConnect({ linkKind: 'relayed', allowRelayed: true });
    expect(ok.results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
  });

  it('bad token signature → NACK token_signature_bad, no data accepted', async () => {
    const r = await tryConnect({
      token: (m) => {
        const t = m.token;
        const i = t.length - 5;
        return t.slice(0, i) + (t[i] === 'A' ? 'B' : 'A') + t.slice(i + 1);
      },
    });
    rejectedWith(r.results[1]!, 'token_signature_bad');
    await settle();
    expect(r.dataAccepted()).toBe(0);
  });

  it('garbage token → token_malformed; wrong purpose → purpose_mismatch', async () => {
    rejectedWith((await tryConnect({ token: () => 'hntoken://v1/x.y.z' })).results[1]!, 'token_malformed');
    const wrong = await tryConnect({ purpose: 'pipeline.shard.backward' });
    rejectedWith(wrong.results[0]!, 'purpose_mismatch');
    rejectedWith(wrong.results[1]!, 'purpose_mismatch');
  });
});

describe('X08 cancellation, keepalive, lifetime', () => {
  it('BYE mid-tensor from the receiver: the sender emits nothing further; buffers are freed', async () => {
    const { server, client } = await openPair({ config: { chunk_bytes: 4096, flow_control_window: 2 } });
    const t = tensorOf('int8', [400_000], 4); // ~98 chunks, window 2
    const sending = client.sendTensor(1, t);
    sending.catch(() => {});
    while (server.stats.frames_received < 6) await tick();
    expect(server.bufferedBytes).toBe(400_000); // the partial tensor is buffered
    server.close('cancelled');
    expect(server.bufferedBytes).toBe(0);
    await expect(sending).rejects.toMatchObject({ code: 'closed' });
    const sentAtClose = client.stats.frames_sent;
    await settle(20);
    expect(client.state).toBe('closed');
    expect(client.closeInfo).toMatchObject({ reason: 'bye', text: 'cancelled', by: 'remote', error: false });
    expect(client.stats.frames_sent).toBe(sentAtClose);
    await expect(client.sendTensor(2, t)).rejects.toMatchObject({ code: 'closed' });
  });

  it('BYE mid-tensor from the sender: the receiver drops the partial tensor at once', async () => {
    const r = await rawInitiator();
    await r.send({
      type: FrameType.TENSOR_DATA,
      flags: 0,
      tensorId: 1,
      dtype: 'int8',
      shape: [100],
      data: new Uint8Array(50),
    });
    await settle();
    expect(r.server.bufferedBytes).toBe(100);
    await r.send({ type: FrameType.CONTROL_BYE, flags: 0, reason: 'cancelled' });
    await settle();
    expect(r.server.closeInfo).toMatchObject({ reason: 'bye', by: 'remote', error: false });
    expect(r.server.bufferedBytes).toBe(0);
    await expect(r.server.recvTensor()).rejects.toMatchObject({ code: 'closed' });
    expect(nacks(r.got)).toEqual([]);
  });

  it('fake clock: idle 30 s → PING, answered → stays open with an RTT estimate', async () => {
    const clock = new FakeClock();
    const { server, client } = await openPair({ clock });
    await clock.advance(31_000);
    expect(server.state).not.toBe('closed');
    expect(client.state).not.toBe('closed');
    await clock.advance(120_000);
    expect(server.state).not.toBe('closed');
    expect(client.stats.frames_sent).toBeGreaterThan(1); // PINGs/PONGs went out
    expect(await client.ping()).toBeGreaterThanOrEqual(0);
  });

  it('fake clock: no PONG within 60 s of the PING → closed (timeout)', async () => {
    const clock = new FakeClock();
    const [a, b] = memoryPortPair();
    const got: X08Frame[] = [];
    // a silent peer: answers HELLO, then never replies to anything
    b.onMessage((m) => {
      const f = decodeFrame(m);
      got.push(f);
      if (f.type === FrameType.CONTROL_HELLO) {
        void b.send(
          encodeFrame({
            type: FrameType.CONTROL_HELLO,
            seq: 1,
            flags: 0,
            hello: { ...f.hello, session_token: '', from: HOST.nodeId, to: CALLER.nodeId },
          }),
        );
      }
    });
    const client = await TensorSession.connect(a, 'hntoken://v1/unused.by.raw', {
      sessionId: ulid(),
      purpose: PURPOSE_SHARD_FORWARD,
      local: CALLER.nodeId,
      remote: HOST.nodeId,
      clock,
    });
    await clock.advance(30_000);
    expect(got.filter((f) => f.type === FrameType.CONTROL_PING)).toHaveLength(1);
    await clock.advance(59_000);
    expect(client.state).not.toBe('closed');
    await clock.advance(2_000);
    expect(client.state).toBe('closed');
    expect(client.closeInfo).toMatchObject({ reason: 'timeout', by: 'local', error: true });
  });

  it('fake clock: no HELLO within 10 s → accept fails with timeout', async () => {
    const clock = new FakeClock();
    const [, b] = memoryPortPair();
    const acc = TensorSession.accept(b, {
      local: HOST.nodeId,
      peer: CALLER.nodeId,
      expectedPurpose: PURPOSE_SHARD_FORWARD,
      validateToken: () => {},
      clock,
    });
    acc.catch(() => {});
    await clock.advance(11_000);
    await expect(acc).rejects.toMatchObject({ reason: 'timeout' });
  });

  it('fake clock: the session ends with BYE lifetime at TENSOR_MAX_SESSION_LIFETIME_SECONDS', async () => {
    const clock = new FakeClock();
    const { server, client } = await openPair({ clock });
    await clock.advance(3_590_000, 20_000);
    expect(server.state).not.toBe('closed');
    await clock.advance(20_000, 5_000);
    expect(server.state).toBe('closed');
    expect(client.state).toBe('closed');
    expect(client.closeInfo?.text ?? client.closeInfo?.reason).toBe('lifetime');
  });

  it('the port closing under the session closes it (link loss)', async () => {
    const { server, client, a } = await openPair();
    (a as BytePort).close('link_down');
    await settle();
    expect(server.state).toBe('closed');
    expect(client.state).toBe('closed');
    expect(server.closeInfo).toMatchObject({ reason: 'closed', error: true });
  });
});

describe('X08 session fuzz', () => {
  it('random and mutated frames never escape as untyped errors; the session only ever closes with a spec reason', async () => {
    const reasons = new Set([
      'bad_frame',
      'unknown_frame_type',
      'tensor_too_large',
      'seq_gap',
      'shape_mismatch',
      'decompress_failed',
      'window_overrun',
      'bye',
    ]);
    const valid = (seq: number): Uint8Array =>
      encodeFrame({
        type: FrameType.TENSOR_DATA,
        seq,
        flags: FLAG_FINAL,
        tensorId: 1,
        dtype: 'fp16',
        shape: [2, 2],
        data: new Uint8Array(8),
      });
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.uint8Array({ minLength: 0, maxLength: 80 }),
            fc.tuple(fc.nat(40), fc.integer({ min: 0, max: 255 })).map(([i, v]) => ({ i, v })),
          ),
          { minLength: 1, maxLength: 6 },
        ),
        async (inputs) => {
          const r = await rawInitiator({ config: { rx_buffer_bytes_max: 1 << 16 } });
          for (const inp of inputs) {
            let bytes: Uint8Array;
            if (inp instanceof Uint8Array) bytes = inp;
            else {
              bytes = valid(r.seq + 1);
              bytes[inp.i % bytes.length] = inp.v;
            }
            r.nextSeq();
            await r.sendBytes(bytes).catch(() => {});
          }
          await settle();
          if (r.server.state === 'closed') expect(reasons.has(r.server.closeInfo!.reason)).toBe(true);
          r.server.close();
        },
      ),
      { numRuns: 80 },
    );
  });
});
