/**
 * HearthNet relay (core digest §8): one HTTP(S) port serving the built PWA, a read-only
 * model folder, `/config.json` (ICE servers), `/healthz`, `/metrics` and the WebSocket
 * endpoint `/ws` for signalling and forwarding inside per-community rooms.
 *
 * The relay is untrusted-but-honest: it authenticates NodeIDs by signature, keeps only live
 * presence in memory, passes signals and forward frames between members of one room, and
 * never stores or logs payloads, SDP/ICE, or forwarded bytes. Every byte it queues is
 * accounted per connection and bounded (forward.ts); admission lives in rooms.ts, the HTTP
 * surface and its slowloris defences in http.ts; the wire protocol in engine/net/relay-wire.ts.
 */
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { b64url, randomBytes } from '../engine/core/encoding.js';
import { NODE_ID_RE, type NodeID } from '../engine/core/types.js';
import { Metrics } from '../engine/observability/metrics.js';
import { createHome } from './home.js';
import { registerMetrics } from './metrics.js';
import {
  RELAY_CLOSE_GOING_AWAY,
  RELAY_CLOSE_POLICY,
  RELAY_FORWARD_MAX_BYTES,
  RELAY_HELLO_MAX_BYTES,
  RELAY_HELLO_TIMEOUT_SECONDS,
  RELAY_SUBPROTOCOL,
  RELAY_TEXT_MAX_BYTES,
  wallClockMs,
  type RelayErrorCode,
} from '../engine/net/relay-wire.js';
import { shortId, type RelayCtx } from './context.js';
import { createForwarder } from './forward.js';
import { createHttpServer } from './http.js';
import { createRejectLog } from './reject-log.js';
import { createRooms } from './rooms.js';
import type { Conn, Relay, RelayOptions, ResolvedOptions } from './types.js';

export type { IceServer, Relay, RelayOptions } from './types.js';

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

function resolve(opts: RelayOptions): ResolvedOptions {
  return {
    home: opts.home ?? createHome(),
    host: opts.host ?? '127.0.0.1',
    port: opts.port ?? 0,
    staticDir: opts.staticDir ?? null,
    modelsDir: opts.modelsDir ?? null,
    revocationsFile: opts.revocationsFile ?? null,
    iceServers: opts.iceServers ?? [],
    forward: opts.forward ?? true,
    maxRoomPeers: opts.maxRoomPeers ?? 64,
    joinsPerHour: opts.joinsPerHour ?? 60,
    messagesPerSecond: opts.messagesPerSecond ?? 50,
    connectionsPerIp: opts.connectionsPerIp ?? 32,
    unjoinedPerIp: opts.unjoinedPerIp ?? 8,
    freshKeysPerIpPerMinute: opts.freshKeysPerIpPerMinute ?? 30,
    socketsPerIp: opts.socketsPerIp ?? 64,
    headersTimeoutMs: opts.headersTimeoutMs ?? 10_000,
    idleTimeoutMs: opts.idleTimeoutMs ?? 30_000,
    connectionBytesPerSecond: opts.connectionBytesPerSecond ?? 32 * 1024 * 1024,
    helloTimeoutMs: opts.helloTimeoutMs ?? RELAY_HELLO_TIMEOUT_SECONDS * 1000,
    pingIntervalMs: opts.pingIntervalMs ?? 30_000,
    forwardHighWaterBytes: opts.forwardHighWaterBytes ?? 4 * 1024 * 1024,
    forwardLowWaterBytes: opts.forwardLowWaterBytes ?? 1024 * 1024,
    pairBytesPerSecond: opts.pairBytesPerSecond ?? 16 * 1024 * 1024,
    pairFramesPerSecond: opts.pairFramesPerSecond ?? 2000,
    overBudgetGraceMs: opts.overBudgetGraceMs ?? 10_000,
    strikesBeforeClose: opts.strikesBeforeClose ?? 10,
    slowConsumerMs: opts.slowConsumerMs ?? 60_000,
    slowReaderPauseMs: opts.slowReaderPauseMs ?? 2000,
    turnReadBytes: opts.turnReadBytes ?? 256 * 1024,
    version: opts.version ?? readPackageVersion(),
    now: opts.now ?? Date.now,
    log:
      opts.log ??
      ((rec: Record<string, unknown>) => {
        process.stdout.write(JSON.stringify(rec) + '\n');
      }),
  };
}

