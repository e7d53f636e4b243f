/**
 * The smallest transport abstraction: an ordered, reliable, message-oriented byte pipe
 * with backpressure. A WebRTC data channel, a relay-forwarded channel, an in-memory pair
 * and an X08 channel multiplexed on a peer link all present this shape.
 */
export interface BytePort {
  /** Queue one message. Resolves when the sender may write more (backpressure); rejects with HnError('closed') after close. */
  send(msg: Uint8Array): Promise<void>;
  /** Register the receiver; messages arrive in order. Only one receiver. */
  onMessage(cb: (msg: Uint8Array) => void): void;
  /** Called once when either side closes or the transport fails. */
  onClose(cb: (reason: string) => void): void;
  close(reason?: string): void;
  readonly closed: boolean;
  /** Largest message the transport carries in one piece. */
  readonly maxMessageBytes: number;
}

/**
 * A BytePort that also sends a message given in parts (gathered, never joined) and hands a message that arrived in
 * pieces over as those pieces, so bulk senders and receivers skip a copy (issue #11: an X08 channel on a link,
 * whose messages cross the link in fragments). The bytes on the wire are those of `send(join(parts))`.
 */
export interface VectoredPort extends BytePort {
  sendParts(parts: readonly Uint8Array[]): Promise<void>;
  /** Register the receiver instead of `onMessage`: each message as the pieces it arrived in (views, for good). */
  onMessageParts(cb: (parts: Uint8Array[]) => void): void;
}

export const isVectoredPort = (p: BytePort): p is VectoredPort =>
  typeof (p as Partial<VectoredPort>).sendParts === 'function' &&
  typeof (p as Partial<VectoredPort>).onMessageParts === 'function';

export interface MemoryPortOptions {
  /** Bytes buffered in flight before `send` starts waiting (like RTCDataChannel.bufferedAmount). */
  highWaterBytes?: number;
  maxMessageBytes?: number;
}

/**
 * A connected pair of in-memory ports. Messages are copied (never shared) and delivered
 * asynchronously in order, so code under test sees the same ordering and aliasing rules as
 * on a real channel.
 */
export function memoryPortPair(opts: MemoryPortOptions = {}): [BytePort, BytePort] {
  const high = opts.highWaterBytes ?? 1 << 20;
  const maxMessageBytes = opts.maxMessageBytes ?? 256 * 1024;
  type Side = {
    recv?: (m: Uint8Array) => void;
    closeCbs: ((r: string) => void)[];
    closed: boolean;
    /** close() was called here; the close itself lands on the next tick */
    closing: boolean;
    queue: Uint8Array[];
    buffered: number;
    waiters: (() => void)[];
    scheduled: boolean;
  };
  const mk = (): Side => ({
    closeCbs: [],
    closed: false,
    closing: false,
    queue: [],
    buffered: 0,
    waiters: [],
    scheduled: false,
  });
  const sides: [Side, Side] = [mk(), mk()];

  const pump = (to: Side, from: Side) => {
    to.scheduled = false;
    while (to.queue.length && !to.closed) {
      if (!to.recv) return; // hold until a receiver registers
      const m = to.queue.shift()!;
      from.buffered -= m.length;
      to.recv(m);
    }
    if (from.buffered <= high / 2) {
      const w = from.waiters.splice(0);
      for (const f of w) f();
    }
  };
  const schedule = (to: Side, from: Side) => {
    if (to.scheduled) return;
    to.scheduled = true;
    setTimeout(() => pump(to, from), 0);
  };

  const closeBoth = (reason: string) => {
    for (const s of sides) {
      if (s.closed) continue;
      s.closed = true;
      for (const w of s.waiters.splice(0)) w();
      for (const cb of s.closeCbs) cb(reason);
    }
  };

  const port = (me: Side, other: Side): BytePort => ({
    async send(msg: Uint8Array) {
      if (me.closed || me.closing) {
        const { HnError } = await import('../core/errors.js');
        throw new HnError('closed', 'port closed');
      }
      if (msg.length > maxMessageBytes)
        throw new RangeError(`message of ${msg.length} bytes exceeds ${maxMessageBytes}`);
      other.queue.push(msg.slice());
      me.buffered += msg.length;
      schedule(other, me);
      if (me.buffered > high) await new Promise<void>((r) => me.waiters.push(r));
    },
    onMessage(cb) {
      me.recv = cb;
      if (me.queue.length) schedule(me, other);
    },
    onClose(cb) {
      if (me.closed) setTimeout(() => cb('closed'), 0);
      else me.closeCbs.push(cb);
    },
    close(reason = 'closed') {
      if (me.closed || me.closing) return;
      // like the other transports: no send is accepted once close() has returned
      me.closing = true;
      setTimeout(() => closeBoth(reason), 0);
    },
    get closed() {
      return me.closed || me.closing;
    },
    maxMessageBytes,
  });
  return [port(sides[0], sides[1]), port(sides[1], sides[0])];
}
