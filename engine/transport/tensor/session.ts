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
import { TENSOR_CHUNK_BYTES } from '../../core/constants.js';
import { randomBytes } from '../../core/encoding.js';
import { HnError } from '../../core/errors.js';
import type { Tensor } from '../../core/types.js';
import { ULID_RE } from '../../core/ulid.js';
import { queueTail } from '../../core/vocab.js';
import { isVectoredPort, type BytePort } from '../../net/port.js';
import { initZstd } from './compress.js';
import { RecvWindow, SendWindow, logicalFromWire, wireSeq } from './flow.js';
import {
  DTYPE_CODE,
  FrameType,
  HEADER_BYTES,
  MAX_CHUNK_HEADER_BYTES,
  MAX_FLOW_WINDOW,
  X08Error,
  encodeFrame,
  isX08Reason,
  type HelloMsg,
  type Negotiation,
  type X08Frame,
  type X08Reason,
} from './frame.js';
import { decodeFrameParts } from './frame-parts.js';
import { SessionBase, hexKey } from './session-base.js';
import {
  type AcceptOptions,
  type CloseInfo,
  type ConnectOptions,
  type RecvTensor,
  type SessionState,
  type SessionStats,
  type TokenAcceptance,
} from './session-types.js';

export * from './session-types.js';

const PER_FRAME_OVERHEAD = HEADER_BYTES + MAX_CHUNK_HEADER_BYTES;

export class TensorSession extends SessionBase {
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
    // on a link channel a frame comes as its link fragments: tensor bytes go from them straight into the tensor
    if (isVectoredPort(this.port)) this.port.onMessageParts((parts) => this.onMessage(parts));
    else this.port.onMessage((m) => this.onMessage([m]));
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
    return this.rx.bytes + this.queueBytes;
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
    this.sendChain = queueTail(done); // the caller gets the error from `done`
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
  // Receiving

  /** One frame, as the pieces it arrived in (one piece unless it crossed a link in fragments). */
  private onMessage(parts: Uint8Array[]): void {
    if (this.stateV === 'closed') return;
    this.statsV.frames_received++;
    for (const m of parts) this.statsV.bytes_received += m.length;
    this.lastActivity = this.clock.now();
    try {
      const maxPayload = (this.negotiatedV?.max_chunk_bytes ?? TENSOR_CHUNK_BYTES) + MAX_CHUNK_HEADER_BYTES;
      const { frame: f, rest } = decodeFrameParts(parts, { maxPayloadBytes: maxPayload });
      if (f.type !== FrameType.ACK) {
        if (f.seq !== wireSeq(this.recvLogical + 1))
          throw new X08Error('seq_gap', 'sequence number is not last + 1');
        this.recvLogical++;
      }
      this.handle(f, rest);
    } catch (e) {
      this.fail(e);
    }
  }

  private handle(f: X08Frame, rest: Uint8Array[]): void {
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
        this.onData(f, rest);
        return;
      case FrameType.TENSOR_END:
        if (!open) throw new X08Error('bad_frame', 'TENSOR_END before READY');
        this.onEnd(f.tensorId);
        return;
    }
  }

  private onData(f: Extract<X08Frame, { type: typeof FrameType.TENSOR_DATA }>, rest: Uint8Array[]): void {
    const neg = this.negotiatedV!;
    if (!this.recvWin!.onData(this.recvLogical))
      throw new X08Error('window_overrun', 'the sender overran the flow window');
    this.markStreaming();
    this.rx.add(f, neg.max_chunk_bytes, neg.flow_window, this.cfg.rx_buffer_bytes_max, rest);
    this.maybeAck(false);
  }

  private onEnd(tensorId: number): void {
    if (!this.recvWin!.onData(this.recvLogical))
      throw new X08Error('window_overrun', 'the sender overran the flow window');
    const t = this.rx.end(tensorId);
    this.statsV.tensors_received++;
    const r: RecvTensor = {
      tensorId,
      tensor: { dtype: t.dtype, shape: t.shape, data: t.data },
      isGrad: t.isGrad,
    };
    const w = this.recvWaiters.shift();
    if (w) w.resolve(r);
    else {
      this.queue.push(r);
      this.queueBytes += t.data.length;
    }
    this.ackAfterTurn();
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
}

function safeReason(r: string): X08Reason {
  return isX08Reason(r) ? r : 'bad_frame';
}
