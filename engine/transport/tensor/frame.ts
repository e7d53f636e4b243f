/**
 * X08 frame codec (tensor-and-inference digest A3): 16-byte big-endian header, nine frame types,
 * flags, the TENSOR_DATA chunk body, and the JSON/UTF-8 control bodies.
 *
 * `decodeFrame` never throws anything but `X08Error`, whose `reason` is the NACK token of digest A4
 * (`bad_frame`, `unknown_frame_type`, ...). Tensor element bytes are never copied by the decoder: a
 * decoded chunk's `data` is a view into the frame buffer.
 */
import { TENSOR_CHUNK_BYTES } from '../../core/constants.js';
import { fromUtf8, utf8 } from '../../core/encoding.js';
import { X08Error } from './frame-errors.js';
import { NODE_ID_RE, type Dtype } from '../../core/types.js';
import { ULID_RE } from '../../core/ulid.js';

export * from './frame-errors.js';

export const X08_VERSION = 0x01;
export const HEADER_BYTES = 16;

export const FrameType = {
  TENSOR_DATA: 0x01,
  TENSOR_END: 0x02,
  ACK: 0x03,
  CONTROL_NACK: 0x04,
  CONTROL_HELLO: 0x05,
  CONTROL_BYE: 0x06,
  CONTROL_FLOWCTL: 0x07,
  CONTROL_PING: 0x08,
  CONTROL_PONG: 0x09,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];
export const FRAME_TYPE_NAMES: Record<FrameType, keyof typeof FrameType> = {
  1: 'TENSOR_DATA',
  2: 'TENSOR_END',
  3: 'ACK',
  4: 'CONTROL_NACK',
  5: 'CONTROL_HELLO',
  6: 'CONTROL_BYE',
  7: 'CONTROL_FLOWCTL',
  8: 'CONTROL_PING',
  9: 'CONTROL_PONG',
};

export const FLAG_COMPRESSED = 0x1;
export const FLAG_FINAL = 0x2;
export const FLAG_GRAD = 0x4;
export const FLAG_ENCRYPTED = 0x8;
export const FLAGS_RESERVED = 0xfffffff0;

export const DTYPE_CODE: Record<Dtype, number> = { fp16: 0x01, fp32: 0x02, bf16: 0x03, int8: 0x04 };
export const DTYPE_OF_CODE: Record<number, Dtype> = { 1: 'fp16', 2: 'fp32', 3: 'bf16', 4: 'int8' };

export const MAX_DIMS = 8;
/** Chunk header = tensor_id u16 + dtype u8 + n_dims u8 + n_dims × u32. */
export const chunkHeaderBytes = (nDims: number): number => 4 + 4 * nDims;
/** Largest chunk header (8 dims): `payload > max_chunk_bytes + 36` is `bad_frame` (A4). */
export const MAX_CHUNK_HEADER_BYTES = chunkHeaderBytes(MAX_DIMS);
export const HELLO_MAX_BYTES = 4096;
export const NACK_MAX_BYTES = 256;
export const FLOWCTL_MAX_BYTES = 256;
export const PING_NONCE_BYTES = 8;
export const MAX_FLOW_WINDOW = 64;
export const SEQ_MAX = 0xffffffff;

const bad = (why: string): never => {
  throw new X08Error('bad_frame', why);
};

// ---------------------------------------------------------------------------------------------------------
// Header

export interface FrameHeader {
  version: number;
  type: number;
  reserved: number;
  seq: number;
  payloadLength: number;
  flags: number;
}

/** Write a header + payload into one message. */
export function encodeRaw(
  type: number,
  seq: number,
  flags: number,
  payload: Uint8Array | null,
  version = X08_VERSION,
): Uint8Array {
  const n = payload ? payload.length : 0;
  const out = new Uint8Array(HEADER_BYTES + n);
  const dv = new DataView(out.buffer);
  dv.setUint8(0, version);
  dv.setUint8(1, type);
  dv.setUint16(2, 0);
  dv.setUint32(4, seq >>> 0);
  dv.setUint32(8, n);
  dv.setUint32(12, flags >>> 0);
  if (payload) out.set(payload, HEADER_BYTES);
  return out;
}

