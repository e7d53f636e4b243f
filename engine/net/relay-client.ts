/**
 * Relay signalling client (core digest §8.3, §8.4, §8.6) and the relay wire codec that the
 * Node relay (`relay/`) shares with it.
 *
 * Runs in browser tabs and in Node peers: the WebSocket constructor is injected (the
 * browser's `WebSocket`, or `ws` in Node). The client proves its NodeID by signing the
 * relay's challenge, keeps the room roster, relays `signal` messages, forwards binary
 * frames to peers with send-side backpressure, reconnects with capped exponential backoff,
 * and estimates the clock offset to the relay from `server_time`.
 *
 * Nothing here logs payloads, SDP/ICE or key material.
 */
import { RECONNECT_BACKOFF_CAP_SECONDS } from '../core/constants.js';
import { HnError } from '../core/errors.js';
import type { NodeID } from '../core/types.js';
import { NODE_ID_RE } from '../core/types.js';
import { signObject, type KeyPair } from '../identity/identity.js';

// ---------------------------------------------------------------------------------------
// Protocol constants (relay wire, core §8.3–§8.5)
// ---------------------------------------------------------------------------------------

/** WebSocket subprotocol of the relay (core §8.2). */
export const RELAY_SUBPROTOCOL = 'hearthnet-relay.v1';
/** `v` of `relay.hello`. */
export const RELAY_HELLO_VERSION = 1;
/** First byte of every binary forward frame (core §8.4). */
export const RELAY_FORWARD_VERSION = 0x01;
/** Largest binary forward frame, header included (core §8.4). */
export const RELAY_FORWARD_MAX_BYTES = 128 * 1024;
/** Length of a full NodeID in ASCII ("ed25519:" + 43 chars). */
export const RELAY_NODE_ID_CHARS = 51;
/** version + addr_len + addr. */
export const RELAY_FORWARD_HEADER_BYTES = 2 + RELAY_NODE_ID_CHARS;
/** Largest payload (link frame or E2E record) in one forward frame. */
export const RELAY_FORWARD_MAX_PAYLOAD_BYTES = RELAY_FORWARD_MAX_BYTES - RELAY_FORWARD_HEADER_BYTES;
/** Largest `signal.data` (canonical JSON text, core §8.3). */
export const RELAY_SIGNAL_MAX_BYTES = 64 * 1024;
/** Largest text message the relay accepts: a maximal signal plus its envelope. */
export const RELAY_TEXT_MAX_BYTES = RELAY_SIGNAL_MAX_BYTES + 1024;
/** The client must send `hello` within this many seconds of the challenge. */
export const RELAY_HELLO_TIMEOUT_SECONDS = 10;
/** `hello.ts` must lie within ± this many seconds of the relay's clock. */
export const RELAY_HELLO_SKEW_SECONDS = 300;
/** Clock offsets smaller than this are not applied (core §8.6). */
export const RELAY_CLOCK_APPLY_THRESHOLD_MS = 2000;
/** Close codes used by the relay. */
export const RELAY_CLOSE_REPLACED = 4001;
export const RELAY_CLOSE_POLICY = 4008;
export const RELAY_CLOSE_GOING_AWAY = 1001;
/** Default send-side high-water mark of the client's socket before `forward()` waits. */
export const RELAY_CLIENT_SEND_HIGH_WATER_BYTES = 1024 * 1024;

/** Error codes the relay puts in `{t:"error"}` (core §8.3). */
export type RelayErrorCode =
  | 'bad_request'
  | 'invalid_signature'
  | 'expired'
  | 'rate_limited'
  | 'capacity_exceeded'
  | 'forward_target_offline';
export const RELAY_ERROR_CODES: readonly RelayErrorCode[] = [
  'bad_request',
  'invalid_signature',
  'expired',
  'rate_limited',
  'capacity_exceeded',
  'forward_target_offline',
];

export interface RelayPeerInfo {
  node_id: NodeID;
  display_name: string;
  joined_at: string;
}

