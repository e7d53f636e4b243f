/**
 * Relay signalling client (core digest §8.3, §8.4, §8.6), in tabs and Node peers (the WebSocket
 * constructor is injected). It proves its NodeID by signing the relay's challenge, keeps the
 * roster, relays `signal` messages, forwards binary frames with send-side backpressure and
 * per-destination flow (`{t:"flow"}`), reconnects with capped backoff, and estimates the clock
 * offset from `server_time`. The wire protocol is relay-wire.ts (re-exported here). Nothing here
 * logs payloads, SDP/ICE or key material.
 */
import { RECONNECT_BACKOFF_CAP_SECONDS } from '../core/constants.js';
import { HnError } from '../core/errors.js';
import type { NodeID } from '../core/types.js';
import {
  RELAY_CLIENT_SEND_HIGH_WATER_BYTES,
  RELAY_CLOCK_APPLY_THRESHOLD_MS,
  RELAY_CLOSE_REPLACED,
  RELAY_SUBPROTOCOL,
  RELAY_TEXT_MAX_BYTES,
  buildRelayHello,
  decodeForwardFrame,
  encodeForwardFrame,
  parseWallClock,
  type RelayClientMessage,
  type RelayPeerInfo,
  type RelayRevocation,
  type RelayServerMessage,
} from './relay-wire.js';

export * from './relay-wire.js';
export * from './relay-client-types.js';
import {
  RELAY_CLIENT_HELD_FRAMES_MAX,
  RELAY_CLIENT_YIELD_BYTES,
  UTF8,
  WS_OPEN,
  Emitter,
  reconnectDelayMs,
  type ForwardHandler,
  type HeldFrame,
  type RelayClientEvents,
  type RelayClientOptions,
  type RelayClientState,
  type WebSocketLike,
} from './relay-client-types.js';

// ---------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------

export class RelayClient extends Emitter<RelayClientEvents> {
  private readonly opts: Required<Omit<RelayClientOptions, 'displayName' | 'pass'>> &
    Pick<RelayClientOptions, 'displayName' | 'pass'>;
  private ws: WebSocketLike | null = null;
  private _state: RelayClientState = 'idle';
  private readonly roster = new Map<NodeID, RelayPeerInfo>();
  private readonly forwardHandlers = new Map<NodeID, ForwardHandler>();
  private readonly unrouted = new Set<(from: NodeID, payload: Uint8Array) => void>();
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private minNextDelayMs = 0;
  private tOpen = 0;
  private tHello = 0;
  private offsetMs = 0;
  private drainWaiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  /** Destinations the relay reported as not reading: frames to them wait here, in order. */
  private readonly held = new Map<NodeID, HeldFrame[]>();
  private sinceYield = 0;
  private drainTimer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  /** Whether the current socket reached `open` (a failed attempt is not a disconnect). */
  private socketOpened = false;
  /** Frames received from peers without a handler (counted, never logged). */
  unroutedDropped = 0;

  constructor(opts: RelayClientOptions) {
    super();
    this.opts = {
      reconnect: true,
      backoffInitialMs: 500,
      backoffCapMs: RECONNECT_BACKOFF_CAP_SECONDS * 1000,
      now: () => Date.now(),
      random: Math.random,
      sendHighWaterBytes: RELAY_CLIENT_SEND_HIGH_WATER_BYTES,
      ...opts,
    };
  }

  get state(): RelayClientState {
    return this._state;
  }
  get nodeId(): NodeID {
    return this.opts.keyPair.nodeId;
  }
  get room(): NodeID {
    return this.opts.room;
  }
  /** Raw estimate `server_time − local midpoint` in ms. */
  get clockOffsetMs(): number {
    return this.offsetMs;
  }
  /** Offset applied to protocol timestamps: the estimate when |offset| > 2 s, else 0. */
  get appliedClockOffsetMs(): number {
    return Math.abs(this.offsetMs) > RELAY_CLOCK_APPLY_THRESHOLD_MS ? this.offsetMs : 0;
  }
  /** Corrected clock for protocol timestamps (manifests, calls, tokens). */
  now(): number {
    return this.opts.now() + this.appliedClockOffsetMs;
  }
  /** Current roster without ourselves. */
  peers(): RelayPeerInfo[] {
    return [...this.roster.values()];
  }
  hasPeer(id: NodeID): boolean {
    return this.roster.has(id);
  }
  /** Consecutive failed connection attempts since the last successful join. */
  get failedAttempts(): number {
    return this.attempt;
  }

