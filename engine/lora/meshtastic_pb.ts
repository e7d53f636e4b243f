/**
 * Our own minimal protobuf codec for the Meshtastic serial API messages that M29 uses (digest §8,
 * field numbers from the public mesh.proto). Apache-2.0: the GPL `@meshtastic/protobufs` package is
 * only a devDependency that a test uses to check these bytes byte for byte.
 *
 * Encoding follows proto3 as the reference implementation writes it: fields in field-number order,
 * scalars equal to their default are omitted unless they are in a oneof or `optional`.
 * Decoding skips unknown fields and rejects anything structurally wrong with `lora_frame_malformed`.
 */
import { HnError } from '../core/errors.js';

type Scalar = 'uint32' | 'int32' | 'fixed32' | 'bool' | 'float' | 'bytes' | 'enum' | 'string';
interface FieldDesc {
  no: number;
  name: string;
  type: Scalar | MsgDesc;
  /** oneof member or `optional`: written even when it holds the default */
  presence?: boolean;
}
interface MsgDesc {
  name: string;
  fields: FieldDesc[];
}
export type PbMessage = Record<string, unknown>;

const malformed = (why: string): HnError =>
  new HnError('lora_frame_malformed', `protobuf: ${why}`, { details: { reason: 'protobuf' } });

// ---- descriptors (subset of meshtastic/mesh.proto, config.proto, portnums.proto) ----
export const Data: MsgDesc = {
  name: 'Data',
  fields: [
    { no: 1, name: 'portnum', type: 'enum' },
    { no: 2, name: 'payload', type: 'bytes' },
    { no: 3, name: 'want_response', type: 'bool' },
    { no: 4, name: 'dest', type: 'fixed32' },
    { no: 5, name: 'source', type: 'fixed32' },
    { no: 6, name: 'request_id', type: 'fixed32' },
    { no: 7, name: 'reply_id', type: 'fixed32' },
    { no: 8, name: 'emoji', type: 'fixed32' },
    { no: 9, name: 'bitfield', type: 'uint32', presence: true },
  ],
};
export const MeshPacket: MsgDesc = {
  name: 'MeshPacket',
  fields: [
    { no: 1, name: 'from', type: 'fixed32' },
    { no: 2, name: 'to', type: 'fixed32' },
    { no: 3, name: 'channel', type: 'uint32' },
    { no: 4, name: 'decoded', type: Data, presence: true },
    { no: 5, name: 'encrypted', type: 'bytes', presence: true },
    { no: 6, name: 'id', type: 'fixed32' },
    { no: 7, name: 'rx_time', type: 'fixed32' },
    { no: 8, name: 'rx_snr', type: 'float' },
    { no: 9, name: 'hop_limit', type: 'uint32' },
    { no: 10, name: 'want_ack', type: 'bool' },
    { no: 11, name: 'priority', type: 'enum' },
    { no: 12, name: 'rx_rssi', type: 'int32' },
    { no: 15, name: 'hop_start', type: 'uint32' },
  ],
};
export const Heartbeat: MsgDesc = { name: 'Heartbeat', fields: [{ no: 1, name: 'nonce', type: 'uint32' }] };
export const ToRadio: MsgDesc = {
  name: 'ToRadio',
  fields: [
    { no: 1, name: 'packet', type: MeshPacket, presence: true },
    { no: 3, name: 'want_config_id', type: 'uint32', presence: true },
    { no: 4, name: 'disconnect', type: 'bool', presence: true },
    { no: 7, name: 'heartbeat', type: Heartbeat, presence: true },
  ],
};
export const MyNodeInfo: MsgDesc = {
  name: 'MyNodeInfo',
  fields: [
    { no: 1, name: 'my_node_num', type: 'uint32' },
    { no: 8, name: 'reboot_count', type: 'uint32' },
    { no: 11, name: 'min_app_version', type: 'uint32' },
  ],
};
export const LoRaConfig: MsgDesc = {
  name: 'LoRaConfig',
  fields: [
    { no: 1, name: 'use_preset', type: 'bool' },
    { no: 2, name: 'modem_preset', type: 'enum' },
    { no: 3, name: 'bandwidth', type: 'uint32' },
    { no: 4, name: 'spread_factor', type: 'uint32' },
    { no: 5, name: 'coding_rate', type: 'uint32' },
    { no: 6, name: 'frequency_offset', type: 'float' },
    { no: 7, name: 'region', type: 'enum' },
    { no: 8, name: 'hop_limit', type: 'uint32' },
    { no: 9, name: 'tx_enabled', type: 'bool' },
    { no: 10, name: 'tx_power', type: 'int32' },
    { no: 11, name: 'channel_num', type: 'uint32' },
    { no: 12, name: 'override_duty_cycle', type: 'bool' },
  ],
};
export const Config: MsgDesc = {
  name: 'Config',
  fields: [{ no: 6, name: 'lora', type: LoRaConfig, presence: true }],
};
export const QueueStatus: MsgDesc = {
  name: 'QueueStatus',
  fields: [
    { no: 1, name: 'res', type: 'int32' },
    { no: 2, name: 'free', type: 'uint32' },
    { no: 3, name: 'maxlen', type: 'uint32' },
    { no: 4, name: 'mesh_packet_id', type: 'uint32' },
  ],
};
export const FromRadio: MsgDesc = {
  name: 'FromRadio',
  fields: [
    { no: 1, name: 'id', type: 'uint32' },
    { no: 2, name: 'packet', type: MeshPacket, presence: true },
    { no: 3, name: 'my_info', type: MyNodeInfo, presence: true },
    { no: 5, name: 'config', type: Config, presence: true },
    { no: 7, name: 'config_complete_id', type: 'uint32', presence: true },
    { no: 8, name: 'rebooted', type: 'bool', presence: true },
    { no: 11, name: 'queueStatus', type: QueueStatus, presence: true },
  ],
};
export const Routing: MsgDesc = {
  name: 'Routing',
  fields: [{ no: 3, name: 'error_reason', type: 'enum', presence: true }],
};

