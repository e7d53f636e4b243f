/**
 * X08 tensor session (digest A2–A4): HELLO exchange with purpose + session token, sequence numbers,
 * cumulative ACKs, credit-window flow control, chunking, reassembly with shape checks, rx buffer limit,
 * zstd above the threshold, PING/PONG keepalive, BYE cancellation, lifetime cap, stats.
 *
 * One session runs over one `BytePort` (= one X08 channel of a peer link; direct, relayed or in-memory: the
 * session does not care). Every protocol violation by the peer closes *this* session with a NACK carrying the
 * A4 token and frees its buffers; nothing is shared between sessions except the zstd WASM instance.
 *
 * Never logs tensor bytes or tokens.
 */
import {
  TENSOR_CHUNK_BYTES,
  TENSOR_COMPRESSION_THRESHOLD_BYTES,
  TENSOR_FLOW_CONTROL_WINDOW,
  TENSOR_KEEPALIVE_SECONDS,
  TENSOR_MAX_SESSION_LIFETIME_SECONDS,
} from '../../core/constants.js';
import { randomBytes } from '../../core/encoding.js';
import { HnError } from '../../core/errors.js';
import { DTYPE_BYTES, type Dtype, type NodeID, type Tensor } from '../../core/types.js';
import { ULID_RE } from '../../core/ulid.js';
import type { BytePort } from '../../net/port.js';
import { initZstd, zstdCompress, zstdCompressBound, zstdDecompressExact } from './compress.js';
import { RecvWindow, SendWindow, logicalFromWire, wireSeq } from './flow.js';
import {
  DTYPE_CODE,
  FLAG_COMPRESSED,
  FLAG_FINAL,
  FLAG_GRAD,
  FrameType,
  HEADER_BYTES,
  MAX_CHUNK_HEADER_BYTES,
  MAX_DIMS,
  MAX_FLOW_WINDOW,
  X08Error,
  declaredBytes,
  decodeFrame,
  encodeFrame,
  isX08Reason,
  type HelloMsg,
  type Negotiation,
  type X08Frame,
  type X08Reason,
} from './frame.js';

export interface TensorTransportConfig {
  enabled: boolean;
  default_dtype: Dtype;
  /** Data bytes per TENSOR_DATA frame offered in HELLO (ours: 256 KiB; ceiling TENSOR_CHUNK_BYTES). */
  chunk_bytes: number;
  flow_control_window: number;
  compression_threshold_bytes: number;
  compression_level: number;
  keepalive_seconds: number;
  max_session_lifetime_seconds: number;
  max_concurrent_sessions: number;
  rx_buffer_bytes_max: number;
  hello_timeout_s: number;
  ack_delay_ms: number;
}

export const DEFAULT_TENSOR_TRANSPORT_CONFIG: Readonly<TensorTransportConfig> = Object.freeze({
  enabled: false,
  default_dtype: 'fp16',
  chunk_bytes: 262144,
  flow_control_window: TENSOR_FLOW_CONTROL_WINDOW,
  compression_threshold_bytes: TENSOR_COMPRESSION_THRESHOLD_BYTES,
  compression_level: 3,
  keepalive_seconds: TENSOR_KEEPALIVE_SECONDS,
  max_session_lifetime_seconds: TENSOR_MAX_SESSION_LIFETIME_SECONDS,
  max_concurrent_sessions: 64,
  rx_buffer_bytes_max: 64 * 1024 * 1024,
  hello_timeout_s: 10,
  ack_delay_ms: 20,
});

/** Sender-side ratio gate: keep compressing only if the session's first compressed tensor reached this (A5). */
export const COMPRESSION_RATIO_GATE = 0.9;

/** Injectable time source (ms) so keepalive/lifetime are testable with a fake clock. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export type SessionState = 'connecting' | 'ready' | 'streaming' | 'closed';

export interface SessionStats {
  /** All frame bytes (headers included) handed to / received from the port. */
  bytes_sent: number;
  bytes_received: number;
  /** Tensor data bytes put on the wire (after compression where it was applied). */
  bytes_compressed_out: number;
  /** Raw tensor data bytes of the tensors sent (before compression). */
  bytes_uncompressed_out: number;
  frames_sent: number;
  frames_received: number;
  /** Smoothed RTT (HELLO round trip, PING/PONG); 0 until measured. */
  rtt_estimate_ms: number;
  tensors_sent: number;
  tensors_received: number;
}

