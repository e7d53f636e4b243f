/** Shared types of the relay's parts (server wiring, HTTP, rooms, forwarding). */
import type { WebSocket } from 'ws';
import type { HomeCommunity } from './home.js';
import type { NodeID } from '../engine/core/types.js';
import type { Metrics } from '../engine/observability/metrics.js';

export interface IceServer {
  urls: string | string[];
  username?: string;
  credential?: string;
}

export interface RelayOptions {
  /** Home community (join by plain URL), see relay/home.ts; default: in memory, first founder */
  home?: HomeCommunity;
  /**
   * JSON file that keeps room-pass revocations across restarts (relay/revocations.ts; the CLI uses
   * `<data>/revocations.json`); null/missing = memory only.
   */
  revocationsFile?: string | null;
  /** Bind address (default 127.0.0.1 here; the CLI defaults to 0.0.0.0). */
  host?: string;
  /** Port (0 = any free port). */
  port?: number;
  /** Built PWA folder; null/missing → a "build the app first" page. */
  staticDir?: string | null;
  /** Read-only model folder served under /models/. */
  modelsDir?: string | null;
  /** ICE servers (STUN/TURN) handed to pages in /config.json. */
  iceServers?: IceServer[];
  /** TLS: PEM strings; HTTPS/WSS when both are given. */
  tls?: { cert: string | Buffer; key: string | Buffer } | null;
  /** Binary forwarding on (default true). */
  forward?: boolean;
  maxRoomPeers?: number; // 64
  joinsPerHour?: number; // 60 per node
  messagesPerSecond?: number; // 50 text messages per connection (signals included)
  connectionsPerIp?: number; // 32 WebSocket connections per address
  /** WebSocket connections per address that have not joined a room yet (default 8). */
  unjoinedPerIp?: number;
  /** NodeIDs not seen before that one address may bring into rooms per minute (default 10). */
  freshKeysPerIpPerMinute?: number;
  /** TCP sockets (HTTP and WebSocket together) per address (default 64). */
  socketsPerIp?: number;
  /** An HTTP request must deliver its headers within this (default 10 s). */
  headersTimeoutMs?: number;
  /** An HTTP socket with no traffic for this long is closed (default 30 s). */
  idleTimeoutMs?: number;
  /** Bytes per second one connection may send, every message kind together (default 32 MiB). */
  connectionBytesPerSecond?: number;
  helloTimeoutMs?: number; // 10 s
  pingIntervalMs?: number; // 30 s
  /** Pause a sender while its target has more than this queued (default 4 MiB). */
  forwardHighWaterBytes?: number;
  /** Resume paused senders when the target's queue falls below this (default 1 MiB). */
  forwardLowWaterBytes?: number;
  /**
   * A target over the high-water mark pauses its senders' sockets for at most this long; then they
   * read on and their frames for it are held, so a stalled reader cannot freeze them (default 2 s).
   */
  slowReaderPauseMs?: number;
  /**
   * Bytes one connection may have handled in one event-loop turn before it yields to the others
   * (its socket is paused until the next turn), so a bulk sender cannot hold the loop for hundreds
   * of ms while a small message waits behind it (default 256 KiB).
   */
  turnReadBytes?: number;
  /** Per (sender, target) pair budget per second (defaults 16 MiB and 2000 frames). */
  pairBytesPerSecond?: number;
  pairFramesPerSecond?: number;
  /** A pair at its budget for this long is sent rate_limited and disconnected (default 10 s). */
  overBudgetGraceMs?: number;
  /**
   * A receiver that stays above the high-water mark this long without draining is cut off
   * (terminated), so a stuck or hostile reader cannot hold its senders' frames forever (default 60 s).
   */
  slowConsumerMs?: number;
  /** Non-fatal protocol violations after join before the connection is closed (default 10). */
  strikesBeforeClose?: number;
  /** Version reported by /healthz. */
  version?: string;
  /** Structured log sink (JSON-able records; never payloads). Default: JSON lines on stdout. */
  log?: (rec: Record<string, unknown>) => void;
  /** Clock (default Date.now). */
  now?: () => number;
}