/** Messages the relay sends (text frames). */
export type RelayServerMessage =
  | { t: 'challenge'; nonce: string; server_time: string }
  | { t: 'welcome'; room: NodeID; node_id: NodeID; peers: RelayPeerInfo[]; server_time: string }
  | { t: 'peer_joined'; node_id: NodeID; display_name: string; joined_at: string }
  | { t: 'peer_left'; node_id: NodeID }
  | { t: 'signal'; from: NodeID; data: unknown }
  | { t: 'pong'; server_time: string }
  | { t: 'error'; code: RelayErrorCode; message?: string; retry_after_ms?: number; to?: NodeID };

/** Messages a client sends (text frames). `hello` is signed over every member except `signature`. */
export type RelayClientMessage =
  | {
      t: 'hello';
      v: 1;
      type: 'relay.hello';
      node_id: NodeID;
      room: NodeID;
      nonce: string;
      ts: string;
      display_name?: string;
      signature: string;
    }
  | { t: 'signal'; to: NodeID; data: unknown }
  | { t: 'ping' };

// ---------------------------------------------------------------------------------------
// Codec helpers shared with relay/
// ---------------------------------------------------------------------------------------

/** RFC 3339 UTC with milliseconds (`server_time`, `hello.ts`). */
export const wallClockMs = (ms: number): string => new Date(ms).toISOString();

const WALL_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;
/** Parse an RFC 3339 UTC timestamp (`YYYY-MM-DDTHH:MM:SS[.mmm]Z`); null when malformed. */
export function parseWallClock(s: unknown): number | null {
  if (typeof s !== 'string' || !WALL_RE.test(s)) return null;
  const ms = Date.parse(s);
  return Number.isFinite(ms) ? ms : null;
}

/** Build a forward frame: `[0x01][addr_len][addr ASCII][payload]`. */
export function encodeForwardFrame(addr: string, payload: Uint8Array): Uint8Array {
  if (!NODE_ID_RE.test(addr)) throw new HnError('bad_request', 'forward address is not a NodeID');
  if (RELAY_FORWARD_HEADER_BYTES + payload.length > RELAY_FORWARD_MAX_BYTES) {
    throw new HnError(
      'too_large',
      `forward payload of ${payload.length} bytes exceeds ${RELAY_FORWARD_MAX_PAYLOAD_BYTES}`,
    );
  }
  const out = new Uint8Array(RELAY_FORWARD_HEADER_BYTES + payload.length);
  out[0] = RELAY_FORWARD_VERSION;
  out[1] = RELAY_NODE_ID_CHARS;
  for (let i = 0; i < RELAY_NODE_ID_CHARS; i++) out[2 + i] = addr.charCodeAt(i);
  out.set(payload, RELAY_FORWARD_HEADER_BYTES);
  return out;
}

/** Parse a forward frame; throws `bad_request` on a malformed header. The payload is a view. */
export function decodeForwardFrame(buf: Uint8Array): { addr: NodeID; payload: Uint8Array } {
  if (buf.length < RELAY_FORWARD_HEADER_BYTES) throw new HnError('bad_request', 'forward frame too short');
  if (buf[0] !== RELAY_FORWARD_VERSION) throw new HnError('bad_request', 'unknown forward frame version');
  if (buf[1] !== RELAY_NODE_ID_CHARS) throw new HnError('bad_request', 'bad forward address length');
  let addr = '';
  for (let i = 0; i < RELAY_NODE_ID_CHARS; i++) addr += String.fromCharCode(buf[2 + i]!);
  if (!NODE_ID_RE.test(addr)) throw new HnError('bad_request', 'forward address is not a NodeID');
  return { addr: addr as NodeID, payload: buf.subarray(RELAY_FORWARD_HEADER_BYTES) };
}

/** The signed `hello` message answering a challenge. */
export function buildRelayHello(
  kp: KeyPair,
  room: NodeID,
  nonce: string,
  tsMs: number,
  displayName?: string,
): Extract<RelayClientMessage, { t: 'hello' }> {
  const body: Record<string, unknown> = {
    t: 'hello',
    v: RELAY_HELLO_VERSION,
    type: 'relay.hello',
    node_id: kp.nodeId,
    room,
    nonce,
    ts: wallClockMs(tsMs),
  };
  if (displayName !== undefined && displayName !== '') body.display_name = displayName;
  return signObject(kp, body) as unknown as Extract<RelayClientMessage, { t: 'hello' }>;
}

