/**
 * X08 session machinery shared by both roles (split out of session.ts): the session's state, the send path
 * (chunking, zstd gate, credit window, control frames), ACK policy, keepalive/lifetime/token timers and closing
 * (NACK/BYE, freeing every buffer). `TensorSession` (session.ts) adds opening, HELLO, the receive path and the
 * public surface. Never logs tensor bytes or tokens.
 */
import { randomBytes } from '../../core/encoding.js';
import { HnError } from '../../core/errors.js';
import { DTYPE_BYTES, type NodeID, type Tensor } from '../../core/types.js';
import { isVectoredPort, type BytePort, type VectoredPort } from '../../net/port.js';
import type { Logger } from '../../observability/logger.js';
import { zstdCompress } from './compress.js';
import { RecvWindow, SendWindow, wireSeq } from './flow.js';
import {
  DTYPE_CODE,
  FLAG_COMPRESSED,
  FLAG_FINAL,
  FLAG_GRAD,
  FrameType,
  MAX_DIMS,
  X08Error,
  declaredBytes,
  encodeDataHead,
  encodeFrame,
  type Negotiation,
  type X08Frame,
  type X08Reason,
} from './frame.js';
import { Reassembly } from './reassembly.js';
import {
  COMPRESSION_RATIO_GATE,
  DEFAULT_TENSOR_TRANSPORT_CONFIG,
  systemClock,
  type AcceptOptions,
  type Clock,
  type CloseInfo,
  type CommonOptions,
  type RecvTensor,
  type SessionState,
  type SessionStats,
  type TensorTransportConfig,
} from './session-types.js';

export abstract class SessionBase {
  protected stateV: SessionState = 'connecting';
  protected readonly cfg: TensorTransportConfig;
  protected readonly clock: Clock;
  protected readonly log: Logger | undefined;
  protected readonly port: BytePort;
  protected readonly role: 'initiator' | 'responder';
  protected readonly local: NodeID;
  protected readonly remote: NodeID;
  protected sessionIdV = '';
  protected purposeV = '';
  protected negotiatedV: Negotiation | null = null;
  protected offer: Negotiation | null = null;

  protected sendLogical = 0;
  protected recvLogical = 0;
  protected sendWin: SendWindow | null = null;
  protected recvWin: RecvWindow | null = null;
  protected helloSeen = false;
  protected helloSentAt = 0;

  protected readonly rx = new Reassembly();
  protected readonly queue: RecvTensor[] = [];
  protected queueBytes = 0;
  protected recvWaiters: { resolve: (r: RecvTensor) => void; reject: (e: unknown) => void }[] = [];
  protected sendChain: Promise<void> = Promise.resolve();
  protected readonly sending = new Set<number>();
  protected compressionUseful: boolean | null = null;

  protected readonly openedAt: number;
  protected lastActivity: number;
  protected tokenExpiresAtMs = Infinity;
  protected keepaliveNonce: string | null = null;
  protected keepaliveSentAt = 0;
  protected readonly pings = new Map<
    string,
    { sentAt: number; resolve: (ms: number) => void; reject: (e: unknown) => void }
  >();
  protected timer: unknown = null;
  protected timerDue = Infinity;
  protected ackTimer: unknown = null;