export interface RecvTensor {
  tensorId: number;
  tensor: Tensor;
  isGrad: boolean;
}

export interface CloseInfo {
  /** NACK token, `bye`, `lifetime`, `timeout`, `token_expired`, `closed` (port closed), or a local reason. */
  reason: string;
  text?: string;
  by: 'local' | 'remote';
  /** True when the session ended on a protocol error (NACK either way, timeout, port failure). */
  error: boolean;
}

/** What a token validator may tell the session: when the token expires (unix seconds) → the session closes then. */
export interface TokenAcceptance {
  expiresAt?: number;
}

export type TokenValidator = (
  token: string,
  hello: HelloMsg,
) => TokenAcceptance | void | Promise<TokenAcceptance | void>;

interface CommonOptions {
  config?: Partial<TensorTransportConfig>;
  clock?: Clock;
}

export interface ConnectOptions extends CommonOptions {
  /** Session id from `shard.connect` (ULID). */
  sessionId: string;
  purpose: string;
  /** This node (HELLO `from`). */
  local: NodeID;
  /** The host (HELLO `to`); must answer from this id. */
  remote: NodeID;
  negotiation?: Partial<Negotiation>;
}

export interface AcceptOptions extends CommonOptions {
  /** This node (HELLO `to`). */
  local: NodeID;
  /** Authenticated peer of the link (HELLO `from` must equal it). */
  peer: NodeID;
  expectedPurpose: string;
  validateToken: TokenValidator;
}

interface PartialTensor {
  dtype: Dtype;
  shape: number[];
  flags: number; // COMPRESSED | GRAD as in the first chunk
  declared: number;
  final: boolean;
  filled: number;
  buf: Uint8Array | null; // uncompressed: preallocated declared bytes
  parts: Uint8Array[]; // compressed: received pieces
}

const PER_FRAME_OVERHEAD = HEADER_BYTES + MAX_CHUNK_HEADER_BYTES;

export class TensorSession {
  private stateV: SessionState = 'connecting';
  private readonly cfg: TensorTransportConfig;
  private readonly clock: Clock;
  private readonly port: BytePort;
  private readonly role: 'initiator' | 'responder';
  private readonly local: NodeID;
  private readonly remote: NodeID;
  private sessionIdV = '';
  private purposeV = '';
  private negotiatedV: Negotiation | null = null;
  private offer: Negotiation | null = null;

  private sendLogical = 0;
  private recvLogical = 0;
  private sendWin: SendWindow | null = null;
  private recvWin: RecvWindow | null = null;
  private helloSeen = false;
  private helloSentAt = 0;

  private readonly partials = new Map<number, PartialTensor>();
  private partialBytes = 0;
  private readonly queue: RecvTensor[] = [];
  private queueBytes = 0;
  private recvWaiters: { resolve: (r: RecvTensor) => void; reject: (e: unknown) => void }[] = [];
  private sendChain: Promise<void> = Promise.resolve();
  private readonly sending = new Set<number>();
  private compressionUseful: boolean | null = null;

  private readonly openedAt: number;
  private lastActivity: number;
  private tokenExpiresAtMs = Infinity;
  private keepaliveNonce: string | null = null;
  private keepaliveSentAt = 0;
  private readonly pings = new Map<
    string,
    { sentAt: number; resolve: (ms: number) => void; reject: (e: unknown) => void }
  >();
  private timer: unknown = null;
  private timerDue = Infinity;
  private ackTimer: unknown = null;