  private setState(s: RelayClientState): void {
    if (this._state === s) return;
    this._state = s;
    this.emit('state', s);
  }

  /** Connect (idempotent). */
  start(): void {
    if (this.ws || this.reconnectTimer || this._state === 'ready') return;
    this.stopped = false;
    this.connect();
  }

  /** Resolve once joined (state `ready`); reject after `timeoutMs` or when the client is closed. */
  waitReady(timeoutMs = 30_000): Promise<void> {
    if (this._state === 'ready') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new HnError('relay_unreachable', 'relay not ready in time'));
      }, timeoutMs);
      const off = this.on('state', (s) => {
        if (s === 'ready') {
          clearTimeout(timer);
          off();
          resolve();
        } else if (s === 'closed' || s === 'replaced') {
          clearTimeout(timer);
          off();
          reject(new HnError('relay_unreachable', `relay client ${s}`));
        }
      });
    });
  }

  /** Stop for good: no reconnect; pending forwards reject with `relay_unreachable`. */
  close(): void {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const ws = this.ws;
    this.teardown(1000, 'client closed');
    if (ws) {
      try {
        ws.close(1000, 'client closed');
      } catch {
        // already closing
      }
    }
    this.setState('closed');
  }

  private connect(): void {
    this.setState('connecting');
    let ws: WebSocketLike;
    try {
      ws = new this.opts.WebSocket(this.opts.url, RELAY_SUBPROTOCOL);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.socketOpened = false;
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.socketOpened = true;
      this.tOpen = this.opts.now();
      this.setState('authenticating');
    };
    ws.onmessage = (ev: { data: unknown }) => {
      if (this.ws !== ws) return;
      this.onMessage(ev.data);
    };
    ws.onerror = () => {
      // the close event follows; nothing to report beyond it
    };
    ws.onclose = (ev: { code?: number; reason?: string }) => {
      if (this.ws !== ws) return;
      const code = ev?.code ?? 1006;
      const reason = String(ev?.reason ?? '');
      this.teardown(code, reason);
      if (code === RELAY_CLOSE_REPLACED) {
        this.setState('replaced');
        return;
      }
      if (this.stopped || !this.opts.reconnect) {
        this.setState('closed');
        return;
      }
      this.scheduleReconnect();
    };
  }

  /** Clear per-connection state after a close. */
  private teardown(code: number, reason: string): void {
    const had = this.ws !== null && this.socketOpened;
    this.ws = null;
    this.socketOpened = false;
    const waiters = this.drainWaiters.splice(0);
    if (this.drainTimer) clearTimeout(this.drainTimer);
    this.drainTimer = null;
    for (const w of waiters) w.reject(new HnError('relay_unreachable', 'relay connection closed'));
    this.releaseHeld(null, new HnError('relay_unreachable', 'relay connection closed'));
    const wasMember = this.roster.size > 0 || this._state === 'ready';
    this.roster.clear();
    if (had || wasMember) this.emit('disconnected', { code, reason });
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    const cap = this.opts.backoffCapMs;
    const delay = Math.min(
      cap,
      Math.max(
        reconnectDelayMs(this.attempt, this.opts.backoffInitialMs, cap, this.opts.random()),
        this.minNextDelayMs,
      ),
    );
    this.minNextDelayMs = 0;
    this.attempt++;
    this.setState('backoff');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.stopped) this.connect();
    }, delay);
  }

  private onMessage(data: unknown): void {
    if (typeof data === 'string') {
      let msg: RelayServerMessage;
      try {
        msg = JSON.parse(data) as RelayServerMessage;
      } catch {
        return; // a relay that sends garbage is ignored, never trusted
      }
      if (!msg || typeof msg !== 'object') return;
      this.onText(msg);
      return;
    }
    let bytes: Uint8Array;
    if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else return;
    this.onBinary(bytes);
  }

  private onText(msg: RelayServerMessage): void {
    switch (msg.t) {
      case 'challenge': {
        const tNow = this.opts.now();
        const server = parseWallClock(msg.server_time);
        if (server !== null) this.offsetMs = Math.round(server - (this.tOpen + tNow) / 2);
        if (typeof msg.nonce !== 'string') return;
        const hello = buildRelayHello(
          this.opts.keyPair,
          this.opts.room,
          msg.nonce,
          this.now(),
          this.opts.displayName,
          typeof this.opts.pass === 'function' ? this.opts.pass() : this.opts.pass,
        );
        this.tHello = this.opts.now();
        this.sendText(hello);
        return;
      }
      case 'welcome': {
        const tNow = this.opts.now();
        const server = parseWallClock(msg.server_time);
        if (server !== null) this.offsetMs = Math.round(server - (this.tHello + tNow) / 2);
        this.roster.clear();
        for (const p of Array.isArray(msg.peers) ? msg.peers : []) {
          if (p && typeof p.node_id === 'string' && p.node_id !== this.nodeId) this.roster.set(p.node_id, p);
        }
        this.attempt = 0;
        this.setState('ready');
        this.emit('welcome', { peers: this.peers(), server_time: msg.server_time });
        return;
      }
      case 'peer_joined': {
        if (typeof msg.node_id !== 'string' || msg.node_id === this.nodeId) return;
        const info: RelayPeerInfo = {
          node_id: msg.node_id,
          display_name: typeof msg.display_name === 'string' ? msg.display_name : '',
          joined_at: typeof msg.joined_at === 'string' ? msg.joined_at : '',
        };
        this.roster.set(msg.node_id, info);
        this.emit('peer_joined', info);
        return;
      }
      case 'peer_left': {
        if (typeof msg.node_id !== 'string') return;
        this.roster.delete(msg.node_id);
        this.releaseHeld(msg.node_id, new HnError('partition', 'peer left the relay room'));
        this.emit('peer_left', { node_id: msg.node_id });
        return;
      }
      case 'signal':
        if (typeof msg.from !== 'string') return;
        this.emit('signal', { from: msg.from, data: msg.data });
        return;
      case 'pong': {
        return;
      }
      case 'flow': {
        if (typeof msg.peer !== 'string') return;
        if (msg.paused === true) {
          if (!this.held.has(msg.peer)) this.held.set(msg.peer, []);
        } else this.releaseHeld(msg.peer, null);
        return;
      }
      case 'error': {
        if (typeof msg.code !== 'string') return;
        if (msg.code === 'rate_limited' && typeof msg.retry_after_ms === 'number') {
          this.minNextDelayMs = Math.min(this.opts.backoffCapMs, Math.max(0, msg.retry_after_ms));
        }
        const ev: RelayClientEvents['relay_error'] = { code: msg.code };
        if (typeof msg.message === 'string') ev.message = msg.message;
        if (typeof msg.retry_after_ms === 'number') ev.retry_after_ms = msg.retry_after_ms;
        if (typeof msg.to === 'string') ev.to = msg.to;
        this.emit('relay_error', ev);
        return;
      }
      default:
        return;
    }
  }

  private onBinary(bytes: Uint8Array): void {
    let frame: { addr: NodeID; payload: Uint8Array };
    try {
      frame = decodeForwardFrame(bytes);
    } catch {
      return;
    }
    this.dispatchForward(frame.addr, frame.payload);
  }

  private dispatchForward(from: NodeID, payload: Uint8Array): void {
    const h = this.forwardHandlers.get(from);
    if (h && h(payload) !== false) return;
    for (const cb of [...this.unrouted]) {
      try {
        cb(from, payload);
      } catch {
        // listener failure is contained
      }
    }
    // A listener may have registered a handler for this peer: deliver the frame to it.
    const h2 = this.forwardHandlers.get(from);
    if (h2 && h2 !== h) {
      h2(payload);
      return;
    }
    if (!this.unrouted.size) this.unroutedDropped++;
  }

  private sendText(msg: RelayClientMessage | Record<string, unknown>): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WS_OPEN)
      throw new HnError('relay_unreachable', 'not connected to the relay');
    ws.send(JSON.stringify(msg));
  }

  /** Send an opaque signalling message (SDP/ICE) to a peer in the room. */
  signal(to: NodeID, data: unknown): void {
    if (this._state !== 'ready') throw new HnError('relay_unreachable', 'not joined to the relay');
    const text = JSON.stringify({ t: 'signal', to, data });
    if (UTF8.encode(text).length > RELAY_TEXT_MAX_BYTES) throw new HnError('too_large', 'signal too large');
    this.ws!.send(text);
  }

  /** Carry a pass revocation signed by the community key to the relay (the founder's node does). */
  revoke(revocation: RelayRevocation): void {
    if (this._state !== 'ready') throw new HnError('relay_unreachable', 'not joined to the relay');
    this.sendText({ t: 'revoke', revocation });
  }

  /** Application-level ping (the relay answers `pong` with its time). */
  ping(): void {
    if (this._state !== 'ready') throw new HnError('relay_unreachable', 'not joined to the relay');
    this.sendText({ t: 'ping' });
  }

  /**
   * Forward one payload to a peer in the room. Resolves when the socket's buffer is below
   * the high-water mark (backpressure); rejects with `relay_unreachable` when not joined
   * or when the connection drops while waiting. Frames are sent in call order.
   */
  forward(to: NodeID, payload: Uint8Array): Promise<void> {
    if (this._state !== 'ready' || !this.ws) {
      return Promise.reject(new HnError('relay_unreachable', 'not joined to the relay'));
    }
    let frame: Uint8Array;
    try {
      frame = encodeForwardFrame(to, payload);
    } catch (e) {
      return Promise.reject(e);
    }
    const held = this.held.get(to);
    if (held) {
      // this destination is not reading: hold its frames here; the others go on (no head-of-line)
      if (held.length >= RELAY_CLIENT_HELD_FRAMES_MAX)
        return Promise.reject(new HnError('rate_limited', 'too many frames held for a slow peer'));
      return new Promise((resolve, reject) => held.push({ frame, resolve, reject }));
    }
    return this.sendFrame(frame);
  }

  /** Resume one destination (or, with null, fail every held frame on a closed connection). */
  private releaseHeld(peer: NodeID | null, err: HnError | null): void {
    const peers = peer === null ? [...this.held.keys()] : [peer];
    for (const p of peers) {
      const q = this.held.get(p);
      this.held.delete(p);
      for (const h of q ?? []) {
        if (err) h.reject(err);
        else this.sendFrame(h.frame).then(h.resolve, h.reject);
      }
    }
  }

  private sendFrame(frame: Uint8Array): Promise<void> {
    if (this._state !== 'ready' || !this.ws) {
      return Promise.reject(new HnError('relay_unreachable', 'not joined to the relay'));
    }
    this.ws.send(frame);
    if (this.ws.bufferedAmount <= this.opts.sendHighWaterBytes) {
      // a sender that never waits would never read the relay's flow notices: yield now and then
      this.sinceYield += frame.length;
      if (this.sinceYield < RELAY_CLIENT_YIELD_BYTES) return Promise.resolve();
      this.sinceYield = 0;
      return new Promise((r) => setTimeout(r, 0));
    }
    return new Promise((resolve, reject) => {
      this.drainWaiters.push({ resolve, reject });
      this.pollDrain();
    });
  }

  /** Browsers have no `drain` event on WebSocket: poll bufferedAmount while someone waits. */
  private pollDrain(): void {
    if (this.drainTimer) return;
    const tick = () => {
      this.drainTimer = null;
      const ws = this.ws;
      if (!ws) return;
      if (ws.bufferedAmount <= this.opts.sendHighWaterBytes / 2) {
        for (const w of this.drainWaiters.splice(0)) w.resolve();
        return;
      }
      this.drainTimer = setTimeout(tick, 5);
    };
    this.drainTimer = setTimeout(tick, 5);
  }

  /** Bytes queued in the client's socket. */
  get bufferedAmount(): number {
    return this.ws?.bufferedAmount ?? 0;
  }

  /** Receive forwarded payloads from one peer (one handler per peer; returns unsubscribe). */
  onForward(peer: NodeID, handler: ForwardHandler): () => void {
    this.forwardHandlers.set(peer, handler);
    return () => {
      if (this.forwardHandlers.get(peer) === handler) this.forwardHandlers.delete(peer);
    };
  }

  /** Frames from peers without a handler (e.g. the first message of an incoming relayed link). */
  onUnroutedForward(cb: (from: NodeID, payload: Uint8Array) => void): () => void {
    this.unrouted.add(cb);
    return () => this.unrouted.delete(cb);
  }
}