  protected closeInfoV: CloseInfo | null = null;
  protected closeError: HnError | null = null;
  protected readonly closeCbs: ((i: CloseInfo) => void)[] = [];
  protected ready!: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void };

  protected readonly statsV: SessionStats = {
    bytes_sent: 0,
    bytes_received: 0,
    bytes_compressed_out: 0,
    bytes_uncompressed_out: 0,
    frames_sent: 0,
    frames_received: 0,
    rtt_estimate_ms: 0,
    tensors_sent: 0,
    tensors_received: 0,
  };

  protected acceptOpts: AcceptOptions | null = null;

  protected constructor(
    port: BytePort,
    role: 'initiator' | 'responder',
    local: NodeID,
    remote: NodeID,
    opts: CommonOptions,
  ) {
    this.port = port;
    this.role = role;
    this.local = local;
    this.remote = remote;
    this.cfg = { ...DEFAULT_TENSOR_TRANSPORT_CONFIG, ...(opts.config ?? {}) };
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log;
    this.openedAt = this.clock.now();
    this.lastActivity = this.openedAt;
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // connect()/accept() await this promise; where they never reach that await (HELLO not encodable) the
    // session's end is noted here instead of surfacing as an unhandled rejection
    promise.then(undefined, (e: unknown) =>
      this.log?.debug('x08 session ended before READY', {
        role,
        reason: e instanceof HnError ? e.code : 'error',
      }),
    );
    this.ready = { promise, resolve, reject };
  }

  // -------------------------------------------------------------------------------------------------------
  // Sending

  protected isClosed(): boolean {
    return this.stateV === 'closed';
  }

  protected checkOutgoing(tensorId: number, t: Tensor): void {
    if (this.isClosed()) throw this.closeError ?? new HnError('closed');
    if (!Number.isInteger(tensorId) || tensorId < 0 || tensorId > 0xffff)
      throw new HnError('bad_request', 'tensorId must be a u16');
    if (this.sending.has(tensorId)) throw new HnError('bad_request', 'that tensorId is already being sent');
    if (!t || !(t.dtype in DTYPE_CODE)) throw new HnError('bad_request', 'unknown dtype');
    if (!Array.isArray(t.shape) || t.shape.length < 1 || t.shape.length > MAX_DIMS)
      throw new HnError('bad_request', 'shape needs 1..8 dims');
    for (const d of t.shape)
      if (!Number.isInteger(d) || d < 1 || d > 0xffffffff)
        throw new HnError('bad_request', 'dims must be u32 ≥ 1');
    if (!(t.data instanceof Uint8Array) || declaredBytes(DTYPE_BYTES[t.dtype], t.shape) !== t.data.length) {
      throw new HnError('bad_request', 'data length ≠ product(shape)·sizeof(dtype)');
    }
  }

  protected async doSend(tensorId: number, t: Tensor, grad: boolean): Promise<void> {
    const neg = this.negotiatedV!;
    const win = this.sendWin!;
    let body = t.data;
    let compressed = false;
    if (
      neg.compression === 'zstd' &&
      t.data.length >= this.cfg.compression_threshold_bytes &&
      this.compressionUseful !== false
    ) {
      const c = zstdCompress(t.data, this.cfg.compression_level);
      const ratio = c.length / t.data.length;
      if (this.compressionUseful === null) this.compressionUseful = ratio <= COMPRESSION_RATIO_GATE;
      if (this.compressionUseful && c.length < t.data.length) {
        body = c;
        compressed = true;
      }
    }
    if (this.isClosed()) throw this.closeError ?? new HnError('closed');
    const baseFlags = (compressed ? FLAG_COMPRESSED : 0) | (grad ? FLAG_GRAD : 0);
    const step = neg.max_chunk_bytes;
    const vectored = isVectoredPort(this.port);
    for (let off = 0; off < body.length; off += step) {
      await win.waitForSlot();
      if (this.isClosed()) throw this.closeError ?? new HnError('closed');
      const end = Math.min(off + step, body.length);
      const seq = this.takeSeq();
      const f = {
        type: FrameType.TENSOR_DATA,
        seq: wireSeq(seq),
        flags: baseFlags | (end === body.length ? FLAG_FINAL : 0),
        tensorId,
        dtype: t.dtype,
        shape: t.shape,
        data: body.subarray(off, end),
      } as const;
      // a link channel takes the frame as header + the tensor's own bytes, cut into fragments without a join
      const parts = vectored ? [encodeDataHead(f), f.data] : [encodeFrame(f)];
      win.onDataSent(seq);
      this.markStreaming();
      await this.portSend(parts);
    }
    await win.waitForSlot();
    if (this.isClosed()) throw this.closeError ?? new HnError('closed');
    const seq = this.takeSeq();
    const endFrame = encodeFrame({ type: FrameType.TENSOR_END, seq: wireSeq(seq), flags: 0, tensorId });
    win.onDataSent(seq);
    await this.portSend([endFrame]);
    this.statsV.bytes_uncompressed_out += t.data.length;
    this.statsV.bytes_compressed_out += body.length;
    this.statsV.tensors_sent++;
  }

  protected takeSeq(): number {
    return ++this.sendLogical;
  }

  protected markStreaming(): void {
    if (this.stateV === 'ready') this.stateV = 'streaming';
  }

  /** One frame, given as its parts (more than one only on a vectored port). */
  protected portSend(parts: Uint8Array[]): Promise<void> {
    this.statsV.frames_sent++;
    for (const p of parts) this.statsV.bytes_sent += p.length;
    this.lastActivity = this.clock.now();
    return parts.length === 1 ? this.port.send(parts[0]!) : (this.port as VectoredPort).sendParts(parts);
  }

  /** Control frames bypass the window and never wait; ACK takes no seq, every other frame takes the next one. */
  protected sendControl(f: X08Frame): void {
    if (f.type !== FrameType.ACK) f = { ...f, seq: wireSeq(this.takeSeq()) };
    let bytes: Uint8Array;
    try {
      bytes = encodeFrame(f);
    } catch (e) {
      if (f.type !== FrameType.ACK) this.sendLogical--; // nothing was sent with that seq
      throw e;
    }
    // never awaited (control frames bypass the window); a failed send means the port closed, which closes
    // the session through the port's onClose
    this.portSend([bytes]).catch((e: unknown) =>
      this.log?.debug('x08 control frame not sent', { frame_type: f.type, error: e as Error }),
    );
  }

  // -------------------------------------------------------------------------------------------------------
  // ACKs, timers

  protected maybeAck(force: boolean): void {
    const rw = this.recvWin;
    if (!rw || this.stateV === 'closed' || rw.unacked === 0) return;
    // hold ACKs while the application leaves completed tensors unread: backpressure reaches the sender
    if (this.queueBytes > this.cfg.rx_buffer_bytes_max / 2) return;
    if (force || rw.unacked >= Math.ceil(rw.window / 2)) {
      this.sendAck();
      return;
    }
    if (this.ackTimer === null) {
      this.ackTimer = this.clock.setTimeout(() => {
        this.ackTimer = null;
        this.maybeAck(true);
      }, this.cfg.ack_delay_ms);
    }
  }

  private ackTurnPending = false;
  /**
   * The ACK that follows a TENSOR_END goes out at the end of the current event-loop turn, not from inside the frame
   * handler: whatever the application does synchronously with the tensor (a shard host's forward, an orchestrator
   * passing it on to the next shard) goes first, and the ACK then travels with or after that answer instead of
   * waking the peer on its own in between. Still right after the END, far inside the 20 ms ACK bound.
   */
  protected ackAfterTurn(): void {
    if (this.ackTurnPending) return;
    this.ackTurnPending = true;
    afterTurn(() => {
      this.ackTurnPending = false;
      this.maybeAck(true);
    });
  }

  protected sendAck(): void {
    // a pending delayed-ACK timer is left to fire: it then finds nothing unacked (or acks frames that came since, still
    // within 20 ms of them), which spares a clearTimeout + setTimeout pair per tensor on a pipeline's decode path
    const upTo = this.recvLogical;
    this.sendControl({ type: FrameType.ACK, seq: wireSeq(upTo), flags: 0 });
    this.recvWin!.noteAckSent(upTo);
  }

  protected rttSample(ms: number): void {
    const s = this.statsV;
    s.rtt_estimate_ms = s.rtt_estimate_ms === 0 ? ms : s.rtt_estimate_ms * 0.875 + ms * 0.125;
  }

  protected deadlines(): { hello: number; lifetime: number; token: number; keepalive: number } {
    const k = this.cfg.keepalive_seconds * 1000;
    return {
      hello: this.stateV === 'connecting' ? this.openedAt + this.cfg.hello_timeout_s * 1000 : Infinity,
      lifetime: this.openedAt + this.cfg.max_session_lifetime_seconds * 1000,
      token: this.tokenExpiresAtMs,
      keepalive: this.keepaliveNonce !== null ? this.keepaliveSentAt + 2 * k : this.lastActivity + k,
    };
  }

  protected armTimer(): void {
    if (this.stateV === 'closed') return;
    const d = this.deadlines();
    const due = Math.min(d.hello, d.lifetime, d.token, d.keepalive);
    if (this.timer !== null) {
      if (this.timerDue <= due) return; // an earlier tick re-evaluates anyway
      this.clock.clearTimeout(this.timer);
    }
    this.timerDue = due;
    this.timer = this.clock.setTimeout(() => this.onTick(), Math.max(0, due - this.clock.now()));
  }

  protected onTick(): void {
    this.timer = null;
    this.timerDue = Infinity;
    if (this.stateV === 'closed') return;
    const now = this.clock.now();
    const d = this.deadlines();
    if (now >= d.hello) return this.expire('timeout', 'no HELLO in time', true);
    if (now >= d.lifetime) return this.expire('lifetime', undefined, false);
    if (now >= d.token) return this.expire('token_expired', undefined, false);
    if (now >= d.keepalive) {
      if (this.keepaliveNonce !== null) return this.expire('timeout', 'no PONG in time', true);
      const nonce = randomBytes(8);
      this.keepaliveNonce = hexKey(nonce);
      this.keepaliveSentAt = now;
      this.pings.set(this.keepaliveNonce, { sentAt: now, resolve: () => {}, reject: () => {} });
      this.sendControl({ type: FrameType.CONTROL_PING, seq: 0, flags: 0, nonce });
    }
    this.armTimer();
  }

  protected expire(reason: string, text: string | undefined, error: boolean): void {
    this.finish(
      { reason, ...(text ? { text } : {}), by: 'local', error },
      error ? new X08Error('timeout', text) : new HnError('closed', `session ended: ${reason}`),
      { type: FrameType.CONTROL_BYE, seq: 0, flags: 0, reason },
    );
  }

  // -------------------------------------------------------------------------------------------------------
  // Closing

  /** A local protocol error: NACK with the reason, then close. */
  protected fail(e: unknown): void {
    if (this.stateV === 'closed') return;
    let err: HnError;
    let reason: X08Reason;
    if (e instanceof X08Error) {
      err = e;
      reason = e.reason;
    } else if (e instanceof HnError) {
      err = e;
      reason = e.code;
    } else {
      err = new HnError('internal_error');
      reason = 'internal_error';
    }
    this.finish({ reason, by: 'local', error: true }, err, {
      type: FrameType.CONTROL_NACK,
      seq: 0,
      flags: 0,
      reason,
    });
  }

  protected finish(info: CloseInfo, err: HnError, frame?: X08Frame): void {
    if (this.stateV === 'closed') return;
    if (frame) {
      try {
        this.sendControl(frame);
      } catch {
        /* best effort */
      }
    }
    this.stateV = 'closed';
    this.closeInfoV = info;
    this.closeError = err;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    if (this.ackTimer !== null) this.clock.clearTimeout(this.ackTimer);
    this.timer = this.ackTimer = null;
    // free buffers: partial tensors always; completed ones too unless the peer ended normally with BYE
    this.rx.clear();
    this.recvWin?.clear();
    if (info.error || info.by === 'local') {
      this.queue.length = 0;
      this.queueBytes = 0;
    }
    for (const w of this.recvWaiters.splice(0)) w.reject(err);
    this.sendWin?.fail(err);
    for (const p of this.pings.values()) p.reject(err);
    this.pings.clear();
    this.ready.reject(err);
    this.port.close(info.reason);
    for (const cb of this.closeCbs.splice(0)) {
      try {
        cb({ ...info });
      } catch {
        /* a listener's failure is not ours */
      }
    }
  }
}

export function hexKey(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

/** Run `fn` as a macrotask (after the current turn and its microtasks): setImmediate where there is one, else a
 * MessageChannel message (browsers), else a 0 ms timer. */
const afterTurn: (fn: () => void) => void = (() => {
  const g = globalThis as unknown as {
    setImmediate?: (fn: () => void) => unknown;
    MessageChannel?: new () => {
      port1: { onmessage: (() => void) | null };
      port2: { postMessage(m: unknown): void };
    };
  };
  if (typeof g.setImmediate === 'function') return (fn) => void g.setImmediate!(fn);
  if (typeof g.MessageChannel === 'function') {
    const q: (() => void)[] = [];
    const ch = new g.MessageChannel();
    ch.port1.onmessage = () => q.shift()?.();
    return (fn) => {
      q.push(fn);
      ch.port2.postMessage(0);
    };
  }
  return (fn) => void setTimeout(fn, 0);
})();
