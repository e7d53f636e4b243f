/**
 * X08 frame codec: header layout for all 9 types, the digest's A3 byte vector, chunk bodies for all dtypes
 * and ranks, every bad_frame row of A4, decoder fuzzing, and the language-neutral vectors in
 * conformance/vectors/x08/ (written by conformance/tools/x08_tokens_vectors.py, never from engine/).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromHex, toHex } from '../../engine/core/encoding.js';
import { HnError } from '../../engine/core/errors.js';
import type { Dtype } from '../../engine/core/types.js';
import { keyPairFromSeed } from '../../engine/identity/identity.js';
import { fromFloat32 } from '../../engine/transport/tensor/dtype.js';
import {
  FLAG_COMPRESSED,
  FLAG_FINAL,
  FLAG_GRAD,
  FrameType,
  X08Error,
  decodeChunkBody,
  decodeFrame,
  encodeChunkBody,
  encodeFrame,
  encodeRaw,
  type X08Frame,
} from '../../engine/transport/tensor/frame.js';

const NODE_A = keyPairFromSeed(
  fromHex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'),
).nodeId;
const NODE_B = keyPairFromSeed(new Uint8Array(32).fill(2)).nodeId;

/** JSON form of a frame for the vector file (bytes as hex). */
function toJson(f: X08Frame): Record<string, unknown> {
  const o: Record<string, unknown> = { ...f };
  for (const k of ['data', 'nonce']) if (o[k] instanceof Uint8Array) o[k] = toHex(o[k] as Uint8Array);
  return o;
}
function fromJson(o: Record<string, unknown>): X08Frame {
  const f: Record<string, unknown> = { ...o };
  for (const k of ['data', 'nonce']) if (typeof f[k] === 'string') f[k] = fromHex(f[k] as string);
  return f as unknown as X08Frame;
}

function sampleFrames(): { name: string; frame: X08Frame }[] {
  const values = fromFloat32(new Float32Array([1.0, -2.0, 0.5, 0.0]), [1, 1, 4], 'fp16');
  return [
    {
      name: 'hello',
      frame: {
        type: FrameType.CONTROL_HELLO,
        seq: 1,
        flags: 0,
        hello: {
          session_id: '01J00000000000000000000000',
          session_token: 'hntoken://v1/h.p.s',
          from: NODE_A,
          to: NODE_B,
          purpose: 'pipeline.shard.forward',
          negotiation: {
            preferred_dtype: 'fp16',
            compression: 'zstd',
            max_chunk_bytes: 262144,
            flow_window: 16,
          },
        },
      },
    },
    {
      name: 'a3_tensor_data',
      frame: {
        type: FrameType.TENSOR_DATA,
        seq: 2,
        flags: FLAG_FINAL,
        tensorId: 1,
        dtype: 'fp16',
        shape: [1, 1, 4],
        data: values.data,
      },
    },
    { name: 'a3_tensor_end', frame: { type: FrameType.TENSOR_END, seq: 3, flags: 0, tensorId: 1 } },
    { name: 'a3_ack', frame: { type: FrameType.ACK, seq: 3, flags: 0 } },
    {
      name: 'tensor_data_compressed_grad_rank8_int8',
      frame: {
        type: FrameType.TENSOR_DATA,
        seq: 4,
        flags: FLAG_COMPRESSED | FLAG_GRAD,
        tensorId: 0xbeef,
        dtype: 'int8',
        shape: [1, 2, 1, 2, 1, 1, 1, 1],
        data: fromHex('28b52ffd'),
      },
    },
    {
      name: 'tensor_data_bf16',
      frame: {
        type: FrameType.TENSOR_DATA,
        seq: 5,
        flags: 0,
        tensorId: 7,
        dtype: 'bf16',
        shape: [2],
        data: fromHex('803f00c0'),
      },
    },
    {
      name: 'tensor_data_fp32',
      frame: {
        type: FrameType.TENSOR_DATA,
        seq: 6,
        flags: FLAG_FINAL,
        tensorId: 7,
        dtype: 'fp32',
        shape: [1],
        data: fromHex('0000803f'),
      },
    },
    {
      name: 'nack',
      frame: { type: FrameType.CONTROL_NACK, seq: 7, flags: 0, reason: 'seq_gap', text: 'expected 6' },
    },
    { name: 'bye_empty', frame: { type: FrameType.CONTROL_BYE, seq: 8, flags: 0, reason: '' } },
    { name: 'bye_lifetime', frame: { type: FrameType.CONTROL_BYE, seq: 9, flags: 0, reason: 'lifetime' } },
    {
      name: 'flowctl',
      frame: { type: FrameType.CONTROL_FLOWCTL, seq: 10, flags: 0, window: 32, credits_added: 8 },
    },
    {
      name: 'ping',
      frame: { type: FrameType.CONTROL_PING, seq: 11, flags: 0, nonce: fromHex('0102030405060708') },
    },
    {
      name: 'pong',
      frame: { type: FrameType.CONTROL_PONG, seq: 0xffffffff, flags: 0, nonce: fromHex('0102030405060708') },
    },
  ];
}

