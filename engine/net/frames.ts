/**
 * Link frames (core digest §5.2): every message on every link.
 *   0 u8 link_version=1 | 1 u8 kind (1 CONTROL JSON, 2 X08) | 2 u8 flags (bit0 MORE) | 3 u8 reserved=0
 *   4 u32 channel_id (0 for CONTROL) | 8 u32 msg_no (per kind+channel, from 1) | 12.. fragment payload
 * `LinkMux` fragments messages to fit the transport, reassembles with caps, and closes the
 * link on an unknown kind, a msg_no gap or a reassembly overflow.
 */
import { LINK_CONTROL_MAX_BYTES, LINK_FRAGMENT_BYTES, TENSOR_CHUNK_BYTES } from '../core/constants.js';
import { HnError } from '../core/errors.js';
import { fromUtf8, utf8 } from '../core/encoding.js';
import type { BytePort, VectoredPort } from './port.js';
import { queueTail } from '../core/vocab.js';

export const KIND_CONTROL = 0x01;
export const KIND_X08 = 0x02;
export const HEADER_BYTES = 12;
const FLAG_MORE = 0x01;

export interface LinkFrame {
  kind: number;
  more: boolean;
  channel: number;
  msgNo: number;
  payload: Uint8Array;
}

export function encodeLinkFrame(f: LinkFrame): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + f.payload.length);
  writeLinkHeader(out, f.kind, f.more, f.channel, f.msgNo);
  out.set(f.payload, HEADER_BYTES);
  return out;
}

function writeLinkHeader(out: Uint8Array, kind: number, more: boolean, channel: number, msgNo: number) {
  const dv = new DataView(out.buffer, out.byteOffset, HEADER_BYTES);
  out[0] = 1;
  out[1] = kind;
  out[2] = more ? FLAG_MORE : 0;
  out[3] = 0;
  dv.setUint32(4, channel >>> 0);
  dv.setUint32(8, msgNo >>> 0);
}

export function decodeLinkFrame(b: Uint8Array): LinkFrame {
  if (b.length < HEADER_BYTES) throw new HnError('bad_request', 'link frame shorter than its header');
  if (b[0] !== 1) throw new HnError('bad_request', `unknown link version ${b[0]}`);
  const kind = b[1]!;
  if (kind !== KIND_CONTROL && kind !== KIND_X08)
    throw new HnError('bad_request', `unknown link frame kind ${kind}`);
  if ((b[2]! & ~FLAG_MORE) !== 0 || b[3] !== 0)
    throw new HnError('bad_request', 'reserved link frame bits set');
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const channel = dv.getUint32(4);
  const msgNo = dv.getUint32(8);
  if ((kind === KIND_CONTROL) !== (channel === 0))
    throw new HnError('bad_request', 'channel 0 is for CONTROL only');
  if (msgNo === 0) throw new HnError('bad_request', 'msg_no starts at 1');
  return { kind, more: (b[2]! & FLAG_MORE) !== 0, channel, msgNo, payload: b.subarray(HEADER_BYTES) };
}

export const CONTROL_CAP = LINK_CONTROL_MAX_BYTES;
export const X08_CAP = TENSOR_CHUNK_BYTES + 64 * 1024;
const LINK_BUFFER_CAP = 2 * 1024 * 1024;
/** Messages a channel holds before its receiver registers (an X08 peer sends only HELLO/PING before READY). */
const EARLY_MESSAGES_MAX = 16;

interface Partial {
  msgNo: number;
  parts: Uint8Array[];
  bytes: number;
  /** its channel closed mid-message: the remaining fragments are consumed and dropped */
  discard?: boolean;
}

/** Multiplexes CONTROL messages and X08 channels over one BytePort. */
export class LinkMux {
  private sendNo = new Map<string, number>();
  private recvNo = new Map<string, number>();
  private partial = new Map<string, Partial>();
  private buffered = 0;
  private channels = new Map<
    number,
    {
      recv?: (parts: Uint8Array[], bytes: number) => void;
      /** messages that arrived before the receiver registered (a session still loading, e.g. zstd WASM) */
      early: [Uint8Array[], number][];
      earlyBytes: number;
      close: ((r: string) => void)[];
      closed: boolean;
    }
  >();
  private onControlCb?: (msg: Record<string, unknown>, bytes: number) => void;
  private earlyControl: [Record<string, unknown>, number][] = [];
  private closeCbs: ((reason: string) => void)[] = [];
  private sendChain: Promise<void> = Promise.resolve();
  closed = false;
  bytesIn = 0;
  bytesOut = 0;
  private readonly fragPayload: number;