// ---------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------

/**
 * Delay before reconnect attempt `attempt` (0-based): exponential from `initialMs`, capped at
 * `capMs`, with "equal jitter" (half fixed, half random from `r` ∈ [0,1)) so that a room full
 * of tabs does not reconnect in lockstep after a relay restart and the delay never drops to 0.
 */
export function reconnectDelayMs(attempt: number, initialMs: number, capMs: number, r: number): number {
  const base = Math.min(capMs, initialMs * 2 ** Math.min(Math.max(0, attempt), 30));
  return Math.min(capMs, base / 2 + (base / 2) * Math.min(Math.max(r, 0), 1));
}

/** The part of the WebSocket API the client uses: browser `WebSocket` and `ws` both fit. */
export interface WebSocketLike {
  readonly readyState: number;
  readonly bufferedAmount: number;
  binaryType: string;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: any) => void) | null;
  onclose: ((ev: any) => void) | null;
  onerror: ((ev: any) => void) | null;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

const WS_OPEN = 1;
const UTF8 = new TextEncoder();

export type RelayClientState =
  'idle' | 'connecting' | 'authenticating' | 'ready' | 'backoff' | 'closed' | 'replaced';

export interface RelayClientEvents {
  state: RelayClientState;
  /** Full roster after every (re)join; the client's own entry is not included. */
  welcome: { peers: RelayPeerInfo[]; server_time: string };
  peer_joined: RelayPeerInfo;
  peer_left: { node_id: NodeID };
  signal: { from: NodeID; data: unknown };
  relay_error: { code: RelayErrorCode; message?: string; retry_after_ms?: number; to?: NodeID };
  /** An open connection closed (the roster is cleared; a `welcome` follows on reconnect). Failed connection attempts do not emit it. */
  disconnected: { code: number; reason: string };
}

export interface RelayClientOptions {
  /** `ws(s)://host:port/ws`. */
  url: string;
  keyPair: KeyPair;
  /** Community room (the CommunityID). */
  room: NodeID;
  displayName?: string;
  WebSocket: WebSocketConstructor;
  /** Reconnect after an unexpected close (default true). */
  reconnect?: boolean;
  /** First reconnect delay (default 500 ms); doubles per failure up to the cap. */
  backoffInitialMs?: number;
  /** Backoff cap (default RECONNECT_BACKOFF_CAP_SECONDS). */
  backoffCapMs?: number;
  /** Local clock (default Date.now); injectable for skew tests. */
  now?: () => number;
  /** Jitter source in [0,1) (default Math.random). */
  random?: () => number;
  /** `forward()` waits while the socket has more than this buffered (default 1 MiB). */
  sendHighWaterBytes?: number;
}

type Listener<T> = (v: T) => void;
/** Handler of forwarded payloads from one peer; return `false` to pass the frame on as unrouted. */
export type ForwardHandler = (payload: Uint8Array) => boolean | void;

export class RelayClient {
  private readonly opts: Required<Omit<RelayClientOptions, 'displayName'>> & { displayName?: string };
  private ws: WebSocketLike | null = null;
  private _state: RelayClientState = 'idle';
  private readonly listeners = new Map<keyof RelayClientEvents, Set<Listener<any>>>();
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
  private drainTimer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  /** Whether the current socket reached `open` (a failed attempt is not a disconnect). */
  private socketOpened = false;
  /** Frames received from peers without a handler (counted, never logged). */
  unroutedDropped = 0;

  constructor(opts: RelayClientOptions) {
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

  on<K extends keyof RelayClientEvents>(event: K, cb: Listener<RelayClientEvents[K]>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(cb);
    return () => set.delete(cb);
  }

  private emit<K extends keyof RelayClientEvents>(event: K, v: RelayClientEvents[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const cb of [...set]) {
      try {
        cb(v);
      } catch {
        // a listener's failure must not break the client
      }
    }
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
    this.ws.send(frame);
    if (this.ws.bufferedAmount <= this.opts.sendHighWaterBytes) return Promise.resolve();
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