function invalidFrames(): { name: string; hex: string; reason: string }[] {
  const ping = (mut: (b: Uint8Array) => void, payload = new Uint8Array(8)) => {
    const b = encodeRaw(FrameType.CONTROL_PING, 1, 0, payload);
    mut(b);
    return toHex(b);
  };
  const data = (body: number[], flags = 0) =>
    toHex(encodeRaw(FrameType.TENSOR_DATA, 1, flags, new Uint8Array(body)));
  return [
    { name: 'short_header', hex: '0108000000000001', reason: 'bad_frame' },
    { name: 'version_2', hex: ping((b) => (b[0] = 2)), reason: 'bad_frame' },
    { name: 'type_0x00', hex: ping((b) => (b[1] = 0)), reason: 'unknown_frame_type' },
    { name: 'type_0x0a', hex: ping((b) => (b[1] = 0x0a)), reason: 'unknown_frame_type' },
    { name: 'type_0xff', hex: ping((b) => (b[1] = 0xff)), reason: 'unknown_frame_type' },
    { name: 'reserved_nonzero', hex: ping((b) => (b[2] = 1)), reason: 'bad_frame' },
    { name: 'reserved_flag_bits', hex: ping((b) => (b[12] = 0x80)), reason: 'bad_frame' },
    { name: 'encrypted_flag', hex: data([0, 1, 4, 1, 0, 0, 0, 1, 9], 0x8), reason: 'bad_frame' },
    { name: 'final_flag_on_ping', hex: ping((b) => (b[15] = 2)), reason: 'bad_frame' },
    { name: 'length_mismatch', hex: ping((b) => (b[11] = 7)), reason: 'bad_frame' },
    { name: 'ping_7_bytes', hex: ping(() => {}, new Uint8Array(7)), reason: 'bad_frame' },
    {
      name: 'ack_with_body',
      hex: toHex(encodeRaw(FrameType.ACK, 1, 0, new Uint8Array(1))),
      reason: 'bad_frame',
    },
    {
      name: 'end_1_byte',
      hex: toHex(encodeRaw(FrameType.TENSOR_END, 1, 0, new Uint8Array(1))),
      reason: 'bad_frame',
    },
    { name: 'n_dims_0', hex: data([0, 1, 1, 0, 9, 9]), reason: 'bad_frame' },
    { name: 'n_dims_9', hex: data([0, 1, 1, 9, ...new Array(36).fill(1), 9]), reason: 'bad_frame' },
    { name: 'dim_zero', hex: data([0, 1, 1, 2, 0, 0, 0, 1, 0, 0, 0, 0, 9]), reason: 'bad_frame' },
    { name: 'dtype_5', hex: data([0, 1, 5, 1, 0, 0, 0, 1, 9]), reason: 'bad_frame' },
    { name: 'chunk_without_data', hex: data([0, 1, 1, 1, 0, 0, 0, 1]), reason: 'bad_frame' },
    {
      name: 'hello_not_json',
      hex: toHex(encodeRaw(FrameType.CONTROL_HELLO, 1, 0, new Uint8Array([0x7b, 0x7b]))),
      reason: 'bad_frame',
    },
    {
      name: 'flowctl_window_65',
      hex: toHex(
        encodeRaw(
          FrameType.CONTROL_FLOWCTL,
          1,
          0,
          new TextEncoder().encode('{"window":65,"credits_added":0}'),
        ),
      ),
      reason: 'bad_frame',
    },
    { name: 'nack_empty', hex: toHex(encodeRaw(FrameType.CONTROL_NACK, 1, 0, null)), reason: 'bad_frame' },
    {
      name: 'nack_not_utf8',
      hex: toHex(encodeRaw(FrameType.CONTROL_NACK, 1, 0, new Uint8Array([0xff, 0xfe]))),
      reason: 'bad_frame',
    },
  ];
}

function reasonOf(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (e instanceof X08Error) return e.reason;
    throw e; // an untyped throw fails the test
  }
}