  constructor(readonly port: BytePort) {
    this.fragPayload = Math.min(LINK_FRAGMENT_BYTES, port.maxMessageBytes) - HEADER_BYTES;
    port.onMessage((m) => this.onBytes(m));
    port.onClose((r) => this.shutdown(r));
  }

  /** Control messages that arrived before a handler was set are delivered to it, in order. */
  onControl(cb: (msg: Record<string, unknown>, bytes: number) => void) {
    this.onControlCb = cb;
    for (const [m, n] of this.earlyControl.splice(0)) cb(m, n);
  }
  onClose(cb: (reason: string) => void) {
    if (this.closed) cb('closed');
    else this.closeCbs.push(cb);
  }

  sendControl(msg: Record<string, unknown>): Promise<void> {
    const bytes = utf8(JSON.stringify(msg));
    if (bytes.length > CONTROL_CAP)
      return Promise.reject(new HnError('too_large', 'control message over 1 MiB'));
    return this.sendMessage(KIND_CONTROL, 0, [bytes]);
  }

  /** One message given as `parts` (their concatenation), cut into link fragments straight from the parts. */
  private sendMessage(kind: number, channel: number, parts: readonly Uint8Array[]): Promise<void> {
    const key = `${kind}:${channel}`;
    const msgNo = (this.sendNo.get(key) ?? 0) + 1;
    this.sendNo.set(key, msgNo);
    let total = 0;
    for (const p of parts) total += p.length;
    // fragments of one message go out back to back, in order, on the shared port
    const job = async () => {
      if (this.closed) throw new HnError('closed', 'link closed');
      let off = 0;
      let pi = 0; // the part that holds byte `off`, and where in it
      let po = 0;
      do {
        const n = Math.min(total - off, this.fragPayload);
        const frame = new Uint8Array(HEADER_BYTES + n);
        writeLinkHeader(frame, kind, off + n < total, channel, msgNo);
        for (let at = HEADER_BYTES; at < frame.length;) {
          const p = parts[pi]!;
          const take = Math.min(p.length - po, frame.length - at);
          frame.set(po === 0 && take === p.length ? p : p.subarray(po, po + take), at);
          at += take;
          po += take;
          if (po === p.length) {
            pi++;
            po = 0;
          }
        }
        this.bytesOut += frame.length;
        await this.port.send(frame);
        off += n;
      } while (off < total);
    };
    const p = this.sendChain.then(job, job);
    this.sendChain = queueTail(p); // the sender gets the error from p
    return p;
  }

  /**
   * An X08 session channel on this link, itself a BytePort; vectored, so an X08 frame goes into link fragments
   * and comes out of them without being joined (issue #11).
   */
  channel(id: number): VectoredPort {
    if (!Number.isInteger(id) || id < 1 || id > 0xffffffff)
      throw new HnError('bad_request', 'channel id must be a non-zero u32');
    let ch = this.channels.get(id);
    if (!ch) this.channels.set(id, (ch = { early: [], earlyBytes: 0, close: [], closed: false }));
    const c = ch;
    const mux = this;
    const send = (parts: readonly Uint8Array[]) =>
      c.closed
        ? Promise.reject(new HnError('closed', 'channel closed'))
        : mux.sendMessage(KIND_X08, id, parts);
    const listen = (cb: (parts: Uint8Array[], bytes: number) => void) => {
      c.recv = cb;
      const early = c.early.splice(0);
      c.earlyBytes = 0;
      for (const [parts, n] of early) cb(parts, n);
    };
    return {
      send: (m) => send([m]),
      sendParts: send,
      onMessage: (cb) => listen((parts, n) => cb(parts.length === 1 ? parts[0]! : concat(parts, n))),
      onMessageParts: (cb) => listen(cb),
      onClose: (cb) => {
        c.close.push(cb);
      },
      close: (reason = 'closed') => mux.closeChannel(id, reason),
      get closed() {
        return c.closed || mux.closed;
      },
      maxMessageBytes: X08_CAP,
    };
  }