export async function createRelay(opts: RelayOptions = {}): Promise<Relay> {
  const o = resolve(opts);
  const startedAt = o.now();
  const m = new Metrics();
  const rooms = new Map<string, Map<NodeID, Conn>>();
  const conns = new Set<Conn>();
  const perIp = new Map<string, { all: number; unjoined: number }>();
  let nextId = 1;
  let closing = false;
  registerMetrics(m, { conns, rooms });
  m.gauge('hearthnet_relay_uptime_seconds', 'Seconds since the relay started.', () =>
    Math.floor((o.now() - startedAt) / 1000),
  );

  const ctx: RelayCtx = {
    o,
    m,
    rooms,
    conns,
    log: (level, msg, fields = {}) => {
      try {
        o.log({ ts: new Date(o.now()).toISOString(), level, logger: 'relay', msg, ...fields });
      } catch {
        // a failing log sink must not take the relay down
      }
    },
    sendJson: (c, msg) => fwd.send(c, msg),
    reject: (c, code, reason, message, extra = {}) => reject(c, code, reason, message, extra),
    closeConn: (c, code, reason) => closeConn(c, code, reason),
    pauseReading: (c, reason) => {
      if (c.state === 'closed') return;
      c.pauseReasons.add(reason);
      c.ws.pause();
    },
    recentlyLeft: (bucket, node) => admission.recentlyLeft(bucket, node),
    resumeReading: (c, reason) => {
      c.pauseReasons.delete(reason);
      if (c.pauseReasons.size === 0 && c.state !== 'closed') c.ws.resume();
    },
  };
  const fwd = createForwarder(ctx);
  const admission = createRooms(ctx);
  const rejectLog = createRejectLog(ctx.log, o.now);

  const closeConn = (c: Conn, code: number, reason: string) => {
    if (c.ws.readyState === c.ws.OPEN || c.ws.readyState === c.ws.CONNECTING) {
      try {
        c.ws.close(code, reason.slice(0, 120));
      } catch {
        c.ws.terminate();
      }
    }
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
    if (extra.retry_after_ms !== undefined) err.retry_after_ms = Math.max(1, Math.ceil(extra.retry_after_ms));
    if (extra.to !== undefined) err.to = extra.to;
    fwd.send(c, err);
    let close = extra.close ?? c.state !== 'joined';
    if (!close && extra.strike !== false) {
      c.strikes++;
      if (c.strikes >= o.strikesBeforeClose) close = true;
    }
    rejectLog.note(c, { reason, code, closed: close });
    if (close) closeConn(c, RELAY_CLOSE_POLICY, reason);
  };

  /** Token bucket of `messagesPerSecond`; returns 0 when a token was taken, else ms until one is back. */
  const takeToken = (c: Conn): number => {
    const now = o.now();
    const rate = o.messagesPerSecond;
    let tokens = Math.min(rate, c.tokens + ((now - c.tokensAt) / 1000) * rate);
    let wait = 0;
    if (tokens >= 1) tokens -= 1;
    else wait = ((1 - tokens) / rate) * 1000;
    c.tokens = tokens;
    c.tokensAt = now;
    return wait;
  };

  const ipCount = (ip: string) => {
    let n = perIp.get(ip);
    if (!n) perIp.set(ip, (n = { all: 0, unjoined: 0 }));
    return n;
  };

  // ---- connection lifecycle ------------------------------------------------------------
  const onConnection = (ws: WebSocket, req: http.IncomingMessage) => {
    const ip = req.socket.remoteAddress ?? 'unknown';
    const t0 = o.now();
    const c: Conn = {
      id: nextId++,
      ws,
      ip,
      nonce: b64url(randomBytes(32)),
      state: 'challenged',
      nodeId: null,
      room: null,
      bucket: null,
      passBy: null,
      displayName: '',
      joinedAt: '',
      helloTimer: null,
      alive: true,
      tokens: o.messagesPerSecond,
      tokensAt: t0,
      offlineTokens: o.messagesPerSecond,
      offlineTokensAt: t0,
      byteTokens: Math.max(o.connectionBytesPerSecond, 2 * RELAY_FORWARD_MAX_BYTES),
      byteTokensAt: t0,
      strikes: 0,
      waitUntil: 0,
      ignoredWaits: 0,
      replaced: false,
      pending: 0,
      waitingSenders: new Set(),
      held: new Map(),
      heldBytes: 0,
      overSince: 0,
      pauseReasons: new Set(),
      turnBytes: -1,
      pairs: new Map(),
      refusals: new Map(),
    };
    conns.add(c);
    const n = ipCount(ip);
    n.all++;
    n.unjoined++;

    ws.on('pong', () => {
      c.alive = true;
    });
    ws.on('error', (err: Error & { code?: string }) => {
      // ws reports protocol violations (e.g. frames above maxPayload) here, then closes.
      const reason = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'oversized_frame' : 'protocol_error';
      m.inc('hearthnet_relay_rejects_total', { reason });
      ctx.log('warning', 'socket error', { reason, peer: shortId(c.nodeId) });
    });
    ws.on('close', () => onClose(c));
    ws.on('message', (data: RawData, isBinary: boolean) => {
      try {
        onMessage(c, data, isBinary);
      } catch {
        // Defensive: a bug triggered by one client closes that client, never the relay.
        m.inc('hearthnet_relay_rejects_total', { reason: 'internal' });
        ctx.log('error', 'internal error while handling a message', { peer: shortId(c.nodeId) });
        closeConn(c, 1011, 'internal error');
      }
    });

    if (closing) {
      closeConn(c, RELAY_CLOSE_GOING_AWAY, 'relay shutting down');
      return;
    }
    if (n.all > o.connectionsPerIp) {
      reject(c, 'capacity_exceeded', 'ip_limit', 'too many connections from this address', { close: true });
      return;
    }
    if (n.unjoined > o.unjoinedPerIp) {
      // the oldest unjoined socket of this address makes room: held sockets cannot lock out a
      // newcomer from the same address, which answers its challenge in milliseconds
      for (const old of conns) {
        if (old !== c && old.ip === ip && old.state === 'challenged') {
          reject(old, 'capacity_exceeded', 'unjoined_evicted', 'too many unjoined connections', {
            close: true,
          });
          break;
        }
      }
    }
    c.helloTimer = setTimeout(() => {
      c.helloTimer = null;
      if (c.state === 'challenged')
        reject(c, 'expired', 'hello_timeout', 'no hello in time', { close: true });
    }, o.helloTimeoutMs);
    fwd.send(c, { t: 'challenge', nonce: c.nonce, server_time: wallClockMs(o.now()) });
  };

  const onClose = (c: Conn) => {
    if (c.state === 'closed') return;
    const wasJoined = c.state === 'joined';
    c.state = 'closed';
    conns.delete(c);
    const n = ipCount(c.ip);
    n.all--;
    if (!wasJoined) n.unjoined--;
    if (n.all <= 0) perIp.delete(c.ip);
    if (c.helloTimer) clearTimeout(c.helloTimer);
    fwd.release(c);
    rejectLog.flush(c, true);
    if (wasJoined) admission.leave(c);
  };

  const onMessage = (c: Conn, data: RawData, isBinary: boolean) => {
    if (c.state === 'closed') return;
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    fwd.chargeTurn(c, buf.length);
    if (isBinary) return fwd.binary(c, buf);
    const limit = c.state === 'challenged' ? RELAY_HELLO_MAX_BYTES : RELAY_TEXT_MAX_BYTES;
    if (buf.length > limit) {
      const over = buf.length > RELAY_TEXT_MAX_BYTES ? RELAY_TEXT_MAX_BYTES : limit;
      reject(c, 'bad_request', 'oversized', `text message above ${over} bytes`);
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
      admission.hello(c, r);
      if ((c.state as Conn['state']) === 'joined') ipCount(c.ip).unjoined--;
      return;
    }
    switch (r.t) {
      case 'signal':
        return onSignal(c, r, buf.length);
      case 'revoke':
        return admission.revoke(c, r.revocation);
      case 'ping':
        return fwd.send(c, { t: 'pong', server_time: wallClockMs(o.now()) });
      case 'hello':
        return reject(c, 'bad_request', 'duplicate_hello', 'already joined');
      default:
        return reject(c, 'bad_request', 'unknown_type', 'unknown message type');
    }
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
    const target = rooms.get(c.bucket!)?.get(to);
    if (!target) {
      reject(c, 'forward_target_offline', 'signal_target_offline', 'target is not in this room', {
        to,
        strike: false,
      });
      return;
    }
    // Re-serialise so only {t, from, data} reaches the target; content is never inspected or logged.
    if (fwd.signal(c, target, { t: 'signal', from: c.nodeId, data: s.data }, bytes)) {
      m.inc('hearthnet_relay_messages_forwarded_total', { kind: 'signal' });
      m.inc('hearthnet_relay_signal_bytes_total', {}, bytes);
    }
  };

  // ---- HTTP and WebSocket --------------------------------------------------------------
  const healthz = () => ({
    ok: !closing,
    version: o.version,
    rooms: rooms.size,
    peers: m.get('hearthnet_relay_peers'),
    connections: conns.size,
    uptime_seconds: Math.floor((o.now() - startedAt) / 1000),
    server_time: wallClockMs(o.now()),
  });
  const tls = opts.tls && opts.tls.cert && opts.tls.key ? opts.tls : null;
  const server = createHttpServer({ o, tls, m, healthz, closing: () => closing });

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

  const sweep = () => {
    fwd.sweep();
    for (const c of conns) rejectLog.flush(c);
  };
  const sweepTimer = setInterval(sweep, Math.min(1000, Math.max(50, Math.floor(o.slowConsumerMs / 4))));
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
    admission.prune();
  }, o.pingIntervalMs);
  pingTimer.unref?.();

  await new Promise<void>((res, rej) => {
    const onErr = (e: Error) => rej(e);
    server.once('error', onErr);
    server.listen(o.port, o.host, () => {
      server.off('error', onErr);
      res();
    });
  });
  server.on('error', (e) => ctx.log('error', 'server error', { error: (e as Error).message }));

  const addr = server.address() as AddressInfo;
  const scheme = tls ? 'https' : 'http';
  const hostForUrl = addr.address.includes(':') ? `[${addr.address}]` : addr.address;
  const url = `${scheme}://${hostForUrl}:${addr.port}/`;
  const wsUrl = `${scheme === 'https' ? 'wss' : 'ws'}://${hostForUrl}:${addr.port}/ws`;
  ctx.log('info', 'listening', {
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
      admission.flush();
      for (const c of [...conns]) closeConn(c, RELAY_CLOSE_GOING_AWAY, 'relay shutting down');
      // Wait (bounded) for clean closes, then cut whatever is left.
      const deadline = Date.now() + 3000;
      while (conns.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      for (const c of [...conns]) {
        c.ws.terminate();
        onClose(c);
      }
      wss.close();
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections?.();
      });
      ctx.log('info', 'stopped', {});
    })();
    return closePromise;
  };

  return {
    url,
    wsUrl,
    host: addr.address,
    port: addr.port,
    metrics: m,
    stats: () => ({
      rooms: rooms.size,
      peers: m.get('hearthnet_relay_peers'),
      connections: conns.size,
      queued_bytes: fwd.queuedBytes(),
    }),
    close,
  };
}