export type ResolvedOptions = Required<
  Omit<
    RelayOptions,
    'tls' | 'log' | 'staticDir' | 'modelsDir' | 'host' | 'port' | 'iceServers' | 'revocationsFile'
  >
> & {
  revocationsFile: string | null;
  host: string;
  port: number;
  staticDir: string | null;
  modelsDir: string | null;
  iceServers: IceServer[];
  log: (rec: Record<string, unknown>) => void;
};

export interface Relay {
  /** Page URL, e.g. http://127.0.0.1:7080/ */
  readonly url: string;
  /** WebSocket URL, e.g. ws://127.0.0.1:7080/ws */
  readonly wsUrl: string;
  readonly host: string;
  readonly port: number;
  readonly metrics: Metrics;
  /** Live numbers for tests and /healthz; `queued_bytes` = every byte the relay holds for peers. */
  stats(): { rooms: number; peers: number; connections: number; queued_bytes: number };
  /** Graceful shutdown: stop accepting, close sockets with 1001, wait (bounded), close the port. */
  close(): Promise<void>;
}

export interface PairBudget {
  winStart: number;
  bytes: number;
  frames: number;
  capped: boolean;
  /** Start of the first window of an unbroken run of capped windows; null while not capped. */
  cappedSince: number | null;
  /** When the sender last sent (or was resumed after a pause): a full idle second breaks the run. */
  lastAt: number;
  timer: ReturnType<typeof setTimeout> | null;
  /** Frames read while the pair was capped (already in the socket's read chunk when reading paused): passed on
   * when the window rolls over, charged to it, so a burst is paced like a stream. */
  queue: Buffer[];
}

/** Frames a sender sent to one target while that target was over its high-water mark. */
export interface Held {
  frames: Buffer[];
  bytes: number;
  /** Ends the sender's pause for this target after `slowReaderPauseMs` (null: it reads on). */
  timer: ReturnType<typeof setTimeout> | null;
}

export interface Conn {
  id: number;
  ws: WebSocket;
  ip: string;
  nonce: string;
  state: 'challenged' | 'joined' | 'closed';
  nodeId: NodeID | null;
  room: NodeID | null;
  /**
   * Key of the part of the room this connection is in: the room id for its open side, or
   * `<room>/members` for peers that showed a valid room pass (relay-wire RelayPass). Rosters,
   * signals and forwarding never cross from one side to the other.
   */
  bucket: string | null;
  /** Who delegated this connection's room pass (`pass.by.node_id`), if it was delegated. */
  passBy: NodeID | null;
  displayName: string;
  joinedAt: string;
  helloTimer: ReturnType<typeof setTimeout> | null;
  alive: boolean;
  tokens: number;
  tokensAt: number;
  /** Separate bucket for forward_target_offline replies to binary frames. */
  offlineTokens: number;
  offlineTokensAt: number;
  /** Byte budget of everything this connection sends (text and binary). */
  byteTokens: number;
  byteTokensAt: number;
  strikes: number;
  /** Until when this connection was told to wait (`rate_limited` with `retry_after_ms`). */
  waitUntil: number;
  /** Refused messages it sent inside that window (the grace, then strikes). */
  ignoredWaits: number;
  replaced: boolean;
  /** Bytes handed to this connection's socket and not yet written out (every message kind). */
  pending: number;
  /** Senders holding frames for this connection (it is over its high-water mark). */
  waitingSenders: Set<Conn>;
  /** Frames this connection sent to targets that are not reading, per target. */
  held: Map<Conn, Held>;
  heldBytes: number;
  /** Since when this connection's queue has been above the high-water mark (0 = not). */
  overSince: number;
  /** Why this connection's reading is paused (empty = reading). */
  pauseReasons: Set<string>;
  /** Bytes it sent in this event-loop turn (-1: none yet; see `turnReadBytes`). */
  turnBytes: number;
  pairs: Map<number, PairBudget>;
  /** Refusals not yet written to the log, per reason (relay/reject-log.ts). */
  refusals: Map<string, { since: number; count: number; code: string }>;
}