  closeChannel(id: number, reason: string) {
    const ch = this.channels.get(id);
    if (!ch || ch.closed) return;
    ch.closed = true;
    ch.early = [];
    ch.earlyBytes = 0;
    this.channels.delete(id);
    // a message half-received on this channel: keep tracking its msg_no so the rest of its fragments are
    // dropped quietly instead of reading as a gap that would close the whole link
    const p = this.partial.get(`${KIND_X08}:${id}`);
    if (p) {
      this.buffered -= p.bytes;
      p.parts = [];
      p.bytes = 0;
      p.discard = true;
    }
    for (const cb of ch.close) cb(reason);
  }

  private dropPartial(key: string) {
    const p = this.partial.get(key);
    if (p) this.buffered -= p.bytes;
    this.partial.delete(key);
  }

  private onBytes(b: Uint8Array) {
    if (this.closed) return;
    this.bytesIn += b.length;
    let f: LinkFrame;
    try {
      f = decodeLinkFrame(b);
    } catch (e) {
      return this.close(`protocol: ${(e as Error).message}`);
    }
    const key = `${f.kind}:${f.channel}`;
    const cap = f.kind === KIND_CONTROL ? CONTROL_CAP : X08_CAP;
    let p = this.partial.get(key);
    if (!p) {
      const expected = (this.recvNo.get(key) ?? 0) + 1;
      if (f.msgNo !== expected)
        return this.close(`protocol: msg_no gap on ${key} (${f.msgNo} ≠ ${expected})`);
      this.recvNo.set(key, f.msgNo);
      p = { msgNo: f.msgNo, parts: [], bytes: 0 };
      this.partial.set(key, p);
    } else if (f.msgNo !== p.msgNo) {
      return this.close(`protocol: interleaved fragments on ${key}`);
    } else if (p.discard) {
      if (!f.more) this.partial.delete(key);
      return;
    }
    // the port hands each message over for good (BytePort copies or allocates per message): keep a view, no copy
    p.parts.push(f.payload);
    p.bytes += f.payload.length;
    this.buffered += f.payload.length;
    if (p.bytes > cap || this.buffered > LINK_BUFFER_CAP) return this.close('protocol: reassembly overflow');
    if (f.more) return;
    this.dropPartial(key);
    if (f.kind === KIND_CONTROL) {
      const msg = p.parts.length === 1 ? p.parts[0]! : concat(p.parts, p.bytes);
      let obj: unknown;
      try {
        obj = JSON.parse(fromUtf8(msg));
      } catch {
        return this.close('protocol: control message is not JSON');
      }
      if (
        !obj ||
        typeof obj !== 'object' ||
        Array.isArray(obj) ||
        typeof (obj as { type?: unknown }).type !== 'string'
      )
        return this.close('protocol: control message without type');
      if (this.onControlCb) this.onControlCb(obj as Record<string, unknown>, msg.length);
      else if (this.earlyControl.length < 64)
        this.earlyControl.push([obj as Record<string, unknown>, msg.length]);
      else this.close('protocol: too many messages before the handshake');
    } else {
      // frames for an unknown or closed channel are dropped (X08 has its own BYE); a known channel whose
      // receiver is not registered yet holds a few, like every BytePort
      // an X08 message goes to its channel as the fragments it came in (views, not joined)
      const ch = this.channels.get(f.channel);
      if (!ch) return;
      if (ch.recv) return ch.recv(p.parts, p.bytes);
      if (ch.early.length >= EARLY_MESSAGES_MAX || ch.earlyBytes + p.bytes > X08_CAP)
        return this.closeChannel(f.channel, 'protocol: too much before the receiver');
      ch.early.push([p.parts, p.bytes]);
      ch.earlyBytes += p.bytes;
    }
  }

  close(reason = 'closed') {
    if (this.closed) return;
    this.port.close(reason);
    this.shutdown(reason);
  }

  private shutdown(reason: string) {
    if (this.closed) return;
    this.closed = true;
    for (const id of [...this.channels.keys()]) this.closeChannel(id, reason);
    this.partial.clear();
    for (const cb of this.closeCbs.splice(0)) cb(reason);
  }
}

function concat(parts: Uint8Array[], n: number) {
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
