/** The suite's own X08 frame codec (protocol/experimental/08): 16-byte big-endian header + body. */
import { utf8 } from './crypto.js';

export const T = {
  DATA: 1,
  END: 2,
  ACK: 3,
  NACK: 4,
  HELLO: 5,
  BYE: 6,
  FLOWCTL: 7,
  PING: 8,
  PONG: 9,
} as const;

export function frame(
  type: number,
  seq: number,
  flags: number,
  body: Uint8Array = new Uint8Array(0),
  reserved = 0,
  version = 1,
): Uint8Array {
  const out = new Uint8Array(16 + body.length);
  const dv = new DataView(out.buffer);
  dv.setUint8(0, version);
  dv.setUint8(1, type);
  dv.setUint16(2, reserved);
  dv.setUint32(4, seq >>> 0);
  dv.setUint32(8, body.length);
  dv.setUint32(12, flags >>> 0);
  out.set(body, 16);
  return out;
}

export interface Parsed {
  version: number;
  type: number;
  reserved: number;
  seq: number;
  length: number;
  flags: number;
  body: Uint8Array;
}
export function parse(b: Uint8Array): Parsed {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return {
    version: b[0]!,
    type: b[1]!,
    reserved: dv.getUint16(2),
    seq: dv.getUint32(4),
    length: dv.getUint32(8),
    flags: dv.getUint32(12),
    body: b.subarray(16),
  };
}

export const helloBody = (h: Record<string, unknown>) => utf8(JSON.stringify(h));

/** TENSOR_DATA body: tensor_id u16 | dtype u8 | n_dims u8 | shape u32[] | little-endian element data. */
export function dataBody(tensorId: number, dtype: number, shape: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * shape.length + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint16(0, tensorId);
  dv.setUint8(2, dtype);
  dv.setUint8(3, shape.length);
  shape.forEach((d, i) => dv.setUint32(4 + 4 * i, d));
  out.set(data, 4 + 4 * shape.length);
  return out;
}
export function endBody(tensorId: number): Uint8Array {
  const out = new Uint8Array(2);
  new DataView(out.buffer).setUint16(0, tensorId);
  return out;
}
export const fp32le = (xs: number[]): Uint8Array => {
  const out = new Uint8Array(4 * xs.length);
  const dv = new DataView(out.buffer);
  xs.forEach((x, i) => dv.setFloat32(4 * i, x, true));
  return out;
};