export function readHeader(msg: Uint8Array): FrameHeader {
  if (!(msg instanceof Uint8Array) || msg.length < HEADER_BYTES)
    bad('message shorter than the 16-byte header');
  const dv = new DataView(msg.buffer, msg.byteOffset, HEADER_BYTES);
  return {
    version: dv.getUint8(0),
    type: dv.getUint8(1),
    reserved: dv.getUint16(2),
    seq: dv.getUint32(4),
    payloadLength: dv.getUint32(8),
    flags: dv.getUint32(12),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Bodies

export interface Negotiation {
  preferred_dtype: Dtype;
  compression: 'zstd' | 'none';
  max_chunk_bytes: number;
  flow_window: number;
}

export interface HelloMsg {
  session_id: string;
  session_token: string;
  from: string;
  to: string;
  purpose: string;
  negotiation: Negotiation;
}

export interface FlowCtlMsg {
  window: number;
  credits_added: number;
}

export interface ChunkHeader {
  tensorId: number;
  dtype: Dtype;
  shape: number[];
}

export type X08Frame =
  | {
      type: typeof FrameType.TENSOR_DATA;
      seq: number;
      flags: number;
      tensorId: number;
      dtype: Dtype;
      shape: number[];
      data: Uint8Array;
    }
  | { type: typeof FrameType.TENSOR_END; seq: number; flags: number; tensorId: number }
  | { type: typeof FrameType.ACK; seq: number; flags: number }
  | { type: typeof FrameType.CONTROL_NACK; seq: number; flags: number; reason: string; text?: string }
  | { type: typeof FrameType.CONTROL_HELLO; seq: number; flags: number; hello: HelloMsg }
  | { type: typeof FrameType.CONTROL_BYE; seq: number; flags: number; reason: string }
  | {
      type: typeof FrameType.CONTROL_FLOWCTL;
      seq: number;
      flags: number;
      window: number;
      credits_added: number;
    }
  | { type: typeof FrameType.CONTROL_PING; seq: number; flags: number; nonce: Uint8Array }
  | { type: typeof FrameType.CONTROL_PONG; seq: number; flags: number; nonce: Uint8Array };

/** Chunk body (A3): tensor_id u16 BE | dtype u8 | n_dims u8 | shape n_dims × u32 BE | data. */
export function encodeChunkBody(h: ChunkHeader, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(chunkHeaderBytes(h.shape.length) + data.length);
  writeChunkHeader(out, 0, h);
  out.set(data, chunkHeaderBytes(h.shape.length));
  return out;
}

function writeChunkHeader(out: Uint8Array, at: number, h: ChunkHeader): void {
  checkChunkHeader(h);
  const dv = new DataView(out.buffer, out.byteOffset + at, chunkHeaderBytes(h.shape.length));
  dv.setUint16(0, h.tensorId);
  dv.setUint8(2, DTYPE_CODE[h.dtype]);
  dv.setUint8(3, h.shape.length);
  h.shape.forEach((d, i) => dv.setUint32(4 + 4 * i, d));
}

function checkChunkHeader(h: ChunkHeader): void {
  if (!Number.isInteger(h.tensorId) || h.tensorId < 0 || h.tensorId > 0xffff) bad('tensor_id must be a u16');
  if (!(h.dtype in DTYPE_CODE)) bad('unknown dtype');
  if (!Array.isArray(h.shape) || h.shape.length < 1 || h.shape.length > MAX_DIMS) bad('n_dims must be 1..8');
  for (const d of h.shape)
    if (!Number.isInteger(d) || d < 1 || d > 0xffffffff) bad('a dimension must be a u32 ≥ 1');
}

/**
 * Decode a chunk body; `data` is a view into `body` (zero-copy). `bodyBytes` is the whole body's length where
 * `body` holds only its first part (a frame that arrived in link fragments, see `decodeFrameParts`).
 */
export function decodeChunkBody(
  body: Uint8Array,
  bodyBytes = body.length,
): ChunkHeader & { data: Uint8Array } {
  if (body.length < 4) bad('chunk body shorter than its header');
  const dv = new DataView(body.buffer, body.byteOffset, body.length);
  const tensorId = dv.getUint16(0);
  const dtype = DTYPE_OF_CODE[dv.getUint8(2)];
  if (!dtype) bad('unknown dtype code');
  const nDims = dv.getUint8(3);
  if (nDims < 1 || nDims > MAX_DIMS) bad('n_dims must be 1..8');
  const hdr = chunkHeaderBytes(nDims);
  if (body.length < hdr) bad('chunk body shorter than its shape');
  const shape: number[] = [];
  for (let i = 0; i < nDims; i++) {
    const d = dv.getUint32(4 + 4 * i);
    if (d === 0) bad('a dimension is 0');
    shape.push(d);
  }
  if (bodyBytes === hdr) bad('chunk carries no data');
  return { tensorId, dtype: dtype!, shape, data: body.subarray(hdr) };
}

/**
 * Declared raw byte size Π(shape)·sizeof(dtype), multiplied incrementally; returns `Infinity` as soon as it
 * passes `limit` (A4: "multiply dims incrementally and stop at the limit").
 */
export function declaredBytes(
  dtypeBytes: number,
  shape: readonly number[],
  limit = Number.MAX_SAFE_INTEGER,
): number {
  let n = dtypeBytes;
  for (const d of shape) {
    n *= d;
    if (n > limit) return Infinity;
  }
  return n;
}

function jsonBody(payload: Uint8Array, max: number, what: string): Record<string, unknown> {
  if (payload.length > max) bad(`${what} longer than ${max} bytes`);
  let v: unknown;
  try {
    v = JSON.parse(fromUtf8(payload));
  } catch {
    return bad(`${what} is not UTF-8 JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(`${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

const isInt = (v: unknown, lo: number, hi: number): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;

export function parseNegotiation(v: unknown): Negotiation {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad('negotiation is not an object');
  const n = v as Record<string, unknown>;
  if (typeof n.preferred_dtype !== 'string' || !(n.preferred_dtype in DTYPE_CODE))
    bad('negotiation.preferred_dtype');
  if (n.compression !== 'zstd' && n.compression !== 'none') bad('negotiation.compression');
  if (!isInt(n.max_chunk_bytes, 1, TENSOR_CHUNK_BYTES)) bad('negotiation.max_chunk_bytes');
  if (!isInt(n.flow_window, 1, MAX_FLOW_WINDOW)) bad('negotiation.flow_window');
  return {
    preferred_dtype: n.preferred_dtype as Dtype,
    compression: n.compression as 'zstd' | 'none',
    max_chunk_bytes: n.max_chunk_bytes as number,
    flow_window: n.flow_window as number,
  };
}

export function parseHello(payload: Uint8Array): HelloMsg {
  const o = jsonBody(payload, HELLO_MAX_BYTES, 'HELLO');
  if (typeof o.session_id !== 'string' || !ULID_RE.test(o.session_id)) bad('HELLO.session_id');
  if (typeof o.session_token !== 'string' || o.session_token.length > 2048) bad('HELLO.session_token');
  if (typeof o.from !== 'string' || !NODE_ID_RE.test(o.from)) bad('HELLO.from');
  if (typeof o.to !== 'string' || !NODE_ID_RE.test(o.to)) bad('HELLO.to');
  if (typeof o.purpose !== 'string' || o.purpose.length < 1 || o.purpose.length > 128) bad('HELLO.purpose');
  return {
    session_id: o.session_id as string,
    session_token: o.session_token as string,
    from: o.from as string,
    to: o.to as string,
    purpose: o.purpose as string,
    negotiation: parseNegotiation(o.negotiation),
  };
}

function parseFlowCtl(payload: Uint8Array): FlowCtlMsg {
  const o = jsonBody(payload, FLOWCTL_MAX_BYTES, 'FLOWCTL');
  if (!isInt(o.window, 1, MAX_FLOW_WINDOW)) bad('FLOWCTL.window must be 1..64');
  if (!isInt(o.credits_added, 0, MAX_FLOW_WINDOW)) bad('FLOWCTL.credits_added must be 0..64');
  return { window: o.window as number, credits_added: o.credits_added as number };
}

/** NACK/BYE body `<token>[ text]`, UTF-8, ≤ 256 bytes. */
function parseReason(payload: Uint8Array, allowEmpty: boolean): { reason: string; text?: string } {
  if (payload.length > NACK_MAX_BYTES) bad('NACK/BYE body longer than 256 bytes');
  let s: string;
  try {
    s = fromUtf8(payload);
  } catch {
    return bad('NACK/BYE body is not UTF-8');
  }
  if (!allowEmpty && s.length === 0) bad('NACK body is empty');
  const sp = s.indexOf(' ');
  return sp < 0 ? { reason: s } : { reason: s.slice(0, sp), text: s.slice(sp + 1) };
}

/** Build a `<token>[ text]` body, truncated to 256 bytes on a character boundary. */
export function reasonBody(reason: string, text?: string): Uint8Array {
  let s = text ? `${reason} ${text}` : reason;
  let b = utf8(s);
  while (b.length > NACK_MAX_BYTES) {
    s = s.slice(0, Math.max(0, s.length - Math.max(1, Math.ceil((b.length - NACK_MAX_BYTES) / 3))));
    b = utf8(s);
  }
  return b;
}

// ---------------------------------------------------------------------------------------------------------
// Frames

export interface DecodeOptions {
  /** Largest accepted payload; default TENSOR_CHUNK_BYTES + 36 (A4). */
  maxPayloadBytes?: number;
}

/** Flags each frame type may carry; anything else is `bad_frame`. */
const ALLOWED_FLAGS: Record<FrameType, number> = {
  1: FLAG_COMPRESSED | FLAG_FINAL | FLAG_GRAD,
  2: FLAG_FINAL | FLAG_GRAD,
  3: 0,
  4: 0,
  5: 0,
  6: 0,
  7: 0,
  8: 0,
  9: 0,
};

/**
 * Decode one X08 message. Check order: header length, version, frame type (`unknown_frame_type`), reserved,
 * flags (reserved bits, ENCRYPTED, flags not allowed on the type), payload_length = message − 16, payload size
 * limit, then the type's body. Every failure is an X08Error.
 */
export function decodeFrame(msg: Uint8Array, opts: DecodeOptions = {}): X08Frame {
  return decodeFrameOf(msg, msg.length, opts);
}

/** `decodeFrame` where `msg` may be only the first `msg.length` of `total` bytes (TENSOR_DATA only). */
export function decodeFrameOf(msg: Uint8Array, total: number, opts: DecodeOptions): X08Frame {
  const h = readHeader(msg);
  if (h.version !== X08_VERSION) bad(`version ${h.version} ≠ 1`);
  if (!(h.type >= 1 && h.type <= 9))
    throw new X08Error('unknown_frame_type', `frame type 0x${h.type.toString(16).padStart(2, '0')}`);
  const type = h.type as FrameType;
  if (h.reserved !== 0) bad('reserved header field ≠ 0');
  if (h.flags & FLAGS_RESERVED) bad('reserved flag bits set');
  if (h.flags & FLAG_ENCRYPTED) bad('ENCRYPTED flag is not supported');
  if (h.flags & ~ALLOWED_FLAGS[type])
    bad(`flags 0x${h.flags.toString(16)} not allowed on ${FRAME_TYPE_NAMES[type]}`);
  if (h.payloadLength !== total - HEADER_BYTES) bad('payload_length ≠ message length − 16');
  const max = opts.maxPayloadBytes ?? TENSOR_CHUNK_BYTES + MAX_CHUNK_HEADER_BYTES;
  if (h.payloadLength > max) bad(`payload of ${h.payloadLength} bytes exceeds ${max}`);
  const payload = msg.subarray(HEADER_BYTES);
  const { seq, flags } = h;
  switch (type) {
    case FrameType.TENSOR_DATA: {
      const c = decodeChunkBody(payload, total - HEADER_BYTES);
      return { type, seq, flags, tensorId: c.tensorId, dtype: c.dtype, shape: c.shape, data: c.data };
    }
    case FrameType.TENSOR_END:
      if (payload.length !== 2) bad('TENSOR_END body must be the 2-byte tensor_id');
      return { type, seq, flags, tensorId: (payload[0]! << 8) | payload[1]! };
    case FrameType.ACK:
      if (payload.length !== 0) bad('ACK body must be empty');
      return { type, seq, flags };
    case FrameType.CONTROL_NACK:
      return { type, seq, flags, ...parseReason(payload, false) };
    case FrameType.CONTROL_HELLO:
      return { type, seq, flags, hello: parseHello(payload) };
    case FrameType.CONTROL_BYE: {
      const r = parseReason(payload, true);
      return { type, seq, flags, reason: r.text ? `${r.reason} ${r.text}` : r.reason };
    }
    case FrameType.CONTROL_FLOWCTL:
      return { type, seq, flags, ...parseFlowCtl(payload) };
    case FrameType.CONTROL_PING:
    case FrameType.CONTROL_PONG:
      if (payload.length !== PING_NONCE_BYTES) bad('PING/PONG body must be 8 bytes');
      return { type, seq, flags, nonce: payload };
  }
}

/** Encode any frame. Inputs are validated (an invalid frame throws X08Error('bad_frame'); nothing invalid is sent). */
export function encodeFrame(f: X08Frame): Uint8Array {
  if (!isInt(f.seq, 0, SEQ_MAX)) bad('seq must be a u32');
  if (!isInt(f.flags, 0, SEQ_MAX) || f.flags & ~ALLOWED_FLAGS[f.type])
    bad('flags not allowed on this frame type');
  switch (f.type) {
    case FrameType.TENSOR_DATA: {
      const head = encodeDataHead(f);
      // single allocation: header + chunk header + data
      const full = new Uint8Array(head.length + f.data.length);
      full.set(head, 0);
      full.set(f.data, head.length);
      return full;
    }
    case FrameType.TENSOR_END:
      if (!isInt(f.tensorId, 0, 0xffff)) bad('tensor_id must be a u16');
      return encodeRaw(f.type, f.seq, f.flags, new Uint8Array([f.tensorId >> 8, f.tensorId & 0xff]));
    case FrameType.ACK:
      return encodeRaw(f.type, f.seq, f.flags, null);
    case FrameType.CONTROL_NACK:
      if (!f.reason || f.reason.includes(' ')) bad('NACK reason must be one token');
      return encodeRaw(f.type, f.seq, f.flags, reasonBody(f.reason, f.text));
    case FrameType.CONTROL_HELLO: {
      const body = utf8(JSON.stringify(f.hello));
      parseHello(body); // validate what we send
      return encodeRaw(f.type, f.seq, f.flags, body);
    }
    case FrameType.CONTROL_BYE:
      return encodeRaw(f.type, f.seq, f.flags, reasonBody(f.reason));
    case FrameType.CONTROL_FLOWCTL: {
      const body = utf8(JSON.stringify({ window: f.window, credits_added: f.credits_added }));
      parseFlowCtl(body);
      return encodeRaw(f.type, f.seq, f.flags, body);
    }
    case FrameType.CONTROL_PING:
    case FrameType.CONTROL_PONG:
      if (f.nonce.length !== PING_NONCE_BYTES) bad('nonce must be 8 bytes');
      return encodeRaw(f.type, f.seq, f.flags, f.nonce);
    default:
      return bad('unknown frame type');
  }
}

/**
 * The first bytes of a TENSOR_DATA frame: the 16-byte header (payload_length counting `f.data`) and the chunk
 * header. `head + f.data` is exactly `encodeFrame(f)`; a port that sends a message in parts sends the data
 * without joining it (issue #11). Validates like `encodeFrame`.
 */
export function encodeDataHead(f: Extract<X08Frame, { type: typeof FrameType.TENSOR_DATA }>): Uint8Array {
  if (!isInt(f.seq, 0, SEQ_MAX)) bad('seq must be a u32');
  if (!isInt(f.flags, 0, SEQ_MAX) || f.flags & ~ALLOWED_FLAGS[f.type])
    bad('flags not allowed on this frame type');
  const h: ChunkHeader = { tensorId: f.tensorId, dtype: f.dtype, shape: f.shape };
  checkChunkHeader(h);
  const hdr = chunkHeaderBytes(f.shape.length);
  const out = new Uint8Array(HEADER_BYTES + hdr);
  out.set(encodeRaw(f.type, f.seq, f.flags, null), 0);
  new DataView(out.buffer).setUint32(8, hdr + f.data.length);
  writeChunkHeader(out, HEADER_BYTES, h);
  return out;
}

/** Next sender sequence number: u32, starts at 1, wraps 2^32−1 → 1 (A3). */
export const nextSeq = (seq: number): number => (seq >= SEQ_MAX ? 1 : seq + 1);
