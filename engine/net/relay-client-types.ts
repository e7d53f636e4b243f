/** Types, options and helpers of the relay client (relay-client.ts). */
import type { NodeID } from '../core/types.js';
import type { KeyPair } from '../identity/identity.js';
import type { RelayErrorCode, RelayPass, RelayPeerInfo } from './relay-wire.js';

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

export const WS_OPEN = 1;
export const UTF8 = new TextEncoder();

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
  /**
   * Room pass (relay-wire RelayPass) for an invite community's room: with it the client joins
   * the room's members; without it the room's open side (open communities need none).
   */
  pass?: RelayPass | (() => RelayPass | undefined);
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

export type Listener<T> = (v: T) => void;
export interface HeldFrame {
  frame: Uint8Array;
  resolve: () => void;
  reject: (e: unknown) => void;
}
/** Frames held per paused destination (callers await each forward, so a few suffice). */
export const RELAY_CLIENT_HELD_FRAMES_MAX = 256;
/** Bytes forwarded back to back before `forward()` yields to the event loop once. */
export const RELAY_CLIENT_YIELD_BYTES = 512 * 1024;
/** Handler of forwarded payloads from one peer; return `false` to pass the frame on as unrouted. */
export type ForwardHandler = (payload: Uint8Array) => boolean | void;

/** Typed listeners; a listener's failure never breaks the emitter. */
export class Emitter<E> {
  private readonly listeners = new Map<keyof E, Set<Listener<any>>>();

  on<K extends keyof E>(event: K, cb: Listener<E[K]>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(cb);
    return () => set.delete(cb);
  }

  protected emit<K extends keyof E>(event: K, v: E[K]): void {
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
}