export const PORTNUM_ROUTING_APP = 5;
export const PORTNUM_PRIVATE_APP = 256;
export const ROUTING_ERROR_DUTY_CYCLE_LIMIT = 9;
export const BROADCAST_NUM = 0xffffffff;

// ---- writer ----
class Writer {
  private buf = new Uint8Array(64);
  len = 0;
  private ensure(n: number) {
    if (this.len + n <= this.buf.length) return;
    const nb = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    nb.set(this.buf.subarray(0, this.len));
    this.buf = nb;
  }
  byte(b: number) {
    this.ensure(1);
    this.buf[this.len++] = b;
  }
  varint32(v: number) {
    v >>>= 0;
    while (v > 0x7f) {
      this.byte((v & 0x7f) | 0x80);
      v >>>= 7;
    }
    this.byte(v);
  }
  /** int32 as proto writes it: negative values sign-extended to 64 bits (10 bytes) */
  int32(v: number) {
    if (v >= 0) return this.varint32(v);
    let lo = v >>> 0;
    let hi = 0xffffffff;
    for (let i = 0; i < 9; i++) {
      this.byte((lo & 0x7f) | 0x80);
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    this.byte(lo & 0x01);
  }
  fixed32(v: number) {
    this.ensure(4);
    new DataView(this.buf.buffer).setUint32(this.len, v >>> 0, true);
    this.len += 4;
  }
  float(v: number) {
    this.ensure(4);
    new DataView(this.buf.buffer).setFloat32(this.len, v, true);
    this.len += 4;
  }
  bytes(b: Uint8Array) {
    this.varint32(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

const isDefault = (t: Scalar, v: unknown): boolean =>
  t === 'bytes' || t === 'string'
    ? (v as { length: number }).length === 0
    : t === 'bool'
      ? v === false
      : t === 'float'
        ? Object.is(v, 0) // the reference writes -0.0
        : v === 0;

function writeMsg(w: Writer, d: MsgDesc, m: PbMessage): void {
  for (const f of d.fields) {
    const v = m[f.name];
    if (v === undefined || v === null) continue;
    if (typeof f.type === 'object') {
      const sub = new Writer();
      writeMsg(sub, f.type, v as PbMessage);
      w.varint32((f.no << 3) | 2);
      w.bytes(sub.finish());
      continue;
    }
    if (!f.presence && isDefault(f.type, v)) continue;
    switch (f.type) {
      case 'uint32':
        w.varint32((f.no << 3) | 0);
        w.varint32(v as number);
        break;
      case 'int32':
      case 'enum':
        w.varint32((f.no << 3) | 0);
        w.int32(v as number);
        break;
      case 'bool':
        w.varint32((f.no << 3) | 0);
        w.byte(v ? 1 : 0);
        break;
      case 'fixed32':
        w.varint32((f.no << 3) | 5);
        w.fixed32(v as number);
        break;
      case 'float':
        w.varint32((f.no << 3) | 5);
        w.float(v as number);
        break;
      case 'bytes':
        w.varint32((f.no << 3) | 2);
        w.bytes(v as Uint8Array);
        break;
      case 'string':
        w.varint32((f.no << 3) | 2);
        w.bytes(new TextEncoder().encode(v as string));
        break;
    }
  }
}

export function encodeMessage(d: MsgDesc, m: PbMessage): Uint8Array {
  const w = new Writer();
  writeMsg(w, d, m);
  return w.finish();
}

// ---- reader ----
const MAX_DEPTH = 8;

function readVarint(b: Uint8Array, pos: number): [lo: number, hi: number, next: number] {
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < 10; i++) {
    if (pos >= b.length) throw malformed('truncated varint');
    const byte = b[pos++]!;
    if (i < 4) lo |= (byte & 0x7f) << (7 * i);
    else if (i === 4) {
      lo |= (byte & 0x0f) << 28;
      hi |= (byte & 0x7f) >> 4;
    } else hi |= (byte & 0x7f) << (7 * i - 32);
    if (!(byte & 0x80)) return [lo >>> 0, hi >>> 0, pos];
  }
  throw malformed('varint longer than 10 bytes');
}

function readMsg(b: Uint8Array, d: MsgDesc, depth: number): PbMessage {
  if (depth > MAX_DEPTH) throw malformed('nested too deep');
  const out: PbMessage = {};
  let pos = 0;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  while (pos < b.length) {
    const [tagLo, tagHi, p1] = readVarint(b, pos);
    pos = p1;
    if (tagHi !== 0) throw malformed('field number too large');
    const no = tagLo >>> 3;
    const wt = tagLo & 7;
    if (no === 0) throw malformed('field number 0');
    const f = d.fields.find((x) => x.no === no);
    let raw:
      | { kind: 'varint'; lo: number; hi: number }
      | { kind: 'fixed32'; at: number }
      | { kind: 'len'; v: Uint8Array }
      | null = null;
    switch (wt) {
      case 0: {
        const [lo, hi, p] = readVarint(b, pos);
        pos = p;
        raw = { kind: 'varint', lo, hi };
        break;
      }
      case 1:
        if (pos + 8 > b.length) throw malformed('truncated fixed64');
        pos += 8;
        break;
      case 2: {
        const [lo, hi, p] = readVarint(b, pos);
        if (hi !== 0 || lo > b.length - p) throw malformed('length past end');
        raw = { kind: 'len', v: b.subarray(p, p + lo) };
        pos = p + lo;
        break;
      }
      case 5:
        if (pos + 4 > b.length) throw malformed('truncated fixed32');
        raw = { kind: 'fixed32', at: pos };
        pos += 4;
        break;
      default:
        throw malformed(`wire type ${wt}`);
    }
    if (!f) continue; // unknown field: skipped
    const t = f.type;
    if (typeof t === 'object') {
      if (raw?.kind !== 'len') throw malformed(`${d.name}.${f.name}: wrong wire type`);
      out[f.name] = readMsg(raw.v, t, depth + 1);
      continue;
    }
    switch (t) {
      case 'uint32':
      case 'bool':
      case 'int32':
      case 'enum':
        if (raw?.kind !== 'varint') throw malformed(`${d.name}.${f.name}: wrong wire type`);
        out[f.name] =
          t === 'bool' ? raw.lo !== 0 || raw.hi !== 0 : t === 'uint32' ? raw.lo >>> 0 : raw.lo | 0;
        break;
      case 'fixed32':
      case 'float':
        if (raw?.kind !== 'fixed32') throw malformed(`${d.name}.${f.name}: wrong wire type`);
        out[f.name] = t === 'float' ? dv.getFloat32(raw.at, true) : dv.getUint32(raw.at, true);
        break;
      case 'bytes':
      case 'string':
        if (raw?.kind !== 'len') throw malformed(`${d.name}.${f.name}: wrong wire type`);
        out[f.name] = t === 'bytes' ? raw.v.slice() : new TextDecoder().decode(raw.v);
        break;
    }
  }
  return out;
}

export function decodeMessage(d: MsgDesc, b: Uint8Array): PbMessage {
  return readMsg(b, d, 0);
}

// ---- typed views of what M29 uses ----
export interface DataMsg {
  portnum?: number;
  payload?: Uint8Array;
  request_id?: number;
}
export interface MeshPacketMsg {
  from?: number;
  to?: number;
  channel?: number;
  decoded?: DataMsg;
  encrypted?: Uint8Array;
  id?: number;
  rx_snr?: number;
  hop_limit?: number;
  want_ack?: boolean;
  rx_rssi?: number;
}
export interface ToRadioMsg {
  packet?: MeshPacketMsg;
  want_config_id?: number;
  disconnect?: boolean;
  heartbeat?: { nonce?: number };
}
export interface FromRadioMsg {
  id?: number;
  packet?: MeshPacketMsg;
  my_info?: { my_node_num?: number };
  config?: {
    lora?: {
      use_preset?: boolean;
      modem_preset?: number;
      bandwidth?: number;
      spread_factor?: number;
      coding_rate?: number;
      region?: number;
      tx_power?: number;
    };
  };
  config_complete_id?: number;
  rebooted?: boolean;
  queueStatus?: { res?: number; free?: number; maxlen?: number; mesh_packet_id?: number };
}

export const encodeToRadio = (m: ToRadioMsg): Uint8Array => encodeMessage(ToRadio, m as PbMessage);
export const decodeToRadio = (b: Uint8Array): ToRadioMsg => decodeMessage(ToRadio, b) as ToRadioMsg;
export const encodeFromRadio = (m: FromRadioMsg): Uint8Array => encodeMessage(FromRadio, m as PbMessage);
export const decodeFromRadio = (b: Uint8Array): FromRadioMsg => decodeMessage(FromRadio, b) as FromRadioMsg;
export const encodeRouting = (m: { error_reason?: number }): Uint8Array => encodeMessage(Routing, m);
export const decodeRouting = (b: Uint8Array): { error_reason?: number } => decodeMessage(Routing, b);