  private closeInfoV: CloseInfo | null = null;
  private closeError: HnError | null = null;
  private readonly closeCbs: ((i: CloseInfo) => void)[] = [];
  private ready!: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void };

  private readonly statsV: SessionStats = {
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

  private acceptOpts: AcceptOptions | null = null;

  private constructor(
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
    this.openedAt = this.clock.now();
    this.lastActivity = this.openedAt;
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => {});
    this.ready = { promise, resolve, reject };
  }

  // -------------------------------------------------------------------------------------------------------
  // Opening

  /** Open a session as the side that made the bus call: send HELLO with the session token, wait for the reply. */
  static async connect(port: BytePort, token: string, opts: ConnectOptions): Promise<TensorSession> {
    if (!ULID_RE.test(opts.sessionId)) throw new HnError('bad_request', 'sessionId must be a ULID');
    await initZstd();
    const s = new TensorSession(port, 'initiator', opts.local, opts.remote, opts);
    s.sessionIdV = opts.sessionId;
    s.purposeV = opts.purpose;
    s.offer = s.makeOffer(opts.negotiation);
    s.attach();
    s.helloSentAt = s.clock.now();
    s.sendControl({
      type: FrameType.CONTROL_HELLO,
      seq: 0,
      flags: 0,
      hello: {
        session_id: opts.sessionId,
        session_token: token,
        from: opts.local,
        to: opts.remote,
        purpose: opts.purpose,
        negotiation: s.offer,
      },
    });
    s.armTimer();
    await s.ready.promise;
    return s;
  }

  /** Accept a session on a port: wait for the peer's HELLO, check purpose and token, reply with agreed values. */
  static async accept(port: BytePort, opts: AcceptOptions): Promise<TensorSession> {
    await initZstd();
    const s = new TensorSession(port, 'responder', opts.local, opts.peer, opts);
    s.acceptOpts = opts;
    s.offer = s.makeOffer();
    s.attach();
    s.armTimer();
    await s.ready.promise;
    return s;
  }

  private makeOffer(pref?: Partial<Negotiation>): Negotiation {
    const portMax = Math.max(1, this.port.maxMessageBytes - PER_FRAME_OVERHEAD);
    const chunk = Math.max(
      1,
      Math.min(
        pref?.max_chunk_bytes ?? this.cfg.chunk_bytes,
        this.cfg.chunk_bytes,
        TENSOR_CHUNK_BYTES,
        portMax,
      ),
    );
    const window = Math.max(1, Math.min(pref?.flow_window ?? this.cfg.flow_control_window, MAX_FLOW_WINDOW));
    const dtype = pref?.preferred_dtype ?? this.cfg.default_dtype;
    return {
      preferred_dtype: dtype in DTYPE_CODE ? dtype : 'fp32',
      compression: pref?.compression ?? 'zstd',
      max_chunk_bytes: chunk,
      flow_window: window,
    };
  }

  private attach(): void {
    this.port.onMessage((m) => this.onMessage(m));
    this.port.onClose((reason) => {
      if (this.stateV !== 'closed') {
        this.finish(
          { reason: 'closed', text: reason, by: 'remote', error: true },
          new HnError('closed', 'the channel closed'),
        );
      }
    });
  }

  // -------------------------------------------------------------------------------------------------------
  // Public surface

  get sessionId(): string {
    return this.sessionIdV;
  }
  get purpose(): string {
    return this.purposeV;
  }
  get state(): SessionState {
    return this.stateV;
  }
  get negotiated(): Negotiation | null {
    return this.negotiatedV ? { ...this.negotiatedV } : null;
  }
  get stats(): SessionStats {
    return { ...this.statsV };
  }
  get closeInfo(): CloseInfo | null {
    return this.closeInfoV ? { ...this.closeInfoV } : null;
  }
  /** Bytes held for this session: partial reassembly (declared sizes) + completed tensors not yet read. */
  get bufferedBytes(): number {
    return this.partialBytes + this.queueBytes;
  }
  /** Data frames sent and not yet acknowledged. */
  get inFlight(): number {
    return this.sendWin?.inFlight ?? 0;
  }

  onClose(cb: (i: CloseInfo) => void): void {
    if (this.closeInfoV) cb({ ...this.closeInfoV });
    else this.closeCbs.push(cb);
  }

  /**
   * Send one tensor (serialised with other sendTensor calls). Resolves once its last frame was handed to the
   * channel; rejects with HnError('closed') / X08Error when the session closes first.
   */
  sendTensor(tensorId: number, tensor: Tensor, opts: { gradient?: boolean } = {}): Promise<void> {
    try {
      this.checkOutgoing(tensorId, tensor);
    } catch (e) {
      return Promise.reject(e);
    }
    this.sending.add(tensorId);
    const run = this.sendChain.then(() => this.doSend(tensorId, tensor, !!opts.gradient));
    const done = run.finally(() => this.sending.delete(tensorId));
    this.sendChain = done.catch(() => {});
    return done;
  }

  /** Next complete tensor, in completion order. */
  recvTensor(): Promise<RecvTensor> {
    const r = this.queue.shift();
    if (r) {
      this.queueBytes -= r.tensor.data.length;
      this.maybeAck(true);
      return Promise.resolve(r);
    }
    if (this.stateV === 'closed') return Promise.reject(this.closeError ?? new HnError('closed'));
    return new Promise((resolve, reject) => this.recvWaiters.push({ resolve, reject }));
  }

  /** Resolves when every data frame sent so far has been acknowledged by the peer. */
  flush(): Promise<void> {
    if (this.stateV === 'closed') return Promise.reject(this.closeError ?? new HnError('closed'));
    return this.sendWin ? this.sendWin.waitAllAcked() : Promise.resolve();
  }

  /** Grow (or set) the peer's send window and/or grant extra credits until the next ACK (FLOWCTL). */
  setWindow(window: number, creditsAdded = 0): void {
    if (!this.recvWin || this.stateV === 'closed' || this.stateV === 'connecting')
      throw new HnError('closed');
    const f: X08Frame = {
      type: FrameType.CONTROL_FLOWCTL,
      seq: 0,
      flags: 0,
      window,
      credits_added: creditsAdded,
    };
    encodeFrame(f); // validates 1..64 / 0..64 before touching state
    this.sendControl(f);
    this.recvWin.noteFlowCtlSent(window, creditsAdded);
  }

  /** PING the peer; resolves with the round-trip time in ms. */
  ping(): Promise<number> {
    if (this.stateV === 'closed') return Promise.reject(this.closeError ?? new HnError('closed'));
    const nonce = randomBytes(8);
    const key = hexKey(nonce);
    return new Promise<number>((resolve, reject) => {
      this.pings.set(key, { sentAt: this.clock.now(), resolve, reject });
      this.sendControl({ type: FrameType.CONTROL_PING, seq: 0, flags: 0, nonce });
    });
  }

  /** Cancel: BYE with a reason, drop every buffer at once, emit nothing further (fast and lossy, A3). */
  close(reason = 'cancelled'): void {
    if (this.stateV === 'closed') return;
    const token = reason.split(' ')[0] || 'cancelled';
    this.finish(
      { reason: token, by: 'local', error: false },
      new HnError('closed', 'session closed locally'),
      {
        type: FrameType.CONTROL_BYE,
        seq: 0,
        flags: 0,
        reason,
      },
    );
  }

  // -------------------------------------------------------------------------------------------------------
  // Sending

  private isClosed(): boolean {
    return this.stateV === 'closed';
  }

  private checkOutgoing(tensorId: number, t: Tensor): void {
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

  private async doSend(tensorId: number, t: Tensor, grad: boolean): Promise<void> {
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
    for (let off = 0; off < body.length; off += step) {
      await win.waitForSlot();
      if (this.isClosed()) throw this.closeError ?? new HnError('closed');
      const end = Math.min(off + step, body.length);
      const seq = this.takeSeq();
      const frame = encodeFrame({
        type: FrameType.TENSOR_DATA,
        seq: wireSeq(seq),
        flags: baseFlags | (end === body.length ? FLAG_FINAL : 0),
        tensorId,
        dtype: t.dtype,
        shape: t.shape,
        data: body.subarray(off, end),
      });
      win.onDataSent(seq);
      this.markStreaming();
      await this.portSend(frame);
    }
    await win.waitForSlot();
    if (this.isClosed()) throw this.closeError ?? new HnError('closed');
    const seq = this.takeSeq();
    const endFrame = encodeFrame({ type: FrameType.TENSOR_END, seq: wireSeq(seq), flags: 0, tensorId });
    win.onDataSent(seq);
    await this.portSend(endFrame);
    this.statsV.bytes_uncompressed_out += t.data.length;
    this.statsV.bytes_compressed_out += body.length;
    this.statsV.tensors_sent++;
  }

  private takeSeq(): number {
    return ++this.sendLogical;
  }

  private markStreaming(): void {
    if (this.stateV === 'ready') this.stateV = 'streaming';
  }

  private portSend(frame: Uint8Array): Promise<void> {
    this.statsV.frames_sent++;
    this.statsV.bytes_sent += frame.length;
    this.lastActivity = this.clock.now();
    return this.port.send(frame);
  }

  /** Control frames bypass the window and never wait; ACK takes no seq, every other frame takes the next one. */
  private sendControl(f: X08Frame): void {
    if (f.type !== FrameType.ACK) f = { ...f, seq: wireSeq(this.takeSeq()) };
    let bytes: Uint8Array;
    try {
      bytes = encodeFrame(f);
    } catch (e) {
      if (f.type !== FrameType.ACK) this.sendLogical--; // nothing was sent with that seq
      throw e;
    }
    this.portSend(bytes).catch(() => {});
  }

  // -------------------------------------------------------------------------------------------------------
  // Receiving

  private onMessage(msg: Uint8Array): void {
    if (this.stateV === 'closed') return;
    this.statsV.frames_received++;
    this.statsV.bytes_received += msg.length;
    this.lastActivity = this.clock.now();
    try {
      const maxPayload = (this.negotiatedV?.max_chunk_bytes ?? TENSOR_CHUNK_BYTES) + MAX_CHUNK_HEADER_BYTES;
      const f = decodeFrame(msg, { maxPayloadBytes: maxPayload });
      if (f.type !== FrameType.ACK) {
        if (f.seq !== wireSeq(this.recvLogical + 1))
          throw new X08Error('seq_gap', 'sequence number is not last + 1');
        this.recvLogical++;
      }
      this.handle(f);
    } catch (e) {
      this.fail(e);
    }
  }

  private handle(f: X08Frame): void {
    const open = this.stateV === 'ready' || this.stateV === 'streaming';
    switch (f.type) {
      case FrameType.CONTROL_HELLO:
        if (this.helloSeen || this.stateV !== 'connecting')
          throw new X08Error('bad_frame', 'unexpected HELLO');
        this.helloSeen = true;
        if (this.role === 'responder') void this.onHelloAsResponder(f.hello);
        else this.onHelloAsInitiator(f.hello);
        return;
      case FrameType.ACK: {
        if (!this.sendWin) throw new X08Error('bad_frame', 'ACK before the session is ready');
        const l = logicalFromWire(f.seq, Math.max(1, this.sendWin.acked), this.sendLogical);
        if (l === null) throw new X08Error('bad_frame', 'ACK for a sequence number never sent');
        this.sendWin.onAck(l);
        return;
      }
      case FrameType.CONTROL_NACK:
        this.finish(
          { reason: f.reason, ...(f.text ? { text: f.text } : {}), by: 'remote', error: true },
          new X08Error(safeReason(f.reason), 'the peer closed the session with a NACK'),
        );
        return;
      case FrameType.CONTROL_BYE: {
        const token = f.reason.split(' ')[0] || 'bye';
        this.finish(
          { reason: 'bye', text: token, by: 'remote', error: false },
          new HnError('closed', 'the peer closed the session'),
        );
        return;
      }
      case FrameType.CONTROL_PING:
        if (!this.helloSeen && this.role === 'responder')
          throw new X08Error('bad_frame', 'PING before HELLO');
        this.sendControl({ type: FrameType.CONTROL_PONG, seq: 0, flags: 0, nonce: f.nonce.slice() });
        return;
      case FrameType.CONTROL_PONG: {
        const key = hexKey(f.nonce);
        const p = this.pings.get(key);
        if (p) {
          this.pings.delete(key);
          const rtt = this.clock.now() - p.sentAt;
          this.rttSample(rtt);
          p.resolve(rtt);
        }
        if (key === this.keepaliveNonce) this.keepaliveNonce = null;
        this.armTimer();
        return;
      }
      case FrameType.CONTROL_FLOWCTL:
        if (!open) throw new X08Error('bad_frame', 'FLOWCTL before READY');
        this.sendWin!.onFlowCtl(f.window, f.credits_added);
        return;
      case FrameType.TENSOR_DATA:
        if (!open) throw new X08Error('bad_frame', 'TENSOR_DATA before READY');
        this.onData(f);
        return;
      case FrameType.TENSOR_END:
        if (!open) throw new X08Error('bad_frame', 'TENSOR_END before READY');
        this.onEnd(f.tensorId);
        return;
    }
  }

  private onData(f: Extract<X08Frame, { type: typeof FrameType.TENSOR_DATA }>): void {
    const neg = this.negotiatedV!;
    if (!this.recvWin!.onData(this.recvLogical))
      throw new X08Error('window_overrun', 'the sender overran the flow window');
    this.markStreaming();
    if (f.data.length > neg.max_chunk_bytes) throw new X08Error('bad_frame', 'chunk exceeds max_chunk_bytes');
    const chunkFlags = f.flags & (FLAG_COMPRESSED | FLAG_GRAD);
    let p = this.partials.get(f.tensorId);
    if (!p) {
      if (this.partials.size >= neg.flow_window)
        throw new X08Error('shape_mismatch', 'more tensors open than the window');
      const max = this.cfg.rx_buffer_bytes_max;
      const declared = declaredBytes(DTYPE_BYTES[f.dtype], f.shape, max);
      if (declared > max - this.partialBytes)
        throw new X08Error('tensor_too_large', 'tensor exceeds rx_buffer_bytes_max');
      const compressed = (chunkFlags & FLAG_COMPRESSED) !== 0;
      p = {
        dtype: f.dtype,
        shape: f.shape,
        flags: chunkFlags,
        declared,
        final: false,
        filled: 0,
        buf: compressed ? null : new Uint8Array(declared),
        parts: [],
      };
      this.partials.set(f.tensorId, p);
      this.partialBytes += declared;
    } else {
      if (p.final) throw new X08Error('shape_mismatch', 'TENSOR_DATA after the FINAL chunk');
      if (p.dtype !== f.dtype || p.flags !== chunkFlags || !sameShape(p.shape, f.shape)) {
        throw new X08Error('shape_mismatch', "chunk header differs from the tensor's first chunk");
      }
    }
    if (p.buf) {
      if (p.filled + f.data.length > p.declared)
        throw new X08Error('shape_mismatch', 'more data than the shape declares');
      p.buf.set(f.data, p.filled);
    } else {
      if (p.filled + f.data.length > zstdCompressBound(p.declared)) {
        throw new X08Error('decompress_failed', 'compressed data exceeds the bound for the declared size');
      }
      p.parts.push(f.data);
    }
    p.filled += f.data.length;
    if (f.flags & FLAG_FINAL) p.final = true;
    this.maybeAck(false);
  }

  private onEnd(tensorId: number): void {
    if (!this.recvWin!.onData(this.recvLogical))
      throw new X08Error('window_overrun', 'the sender overran the flow window');
    const p = this.partials.get(tensorId);
    if (!p) throw new X08Error('shape_mismatch', 'TENSOR_END for a tensor that is not open');
    if (!p.final) throw new X08Error('shape_mismatch', 'TENSOR_END without a FINAL chunk');
    let data: Uint8Array;
    if (p.buf) {
      if (p.filled !== p.declared)
        throw new X08Error('shape_mismatch', 'data length ≠ product(shape)·sizeof(dtype)');
      data = p.buf;
    } else {
      const all = new Uint8Array(p.filled);
      let o = 0;
      for (const part of p.parts) {
        all.set(part, o);
        o += part.length;
      }
      p.parts = [];
      data = zstdDecompressExact(all, p.declared);
    }
    this.partials.delete(tensorId);
    this.partialBytes -= p.declared;
    this.statsV.tensors_received++;
    const r: RecvTensor = {
      tensorId,
      tensor: { dtype: p.dtype, shape: p.shape, data },
      isGrad: (p.flags & FLAG_GRAD) !== 0,
    };
    const w = this.recvWaiters.shift();
    if (w) w.resolve(r);
    else {
      this.queue.push(r);
      this.queueBytes += data.length;
    }
    this.maybeAck(true);
  }

  // -------------------------------------------------------------------------------------------------------
  // HELLO

  private async onHelloAsResponder(hello: HelloMsg): Promise<void> {
    const o = this.acceptOpts!;
    try {
      if (hello.from !== this.remote)
        throw new HnError('invalid_signature', 'HELLO.from is not the link peer');
      if (hello.to !== this.local) throw new HnError('unauthorized', 'HELLO is addressed to another node');
      if (hello.purpose !== o.expectedPurpose) throw new X08Error('purpose_mismatch', 'unexpected purpose');
      let acceptance: TokenAcceptance | void;
      try {
        acceptance = await o.validateToken(hello.session_token, hello);
      } catch (e) {
        throw e instanceof HnError ? e : new HnError('token_invalid', 'token validation failed');
      }
      if (this.isClosed()) return;
      if (acceptance && typeof acceptance.expiresAt === 'number')
        this.tokenExpiresAtMs = acceptance.expiresAt * 1000;
      const offer = this.offer!;
      const agreed: Negotiation = {
        preferred_dtype:
          hello.negotiation.preferred_dtype in DTYPE_CODE ? hello.negotiation.preferred_dtype : 'fp32',
        compression:
          hello.negotiation.compression === 'zstd' && offer.compression === 'zstd' ? 'zstd' : 'none',
        max_chunk_bytes: Math.min(
          hello.negotiation.max_chunk_bytes,
          offer.max_chunk_bytes,
          TENSOR_CHUNK_BYTES,
        ),
        flow_window: Math.min(hello.negotiation.flow_window, offer.flow_window, MAX_FLOW_WINDOW),
      };
      this.sessionIdV = hello.session_id;
      this.purposeV = hello.purpose;
      this.sendControl({
        type: FrameType.CONTROL_HELLO,
        seq: 0,
        flags: 0,
        hello: {
          session_id: hello.session_id,
          session_token: '',
          from: this.local,
          to: this.remote,
          purpose: hello.purpose,
          negotiation: agreed,
        },
      });
      this.becomeReady(agreed);
    } catch (e) {
      this.fail(e);
    }
  }

  private onHelloAsInitiator(hello: HelloMsg): void {
    const offer = this.offer!;
    if (hello.session_id !== this.sessionIdV)
      throw new X08Error('bad_frame', 'HELLO reply names another session');
    if (hello.from !== this.remote)
      throw new HnError('invalid_signature', 'HELLO reply is not from the host');
    if (hello.to !== this.local)
      throw new HnError('unauthorized', 'HELLO reply is addressed to another node');
    if (hello.purpose !== this.purposeV)
      throw new X08Error('purpose_mismatch', 'HELLO reply has another purpose');
    const n = hello.negotiation;
    if (n.flow_window > offer.flow_window || n.max_chunk_bytes > offer.max_chunk_bytes) {
      throw new X08Error('bad_frame', 'agreed values exceed the offer');
    }
    if (n.compression === 'zstd' && offer.compression !== 'zstd')
      throw new X08Error('bad_frame', 'compression was not offered');
    this.rttSample(this.clock.now() - this.helloSentAt);
    this.becomeReady(n);
  }

  private becomeReady(n: Negotiation): void {
    this.negotiatedV = n;
    this.sendWin = new SendWindow(n.flow_window);
    this.recvWin = new RecvWindow(n.flow_window);
    this.stateV = 'ready';
    this.armTimer();
    this.ready.resolve();
  }

  // -------------------------------------------------------------------------------------------------------
  // ACKs, timers

  private maybeAck(force: boolean): void {
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

  private sendAck(): void {
    if (this.ackTimer !== null) {
      this.clock.clearTimeout(this.ackTimer);
      this.ackTimer = null;
    }
    const upTo = this.recvLogical;
    this.sendControl({ type: FrameType.ACK, seq: wireSeq(upTo), flags: 0 });
    this.recvWin!.noteAckSent(upTo);
  }

  private rttSample(ms: number): void {
    const s = this.statsV;
    s.rtt_estimate_ms = s.rtt_estimate_ms === 0 ? ms : s.rtt_estimate_ms * 0.875 + ms * 0.125;
  }

  private deadlines(): { hello: number; lifetime: number; token: number; keepalive: number } {
    const k = this.cfg.keepalive_seconds * 1000;
    return {
      hello: this.stateV === 'connecting' ? this.openedAt + this.cfg.hello_timeout_s * 1000 : Infinity,
      lifetime: this.openedAt + this.cfg.max_session_lifetime_seconds * 1000,
      token: this.tokenExpiresAtMs,
      keepalive: this.keepaliveNonce !== null ? this.keepaliveSentAt + 2 * k : this.lastActivity + k,
    };
  }

  private armTimer(): void {
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

  private onTick(): void {
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

  private expire(reason: string, text: string | undefined, error: boolean): void {
    this.finish(
      { reason, ...(text ? { text } : {}), by: 'local', error },
      error ? new X08Error('timeout', text) : new HnError('closed', `session ended: ${reason}`),
      { type: FrameType.CONTROL_BYE, seq: 0, flags: 0, reason },
    );
  }

  // -------------------------------------------------------------------------------------------------------
  // Closing

  /** A local protocol error: NACK with the reason, then close. */
  private fail(e: unknown): void {
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

  private finish(info: CloseInfo, err: HnError, frame?: X08Frame): void {
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
    this.partials.clear();
    this.partialBytes = 0;
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

function sameShape(a: number[], b: number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function hexKey(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

function safeReason(r: string): X08Reason {
  return isX08Reason(r) ? r : 'bad_frame';
}
