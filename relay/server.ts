/**
 * HearthNet relay (core digest §8): one HTTP(S) port serving the built PWA, a read-only
 * model folder, `/config.json` (ICE servers), `/healthz`, `/metrics` and the WebSocket
 * endpoint `/ws` for signalling and forwarding inside per-community rooms.
 *
 * The relay is untrusted-but-honest: it authenticates NodeIDs by signature, keeps only live
 * presence in memory, passes signals and forward frames between members of one room, and
 * never stores or logs payloads, SDP/ICE, or forwarded bytes. Forwarded frames are never
 * dropped: a slow receiver pauses the sender's socket (backpressure).
 */
import { createHome, type HomeCommunity } from './home.js';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import { b64url, randomBytes } from '../engine/core/encoding.js';
import type { NodeID } from '../engine/core/types.js';
import { NODE_ID_RE } from '../engine/core/types.js';
import { isNodeId, shortNodeId, verifyObject } from '../engine/identity/identity.js';
import {
  RELAY_CLOSE_GOING_AWAY,
  RELAY_CLOSE_POLICY,
  RELAY_CLOSE_REPLACED,
  RELAY_FORWARD_HEADER_BYTES,
  RELAY_FORWARD_MAX_BYTES,
  RELAY_FORWARD_VERSION,
  RELAY_HELLO_SKEW_SECONDS,
  RELAY_HELLO_TIMEOUT_SECONDS,
  RELAY_NODE_ID_CHARS,
  RELAY_SUBPROTOCOL,
  RELAY_TEXT_MAX_BYTES,
  parseWallClock,
  wallClockMs,
  type RelayErrorCode,
  type RelayPeerInfo,
} from '../engine/net/relay-client.js';
import { MetricsRegistry } from './metrics.js';
import { serveApp, serveFolder } from './static.js';

export interface IceServer {
  urls: string | string[];
  username?: string;
  credential?: string;
}

export interface RelayOptions {
  /** Home community (join by plain URL), see relay/home.ts; default: in memory, first founder */
  home?: HomeCommunity;
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
  connectionsPerIp?: number; // 32
  helloTimeoutMs?: number; // 10 s
  pingIntervalMs?: number; // 30 s
  /** Pause a sender while its target has more than this queued (default 4 MiB). */
  forwardHighWaterBytes?: number;
  /** Resume paused senders when the target's queue falls below this (default 1 MiB). */
  forwardLowWaterBytes?: number;
  /** Per (sender, target) pair budget per second (defaults 16 MiB and 2000 frames). */
  pairBytesPerSecond?: number;
  pairFramesPerSecond?: number;
  /** A pair at its budget for this long is sent rate_limited and disconnected (default 10 s). */
  overBudgetGraceMs?: number;
  /**
   * A receiver that stays above the high-water mark this long without draining is cut off
   * (terminated), so a stuck or hostile reader cannot freeze its senders forever (default 60 s).
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

export interface Relay {
  /** Page URL, e.g. http://127.0.0.1:7080/ */
  readonly url: string;
  /** WebSocket URL, e.g. ws://127.0.0.1:7080/ws */
  readonly wsUrl: string;
  readonly host: string;
  readonly port: number;
  readonly metrics: MetricsRegistry;
  /** Live numbers for tests and /healthz. */
  stats(): { rooms: number; peers: number; connections: number };
  /** Graceful shutdown: stop accepting, close sockets with 1001, wait (bounded), close the port. */
  close(): Promise<void>;
}

interface PairBudget {
  winStart: number;
  bytes: number;
  frames: number;
  capped: boolean;
  cappedRun: number;
  timer: ReturnType<typeof setTimeout> | null;
}

interface Conn {
  id: number;
  ws: WebSocket;
  ip: string;
  nonce: string;
  state: 'challenged' | 'joined' | 'closed';
  nodeId: NodeID | null;
  room: NodeID | null;
  displayName: string;
  joinedAt: string;
  helloTimer: ReturnType<typeof setTimeout> | null;
  alive: boolean;
  tokens: number;
  tokensAt: number;
  /** Separate bucket for forward_target_offline replies to binary frames. */
  offlineTokens: number;
  offlineTokensAt: number;
  strikes: number;
  replaced: boolean;
  /** Bytes handed to this connection's socket and not yet written out. */
  pending: number;
  /** Senders paused because this connection is over its high-water mark. */
  waitingSenders: Set<Conn>;
  /** Since when this connection's queue has been above the high-water mark (0 = not). */
  overSince: number;
  /** Why this connection's reading is paused (empty = reading). */
  pauseReasons: Set<string>;
  pairs: Map<number, PairBudget>;
}