describe('X08 header and frame layout', () => {
  it('the A3 vector is produced byte for byte and parses to the stated values', () => {
    const t = fromFloat32(new Float32Array([1.0, -2.0, 0.5, 0.0]), [1, 1, 4], 'fp16');
    const data = encodeFrame({
      type: FrameType.TENSOR_DATA,
      seq: 2,
      flags: FLAG_FINAL,
      tensorId: 1,
      dtype: 'fp16',
      shape: [1, 1, 4],
      data: t.data,
    });
    expect(toHex(data)).toBe(
      '0101000000000002000000180000000200010103000000010000000100000004003c00c000380000',
    );
    expect(data.length).toBe(40);
    const end = encodeFrame({ type: FrameType.TENSOR_END, seq: 3, flags: 0, tensorId: 1 });
    expect(toHex(end)).toBe('010200000000000300000002000000000001');
    expect(toHex(encodeFrame({ type: FrameType.ACK, seq: 3, flags: 0 }))).toBe(
      '01030000000000030000000000000000',
    );
    const d = decodeFrame(
      fromHex('0101000000000002000000180000000200010103000000010000000100000004003c00c000380000'),
    );
    expect(d).toMatchObject({ type: 1, seq: 2, flags: 2, tensorId: 1, dtype: 'fp16', shape: [1, 1, 4] });
    expect(toHex((d as { data: Uint8Array }).data)).toBe('003c00c000380000');
  });

  it('header round-trips for all 9 frame types', () => {
    const seen = new Set<number>();
    for (const { frame } of sampleFrames()) {
      const bytes = encodeFrame(frame);
      expect(bytes[0]).toBe(1);
      expect(bytes[1]).toBe(frame.type);
      expect(new DataView(bytes.buffer).getUint32(8)).toBe(bytes.length - 16);
      expect(toJson(decodeFrame(bytes))).toEqual(toJson(frame));
      seen.add(frame.type);
    }
    expect([...seen].sort()).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('chunk body round-trips for every dtype and rank 1..8 (property); data is a zero-copy aligned view', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<Dtype>('fp16', 'fp32', 'bf16', 'int8'),
        fc.array(fc.integer({ min: 1, max: 0xffffffff }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (dtype, shape, tensorId, data, seq) => {
          const body = encodeChunkBody({ tensorId, dtype, shape }, data);
          const c = decodeChunkBody(body);
          expect(c).toMatchObject({ tensorId, dtype, shape });
          expect(toHex(c.data)).toBe(toHex(data));
          const frame = encodeFrame({
            type: FrameType.TENSOR_DATA,
            seq,
            flags: 0,
            tensorId,
            dtype,
            shape,
            data,
          });
          const d = decodeFrame(frame) as Extract<X08Frame, { type: 1 }>;
          expect(d.data.buffer).toBe(frame.buffer);
          expect(d.data.byteOffset % 4).toBe(0); // 20 + 4·n_dims
          expect(d.seq).toBe(seq);
        },
      ),
    );
  });

  it('every A4 bad_frame / unknown_frame_type row maps to its reason', () => {
    for (const v of invalidFrames())
      expect([v.name, reasonOf(() => decodeFrame(fromHex(v.hex)))]).toEqual([v.name, v.reason]);
    // payload above max_chunk_bytes + 36
    const big = encodeFrame({
      type: FrameType.TENSOR_DATA,
      seq: 1,
      flags: 0,
      tensorId: 1,
      dtype: 'int8',
      shape: [2000],
      data: new Uint8Array(1100),
    });
    expect(reasonOf(() => decodeFrame(big, { maxPayloadBytes: 1024 + 36 }))).toBe('bad_frame');
    expect(reasonOf(() => decodeFrame(big, { maxPayloadBytes: 2048 + 36 }))).toBe('ok');
  });

  it('the encoder refuses invalid frames instead of sending them', () => {
    expect(
      reasonOf(() =>
        encodeFrame({
          type: FrameType.TENSOR_DATA,
          seq: 1,
          flags: 0,
          tensorId: 1,
          dtype: 'int8',
          shape: [],
          data: new Uint8Array(1),
        }),
      ),
    ).toBe('bad_frame');
    expect(
      reasonOf(() =>
        encodeFrame({
          type: FrameType.TENSOR_DATA,
          seq: 1,
          flags: 0,
          tensorId: 1,
          dtype: 'int8',
          shape: new Array(9).fill(1),
          data: new Uint8Array(1),
        }),
      ),
    ).toBe('bad_frame');
    expect(
      reasonOf(() =>
        encodeFrame({ type: FrameType.CONTROL_PING, seq: 1, flags: 0, nonce: new Uint8Array(3) }),
      ),
    ).toBe('bad_frame');
    expect(reasonOf(() => encodeFrame({ type: FrameType.ACK, seq: 2 ** 32, flags: 0 }))).toBe('bad_frame');
    expect(
      reasonOf(() =>
        encodeFrame({ type: FrameType.CONTROL_FLOWCTL, seq: 1, flags: 0, window: 0, credits_added: 0 }),
      ),
    ).toBe('bad_frame');
    // NACK bodies are capped at 256 bytes
    const n = encodeFrame({
      type: FrameType.CONTROL_NACK,
      seq: 1,
      flags: 0,
      reason: 'bad_frame',
      text: 'é'.repeat(400),
    });
    expect(n.length - 16).toBeLessThanOrEqual(256);
    expect(decodeFrame(n)).toMatchObject({ reason: 'bad_frame' });
  });
});

describe('X08 decoder fuzz (no crash, no untyped error, bounded work)', () => {
  const valid = sampleFrames().map((s) => encodeFrame(s.frame));

  it('random bytes → a frame or an X08Error, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }), (b) => {
        try {
          decodeFrame(b);
        } catch (e) {
          expect(e).toBeInstanceOf(X08Error);
          expect(e).toBeInstanceOf(HnError);
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('random header over a random body (valid version/length so the body parsers are reached)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 12 }),
        fc.integer({ min: 0, max: 15 }),
        fc.uint8Array({ maxLength: 300 }),
        (type, flags, body) => {
          const b = encodeRaw(type, 1, flags, body);
          try {
            const f = decodeFrame(b);
            expect(f.type).toBe(type);
          } catch (e) {
            expect(e).toBeInstanceOf(X08Error);
          }
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('mutated valid frames (bit flips, truncation, extension) → a frame or an X08Error; memory stays bounded', () => {
    fc.assert(
      fc.property(
        fc.nat(valid.length - 1),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        fc.integer({ min: -20, max: 20 }),
        (which, flips, resize) => {
          const src = valid[which]!;
          const n = Math.max(0, src.length + resize);
          const b = new Uint8Array(n);
          b.set(src.subarray(0, Math.min(n, src.length)));
          for (const [i, v] of flips) if (n) b[i % n] = v;
          try {
            const f = decodeFrame(b);
            // a decoded data chunk is a view into the input: the decoder never allocates tensor-sized memory
            if (f.type === FrameType.TENSOR_DATA) expect(f.data.buffer).toBe(b.buffer);
          } catch (e) {
            expect(e).toBeInstanceOf(X08Error);
          }
        },
      ),
      { numRuns: 5000 },
    );
  });
});

describe('conformance/vectors/x08', () => {
  const here = dirname(fileURLToPath(import.meta.url));
  const file = resolve(here, '../../conformance/vectors/x08/frames.json');
  const build = () => ({
    description:
      'X08 tensor-transport frames (16-byte big-endian header; TENSOR_DATA body tensor_id u16 | dtype u8 | n_dims u8 | shape u32[] | data; element data little-endian). ' +
      '"valid": encoding "frame" must give "hex" and decoding "hex" must give "frame" (bytes as hex). "invalid": decoding must fail with the NACK "reason". Decoder default max payload: 1048576 + 36.',
    frame_types: {
      TENSOR_DATA: 1,
      TENSOR_END: 2,
      ACK: 3,
      CONTROL_NACK: 4,
      CONTROL_HELLO: 5,
      CONTROL_BYE: 6,
      CONTROL_FLOWCTL: 7,
      CONTROL_PING: 8,
      CONTROL_PONG: 9,
    },
    flags: { COMPRESSED: 1, FINAL: 2, GRAD: 4, ENCRYPTED: 8 },
    dtypes: { fp16: 1, fp32: 2, bf16: 3, int8: 4 },
    valid: sampleFrames().map((s) => ({
      name: s.name,
      frame: toJson(s.frame),
      hex: toHex(encodeFrame(s.frame)),
    })),
    invalid: invalidFrames(),
  });

  it('the code matches the independently generated vectors', () => {
    // the file is written by conformance/tools/x08_tokens_vectors.py (Python, independent of engine/),
    // never from the code under test; what the engine builds from the same inputs must equal it
    const { source: _source, ...independent } = JSON.parse(readFileSync(file, 'utf8'));
    expect(independent).toEqual(build());
    const v = JSON.parse(readFileSync(file, 'utf8')) as ReturnType<typeof build>;
    expect(v.valid.length).toBeGreaterThanOrEqual(13);
    for (const x of v.valid) {
      expect([x.name, toHex(encodeFrame(fromJson(x.frame)))]).toEqual([x.name, x.hex]);
      expect([x.name, toJson(decodeFrame(fromHex(x.hex)))]).toEqual([x.name, x.frame]);
    }
    for (const x of v.invalid)
      expect([x.name, reasonOf(() => decodeFrame(fromHex(x.hex)))]).toEqual([x.name, x.reason]);
    // the digest's A3 vector is part of the file
    expect(v.valid.find((x) => x.name === 'a3_tensor_data')!.hex).toBe(
      '0101000000000002000000180000000200010103000000010000000100000004003c00c000380000',
    );
  });
});