const MIN_SHORT = (id: string | null) => {
  if (!id) return undefined;
  try {
    return shortNodeId(id as NodeID);
  } catch {
    return undefined;
  }
};

const DISPLAY_NAME_MAX = 64;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f]/;

function readPackageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'dev';
  } catch {
    return 'dev';
  }
}

const SECURITY_HEADERS: [string, string][] = [
  ['Cross-Origin-Opener-Policy', 'same-origin'],
  ['Cross-Origin-Embedder-Policy', 'require-corp'],
  ['Cross-Origin-Resource-Policy', 'same-origin'],
  ['X-Content-Type-Options', 'nosniff'],
  ['Referrer-Policy', 'no-referrer'],
];

export async function createRelay(opts: RelayOptions = {}): Promise<Relay> {
  const home = opts.home ?? createHome();
  const o = {
    host: opts.host ?? '127.0.0.1',
    port: opts.port ?? 0,
    staticDir: opts.staticDir ?? null,
    modelsDir: opts.modelsDir ?? null,
    iceServers: opts.iceServers ?? [],
    forward: opts.forward ?? true,
    maxRoomPeers: opts.maxRoomPeers ?? 64,
    joinsPerHour: opts.joinsPerHour ?? 60,
    messagesPerSecond: opts.messagesPerSecond ?? 50,
    connectionsPerIp: opts.connectionsPerIp ?? 32,
    helloTimeoutMs: opts.helloTimeoutMs ?? RELAY_HELLO_TIMEOUT_SECONDS * 1000,
    pingIntervalMs: opts.pingIntervalMs ?? 30_000,
    forwardHighWaterBytes: opts.forwardHighWaterBytes ?? 4 * 1024 * 1024,
    forwardLowWaterBytes: opts.forwardLowWaterBytes ?? 1024 * 1024,
    pairBytesPerSecond: opts.pairBytesPerSecond ?? 16 * 1024 * 1024,
    pairFramesPerSecond: opts.pairFramesPerSecond ?? 2000,
    overBudgetGraceMs: opts.overBudgetGraceMs ?? 10_000,
    strikesBeforeClose: opts.strikesBeforeClose ?? 10,
    slowConsumerMs: opts.slowConsumerMs ?? 60_000,
    version: opts.version ?? readPackageVersion(),
    now: opts.now ?? Date.now,
    log:
      opts.log ??
      ((rec: Record<string, unknown>) => {
        process.stdout.write(JSON.stringify(rec) + '\n');
      }),
  };
  const startedAt = o.now();
  const log = (level: 'info' | 'warning' | 'error', msg: string, fields: Record<string, unknown> = {}) => {
    try {
      o.log({ ts: new Date(o.now()).toISOString(), level, logger: 'relay', msg, ...fields });
    } catch {
      // a failing log sink must not take the relay down
    }
  };

  // ---- state -------------------------------------------------------------------------
  const rooms = new Map<NodeID, Map<NodeID, Conn>>();
  const conns = new Set<Conn>();
  const perIp = new Map<string, number>();
  const joinLog = new Map<string, number[]>(); // node_id → join times within the last hour
  let nextId = 1;
  let closing = false;

  // ---- metrics -----------------------------------------------------------------------
  const m = new MetricsRegistry();
  m.gauge('hearthnet_relay_connections', 'Open WebSocket connections (joined or not).', () => conns.size);
  m.gauge('hearthnet_relay_peers', 'Authenticated peers present in rooms.', () => {
    let n = 0;
    for (const r of rooms.values()) n += r.size;
    return n;
  });
  m.gauge('hearthnet_relay_rooms', 'Rooms with at least one peer.', () => rooms.size);
  m.gauge('hearthnet_relay_uptime_seconds', 'Seconds since the relay started.', () =>
    Math.floor((o.now() - startedAt) / 1000),
  );
  m.counter('hearthnet_relay_joins_total', 'Successful room joins.');
  m.counter(
    'hearthnet_relay_messages_forwarded_total',
    'Messages passed between peers, by kind (signal, forward).',
  );
  m.counter('hearthnet_relay_forward_bytes_total', 'Bytes of binary forward frames passed between peers.');
  m.counter('hearthnet_relay_signal_bytes_total', 'Bytes of signal messages passed between peers.');
  m.counter('hearthnet_relay_errors_total', 'Error messages sent to clients, by wire code.');
  m.counter('hearthnet_relay_rejects_total', 'Rejected client input, by reason.');
  m.counter(
    'hearthnet_relay_backpressure_pauses_total',
    'Times a sender was paused because its target was slow.',
  );
  m.counter(
    'hearthnet_relay_budget_pauses_total',
    'Times a sender was paused for exceeding its per-pair budget.',
  );
  m.gauge(
    'hearthnet_relay_forward_pending_bytes',
    'Forwarded bytes queued towards receivers right now.',
    () => {
      let n = 0;
      for (const c of conns) n += c.pending;
      return n;
    },
  );
  m.gauge('hearthnet_relay_forward_pending_bytes_max', 'Largest queue towards one receiver since start.');
  let pendingMax = 0;
  m.set('hearthnet_relay_forward_pending_bytes_max', 0);
  for (const name of [
    'hearthnet_relay_joins_total',
    'hearthnet_relay_forward_bytes_total',
    'hearthnet_relay_signal_bytes_total',
    'hearthnet_relay_backpressure_pauses_total',
    'hearthnet_relay_budget_pauses_total',
  ]) {
    m.inc(name, {}, 0);
  }

  // ---- helpers -----------------------------------------------------------------------
  const sendJson = (c: Conn, msg: Record<string, unknown>) => {
    if (c.ws.readyState !== c.ws.OPEN) return;
    c.ws.send(JSON.stringify(msg));
  };

  const roomPeers = (room: NodeID, except: NodeID | null): RelayPeerInfo[] => {
    const r = rooms.get(room);
    if (!r) return [];
    const out: RelayPeerInfo[] = [];
    for (const c of r.values()) {
      if (c.nodeId !== except)
        out.push({ node_id: c.nodeId!, display_name: c.displayName, joined_at: c.joinedAt });
    }
    return out;
  };

  const broadcast = (room: NodeID, except: Conn | null, msg: Record<string, unknown>) => {
    const r = rooms.get(room);
    if (!r) return;
    const text = JSON.stringify(msg);
    for (const c of r.values()) if (c !== except && c.ws.readyState === c.ws.OPEN) c.ws.send(text);
  };

  /**
   * Reject client input: count it, send `error`, log reason + short ids (never content),
   * and close the connection when `close` is set or the strike budget is used up.
   */
  const reject = (
    c: Conn,
    code: RelayErrorCode,
    reason: string,
    message: string,
    extra: { close?: boolean; retry_after_ms?: number; to?: NodeID; strike?: boolean } = {},
  ) => {
    m.inc('hearthnet_relay_errors_total', { code });
    m.inc('hearthnet_relay_rejects_total', { reason });
    const err: Record<string, unknown> = { t: 'error', code, message };
    if (extra.retry_after_ms !== undefined) err.retry_after_ms = Math.ceil(extra.retry_after_ms);
    if (extra.to !== undefined) err.to = extra.to;
    sendJson(c, err);
    let close = extra.close ?? c.state !== 'joined';
    if (!close && extra.strike !== false) {
      c.strikes++;
      if (c.strikes >= o.strikesBeforeClose) close = true;
    }
    log('warning', 'reject', {
      reason,
      code,
      peer: MIN_SHORT(c.nodeId),
      room: MIN_SHORT(c.room),
      closed: close,
    });
    if (close) closeConn(c, RELAY_CLOSE_POLICY, reason);
  };

  const closeConn = (c: Conn, code: number, reason: string) => {
    if (c.ws.readyState === c.ws.OPEN || c.ws.readyState === c.ws.CONNECTING) {
      try {
        c.ws.close(code, reason.slice(0, 120));
      } catch {
        c.ws.terminate();
      }
    }
  };

  /** Token bucket of `messagesPerSecond`; returns 0 when a token was taken, else ms until one is back. */
  const takeToken = (c: Conn, bucket: 'messages' | 'offline' = 'messages'): number => {
    const now = o.now();
    const rate = o.messagesPerSecond;
    const off = bucket === 'offline';
    const at = off ? c.offlineTokensAt : c.tokensAt;
    let tokens = Math.min(rate, (off ? c.offlineTokens : c.tokens) + ((now - at) / 1000) * rate);
    let wait = 0;
    if (tokens >= 1) tokens -= 1;
    else wait = ((1 - tokens) / rate) * 1000;
    if (off) {
      c.offlineTokens = tokens;
      c.offlineTokensAt = now;
    } else {
      c.tokens = tokens;
      c.tokensAt = now;
    }
    return wait;
  };

  const pauseReading = (c: Conn, reason: string) => {
    if (c.state === 'closed') return;
    c.pauseReasons.add(reason);
    c.ws.pause();
  };

  const resumeReading = (c: Conn, reason: string) => {
    c.pauseReasons.delete(reason);
    if (c.pauseReasons.size === 0 && c.state !== 'closed') c.ws.resume();
  };

  // ---- connection lifecycle ------------------------------------------------------------
  const onConnection = (ws: WebSocket, req: http.IncomingMessage) => {
    const ip = req.socket.remoteAddress ?? 'unknown';
    const c: Conn = {
      id: nextId++,
      ws,
      ip,
      nonce: b64url(randomBytes(32)),
      state: 'challenged',
      nodeId: null,
      room: null,
      displayName: '',
      joinedAt: '',
      helloTimer: null,
      alive: true,
      tokens: o.messagesPerSecond,
      tokensAt: o.now(),
      offlineTokens: o.messagesPerSecond,
      offlineTokensAt: o.now(),
      strikes: 0,
      replaced: false,
      pending: 0,
      waitingSenders: new Set(),
      overSince: 0,
      pauseReasons: new Set(),
      pairs: new Map(),
    };
    conns.add(c);
    perIp.set(ip, (perIp.get(ip) ?? 0) + 1);

    ws.on('pong', () => {
      c.alive = true;
    });
    ws.on('error', (err: Error & { code?: string }) => {
      // ws reports protocol violations (e.g. frames above maxPayload) here, then closes.
      const reason = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'oversized_frame' : 'protocol_error';
      m.inc('hearthnet_relay_rejects_total', { reason });
      log('warning', 'socket error', { reason, peer: MIN_SHORT(c.nodeId) });
    });
    ws.on('close', () => onClose(c));
    ws.on('message', (data: RawData, isBinary: boolean) => {
      try {
        onMessage(c, data, isBinary);
      } catch {
        // Defensive: a bug triggered by one client closes that client, never the relay.
        m.inc('hearthnet_relay_rejects_total', { reason: 'internal' });
        log('error', 'internal error while handling a message', { peer: MIN_SHORT(c.nodeId) });
        closeConn(c, 1011, 'internal error');
      }
    });

    if (closing) {
      closeConn(c, RELAY_CLOSE_GOING_AWAY, 'relay shutting down');
      return;
    }
    if ((perIp.get(ip) ?? 0) > o.connectionsPerIp) {
      reject(c, 'capacity_exceeded', 'ip_limit', 'too many connections from this address', { close: true });
      return;
    }
    c.helloTimer = setTimeout(() => {
      c.helloTimer = null;
      if (c.state === 'challenged')
        reject(c, 'expired', 'hello_timeout', 'no hello in time', { close: true });
    }, o.helloTimeoutMs);
    sendJson(c, { t: 'challenge', nonce: c.nonce, server_time: wallClockMs(o.now()) });
  };

  const onClose = (c: Conn) => {
    if (c.state === 'closed') return;
    const wasJoined = c.state === 'joined';
    c.state = 'closed';
    conns.delete(c);
    const n = (perIp.get(c.ip) ?? 1) - 1;
    if (n <= 0) perIp.delete(c.ip);
    else perIp.set(c.ip, n);
    if (c.helloTimer) clearTimeout(c.helloTimer);
    for (const p of c.pairs.values()) if (p.timer) clearTimeout(p.timer);
    c.pairs.clear();
    // Senders waiting on us may read again; we no longer wait on anyone.
    for (const s of c.waitingSenders) resumeReading(s, `bp:${c.id}`);
    c.waitingSenders.clear();
    for (const other of conns) other.waitingSenders.delete(c);
    c.pending = 0;
    if (wasJoined && c.room && c.nodeId) {
      const r = rooms.get(c.room);
      if (r && r.get(c.nodeId) === c) {
        r.delete(c.nodeId);
        if (r.size === 0) rooms.delete(c.room);
        broadcast(c.room, null, { t: 'peer_left', node_id: c.nodeId });
      }
      log('info', 'left', { peer: MIN_SHORT(c.nodeId), room: MIN_SHORT(c.room), replaced: c.replaced });
    }
  };

  const onMessage = (c: Conn, data: RawData, isBinary: boolean) => {
    if (c.state === 'closed') return;
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (isBinary) {
      onBinary(c, buf);
      return;
    }
    if (buf.length > RELAY_TEXT_MAX_BYTES) {
      reject(c, 'bad_request', 'oversized', `text message above ${RELAY_TEXT_MAX_BYTES} bytes`);
      return;
    }
    if (c.state === 'joined') {
      const wait = takeToken(c);
      if (wait > 0) {
        reject(c, 'rate_limited', 'message_rate', 'too many messages', { retry_after_ms: wait });
        return;
      }
    }
    let msg: unknown;
    try {
      msg = JSON.parse(buf.toString('utf8'));
    } catch {
      reject(c, 'bad_request', 'malformed_json', 'message is not JSON');
      return;
    }
    if (!msg || typeof msg !== 'object' || Array.isArray(msg)) {
      reject(c, 'bad_request', 'malformed_message', 'message is not a JSON object');
      return;
    }
    const r = msg as Record<string, unknown>;
    if (c.state === 'challenged') {
      if (r.t !== 'hello') {
        reject(c, 'bad_request', 'expected_hello', 'the first message must be hello');
        return;
      }
      onHello(c, r);
      return;
    }
    switch (r.t) {
      case 'signal':
        onSignal(c, r, buf.length);
        return;
      case 'ping':
        sendJson(c, { t: 'pong', server_time: wallClockMs(o.now()) });
        return;
      case 'hello':
        reject(c, 'bad_request', 'duplicate_hello', 'already joined');
        return;
      default:
        reject(c, 'bad_request', 'unknown_type', 'unknown message type');
    }
  };

  const onHello = (c: Conn, h: Record<string, unknown>) => {
    const dn = h.display_name;
    if (
      h.v !== 1 ||
      h.type !== 'relay.hello' ||
      !isNodeId(h.node_id) ||
      !isNodeId(h.room) ||
      typeof h.nonce !== 'string' ||
      typeof h.ts !== 'string' ||
      typeof h.signature !== 'string' ||
      (dn !== undefined && (typeof dn !== 'string' || dn.length > DISPLAY_NAME_MAX || CONTROL_RE.test(dn)))
    ) {
      reject(c, 'bad_request', 'bad_hello', 'malformed hello');
      return;
    }
    const nodeId = h.node_id as NodeID;
    const room = h.room as NodeID;
    if (!verifyObject(h, nodeId)) {
      reject(c, 'invalid_signature', 'bad_signature', 'hello signature does not verify for node_id');
      return;
    }
    if (h.nonce !== c.nonce) {
      reject(c, 'expired', 'stale_nonce', 'hello nonce is not this connection’s challenge');
      return;
    }
    const ts = parseWallClock(h.ts);
    const now = o.now();
    if (ts === null || Math.abs(ts - now) > RELAY_HELLO_SKEW_SECONDS * 1000) {
      reject(c, 'expired', 'stale_ts', 'hello ts is outside ±300 s of the relay clock');
      return;
    }
    // Join rate per node (sliding hour).
    const hourAgo = now - 3600_000;
    const joins = (joinLog.get(nodeId) ?? []).filter((t) => t > hourAgo);
    if (joins.length >= o.joinsPerHour) {
      joinLog.set(nodeId, joins);
      reject(c, 'rate_limited', 'join_rate', 'too many joins for this node in the last hour', {
        retry_after_ms: joins[0]! + 3600_000 - now,
        close: true,
      });
      return;
    }
    let r = rooms.get(room);
    const existing = r?.get(nodeId) ?? null;
    const others = (r?.size ?? 0) - (existing ? 1 : 0);
    if (others >= o.maxRoomPeers) {
      reject(c, 'capacity_exceeded', 'room_full', 'the room is full', { close: true });
      return;
    }
    joins.push(now);
    joinLog.set(nodeId, joins);
    if (c.helloTimer) clearTimeout(c.helloTimer);
    c.helloTimer = null;
    c.state = 'joined';
    c.nodeId = nodeId;
    c.room = room;
    c.displayName = typeof dn === 'string' ? dn : '';
    c.joinedAt = wallClockMs(now).replace(/\.\d{3}Z$/, 'Z');
    if (!r) rooms.set(room, (r = new Map()));
    home.noteJoin(room, nodeId);
    if (existing) {
      // A second connection of the same node replaces the first (tab reload, network change).
      existing.replaced = true;
      r.delete(nodeId);
      m.inc('hearthnet_relay_rejects_total', { reason: 'replaced' });
      closeConn(existing, RELAY_CLOSE_REPLACED, 'replaced');
      broadcast(room, existing, { t: 'peer_left', node_id: nodeId });
    }
    r.set(nodeId, c);
    m.inc('hearthnet_relay_joins_total');
    sendJson(c, {
      t: 'welcome',
      room,
      node_id: nodeId,
      peers: roomPeers(room, nodeId),
      server_time: wallClockMs(now),
    });
    broadcast(room, c, {
      t: 'peer_joined',
      node_id: nodeId,
      display_name: c.displayName,
      joined_at: c.joinedAt,
    });
    log('info', 'joined', {
      peer: MIN_SHORT(nodeId),
      room: MIN_SHORT(room),
      replaced: !!existing,
      room_size: r.size,
    });
  };

  const onSignal = (c: Conn, s: Record<string, unknown>, bytes: number) => {
    if (typeof s.to !== 'string' || !NODE_ID_RE.test(s.to) || s.data === undefined) {
      reject(c, 'bad_request', 'bad_signal', 'signal needs to (NodeID) and data');
      return;
    }
    const to = s.to as NodeID;
    if (to === c.nodeId) {
      reject(c, 'bad_request', 'signal_to_self', 'cannot signal oneself');
      return;
    }
    const target = rooms.get(c.room!)?.get(to);
    if (!target) {
      reject(c, 'forward_target_offline', 'signal_target_offline', 'target is not in this room', {
        to,
        strike: false,
      });
      return;
    }
    // Re-serialise so only {t, from, data} reaches the target; content is never inspected or logged.
    sendJson(target, { t: 'signal', from: c.nodeId, data: s.data });
    m.inc('hearthnet_relay_messages_forwarded_total', { kind: 'signal' });
    m.inc('hearthnet_relay_signal_bytes_total', {}, bytes);
  };

  const onBinary = (c: Conn, buf: Buffer) => {
    if (c.state !== 'joined') {
      reject(c, 'bad_request', 'forward_before_hello', 'binary frames need a joined connection');
      return;
    }
    if (!o.forward) {
      reject(c, 'bad_request', 'forward_disabled', 'forwarding is disabled on this relay');
      return;
    }
    if (buf.length > RELAY_FORWARD_MAX_BYTES) {
      reject(c, 'bad_request', 'oversized', `forward frame above ${RELAY_FORWARD_MAX_BYTES} bytes`);
      return;
    }
    if (
      buf.length < RELAY_FORWARD_HEADER_BYTES ||
      buf[0] !== RELAY_FORWARD_VERSION ||
      buf[1] !== RELAY_NODE_ID_CHARS
    ) {
      reject(c, 'bad_request', 'malformed_frame', 'malformed forward frame');
      return;
    }
    const to = buf.toString('latin1', 2, RELAY_FORWARD_HEADER_BYTES);
    if (!NODE_ID_RE.test(to)) {
      reject(c, 'bad_request', 'malformed_frame', 'forward address is not a NodeID');
      return;
    }
    if (to === c.nodeId) {
      reject(c, 'bad_request', 'forward_to_self', 'cannot forward to oneself');
      return;
    }
    const target = rooms.get(c.room!)?.get(to as NodeID);
    if (!target) {
      // Tell the sender, but charge the reply to its message budget so it cannot be spammed.
      if (takeToken(c, 'offline') === 0) {
        reject(c, 'forward_target_offline', 'forward_target_offline', 'target is not in this room', {
          to: to as NodeID,
          strike: false,
        });
      } else {
        m.inc('hearthnet_relay_rejects_total', { reason: 'forward_target_offline' });
      }
      return;
    }
    // Rewrite the address to the authenticated sender in place (same length) and pass it on.
    buf.write(c.nodeId!, 2, RELAY_NODE_ID_CHARS, 'latin1');
    const len = buf.length;
    target.pending += len;
    if (target.pending > pendingMax) {
      pendingMax = target.pending;
      m.set('hearthnet_relay_forward_pending_bytes_max', pendingMax);
    }
    target.ws.send(buf, { binary: true }, () => {
      target.pending = Math.max(0, target.pending - len);
      if (target.pending <= o.forwardLowWaterBytes) target.overSince = 0;
      if (target.pending <= o.forwardLowWaterBytes && target.waitingSenders.size) {
        const waiting = [...target.waitingSenders];
        target.waitingSenders.clear();
        for (const s of waiting) resumeReading(s, `bp:${target.id}`);
      }
    });
    m.inc('hearthnet_relay_messages_forwarded_total', { kind: 'forward' });
    m.inc('hearthnet_relay_forward_bytes_total', {}, len);
    if (target.pending > o.forwardHighWaterBytes && target.overSince === 0) target.overSince = o.now();
    if (target.pending > o.forwardHighWaterBytes && !target.waitingSenders.has(c)) {
      target.waitingSenders.add(c);
      pauseReading(c, `bp:${target.id}`);
      m.inc('hearthnet_relay_backpressure_pauses_total');
    }
    chargeBudget(c, target, len);
  };

  /** Per-pair budget: shape a sender to its budget per second; disconnect if it stays capped. */
  const chargeBudget = (c: Conn, target: Conn, len: number) => {
    const now = o.now();
    let p = c.pairs.get(target.id);
    if (!p) {
      p = { winStart: now, bytes: 0, frames: 0, capped: false, cappedRun: 0, timer: null };
      c.pairs.set(target.id, p);
    }
    if (now - p.winStart >= 1000) {
      p.cappedRun = p.capped && now - p.winStart < 2000 ? p.cappedRun + 1 : 0;
      p.winStart = now;
      p.bytes = 0;
      p.frames = 0;
      p.capped = false;
    }
    p.bytes += len;
    p.frames += 1;
    if (p.capped || (p.bytes < o.pairBytesPerSecond && p.frames < o.pairFramesPerSecond)) return;
    p.capped = true;
    if ((p.cappedRun + 1) * 1000 >= o.overBudgetGraceMs) {
      reject(c, 'rate_limited', 'forward_budget', 'forwarding stayed over the per-pair budget', {
        close: true,
        retry_after_ms: 1000,
      });
      return;
    }
    const reason = `budget:${target.id}`;
    pauseReading(c, reason);
    m.inc('hearthnet_relay_budget_pauses_total');
    const pair = p;
    pair.timer = setTimeout(
      () => {
        pair.timer = null;
        resumeReading(c, reason);
      },
      Math.max(1, pair.winStart + 1000 - now),
    );
  };

  // ---- HTTP ----------------------------------------------------------------------------
  const healthz = () => ({
    ok: !closing,
    version: o.version,
    rooms: rooms.size,
    peers: m.get('hearthnet_relay_peers'),
    connections: conns.size,
    uptime_seconds: Math.floor((o.now() - startedAt) / 1000),
    server_time: wallClockMs(o.now()),
  });

  const handleHttp = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    for (const [k, v] of SECURITY_HEADERS) res.setHeader(k, v);
    let pathname: string;
    try {
      pathname = new URL(req.url ?? '/', 'http://relay.invalid').pathname;
    } catch {
      res.statusCode = 400;
      res.end('bad request\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.statusCode = 405;
      res.setHeader('Allow', 'GET, HEAD');
      res.end();
      return;
    }
    const json = (status: number, body: unknown) => {
      res.statusCode = status;
      res.setHeader('Content-Type', 'application/json; charset=utf-8');
      res.setHeader('Cache-Control', 'no-store');
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify(body));
    };
    if (pathname === '/healthz') return json(closing ? 503 : 200, healthz());
    if (pathname === '/metrics') {
      res.statusCode = 200;
      res.setHeader('Content-Type', 'text/plain; version=0.0.4; charset=utf-8');
      res.setHeader('Cache-Control', 'no-store');
      res.end(req.method === 'HEAD' ? undefined : m.render());
      return;
    }
    if (pathname === '/config.json') {
      return json(200, {
        ice_servers: o.iceServers,
        relay: { ws_path: '/ws', subprotocol: RELAY_SUBPROTOCOL, version: o.version },
        home_community: home.current(),
      });
    }
    if (pathname === '/ws') {
      res.statusCode = 426;
      res.setHeader('Upgrade', 'websocket');
      res.end('WebSocket upgrade required\n');
      return;
    }
    if (pathname === '/models' || pathname.startsWith('/models/')) {
      return serveFolder(req, res, o.modelsDir, pathname.slice('/models'.length) || '/');
    }
    return serveApp(req, res, o.staticDir, pathname);
  };

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    handleHttp(req, res).catch(() => {
      if (!res.headersSent) {
        res.statusCode = 500;
        res.end('internal error\n');
      } else res.destroy();
    });
  };

  const server =
    opts.tls && opts.tls.cert && opts.tls.key
      ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, onRequest)
      : http.createServer(onRequest);
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    else socket.destroy();
  });

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: RELAY_FORWARD_MAX_BYTES * 2,
    perMessageDeflate: false,
    handleProtocols: (protocols) => (protocols.has(RELAY_SUBPROTOCOL) ? RELAY_SUBPROTOCOL : false),
  });
  wss.on('connection', onConnection);

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    let pathname = '';
    try {
      pathname = new URL(req.url ?? '/', 'http://relay.invalid').pathname;
    } catch {
      // falls through to 404
    }
    if (pathname !== '/ws' || closing) {
      socket.end(closing ? 'HTTP/1.1 503 Service Unavailable\r\n\r\n' : 'HTTP/1.1 404 Not Found\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });

  // Slow-consumer sweep: a receiver stuck above the high-water mark is terminated (it is not
  // reading, so a close handshake or an error message could not reach it anyway).
  const sweepTimer = setInterval(
    () => {
      const now = o.now();
      for (const c of conns) {
        if (
          c.overSince !== 0 &&
          c.pending > o.forwardHighWaterBytes &&
          now - c.overSince >= o.slowConsumerMs
        ) {
          m.inc('hearthnet_relay_rejects_total', { reason: 'slow_consumer' });
          log('warning', 'reject', {
            reason: 'slow_consumer',
            peer: MIN_SHORT(c.nodeId),
            room: MIN_SHORT(c.room),
          });
          c.ws.terminate();
        }
      }
    },
    Math.min(1000, Math.max(50, Math.floor(o.slowConsumerMs / 4))),
  );
  sweepTimer.unref?.();

  const pingTimer = setInterval(() => {
    for (const c of conns) {
      if (c.pauseReasons.size > 0) continue; // a paused socket cannot read pongs; it is busy, not dead
      if (!c.alive) {
        m.inc('hearthnet_relay_rejects_total', { reason: 'ping_timeout' });
        c.ws.terminate();
        continue;
      }
      c.alive = false;
      try {
        c.ws.ping();
      } catch {
        // closing
      }
    }
    // prune the join log
    const hourAgo = o.now() - 3600_000;
    for (const [k, v] of joinLog) {
      const keep = v.filter((t) => t > hourAgo);
      if (keep.length) joinLog.set(k, keep);
      else joinLog.delete(k);
    }
  }, o.pingIntervalMs);
  pingTimer.unref?.();

  await new Promise<void>((resolve, reject) => {
    const onErr = (e: Error) => reject(e);
    server.once('error', onErr);
    server.listen(o.port, o.host, () => {
      server.off('error', onErr);
      resolve();
    });
  });
  server.on('error', (e) => log('error', 'server error', { error: (e as Error).message }));

  const addr = server.address() as AddressInfo;
  const scheme = opts.tls ? 'https' : 'http';
  const hostForUrl = addr.address.includes(':') ? `[${addr.address}]` : addr.address;
  const url = `${scheme}://${hostForUrl}:${addr.port}/`;
  const wsUrl = `${scheme === 'https' ? 'wss' : 'ws'}://${hostForUrl}:${addr.port}/ws`;
  log('info', 'listening', {
    url,
    forward: o.forward,
    static: !!o.staticDir,
    max_room_peers: o.maxRoomPeers,
  });

  let closePromise: Promise<void> | null = null;
  const close = () => {
    if (closePromise) return closePromise;
    closing = true;
    closePromise = (async () => {
      clearInterval(pingTimer);
      clearInterval(sweepTimer);
      const open = [...conns];
      for (const c of open) closeConn(c, RELAY_CLOSE_GOING_AWAY, 'relay shutting down');
      // Wait (bounded) for clean closes, then cut whatever is left.
      const deadline = Date.now() + 3000;
      while (conns.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      for (const c of [...conns]) {
        c.ws.terminate();
        onClose(c);
      }
      wss.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      });
      log('info', 'stopped', {});
    })();
    return closePromise;
  };

  return {
    url,
    wsUrl,
    host: addr.address,
    port: addr.port,
    metrics: m,
    stats: () => ({ rooms: rooms.size, peers: m.get('hearthnet_relay_peers'), connections: conns.size }),
    close,
  };
}
