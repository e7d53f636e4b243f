/**
 * The relay's HTTP surface (core digest §8.2): static app, /models/, /config.json, /healthz,
 * /metrics, and the server itself with its slowloris defences (issue #18): a per-address socket
 * limit, a header deadline, and an idle timeout that closes a socket which says nothing.
 */
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Metrics } from '../engine/observability/metrics.js';
import { RELAY_SUBPROTOCOL } from '../engine/net/relay-wire.js';
import { serveApp, serveFolder } from './static.js';
import type { ResolvedOptions } from './types.js';

const SECURITY_HEADERS: [string, string][] = [
  ['Cross-Origin-Opener-Policy', 'same-origin'],
  ['Cross-Origin-Embedder-Policy', 'require-corp'],
  ['Cross-Origin-Resource-Policy', 'same-origin'],
  ['X-Content-Type-Options', 'nosniff'],
  ['Referrer-Policy', 'no-referrer'],
];

export interface HttpDeps {
  o: ResolvedOptions;
  tls: { cert: string | Buffer; key: string | Buffer } | null;
  m: Metrics;
  healthz: () => Record<string, unknown>;
  closing: () => boolean;
}

export function createHttpServer(deps: HttpDeps): http.Server {
  const { o, m } = deps;
  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
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
    if (pathname === '/healthz') return json(deps.closing() ? 503 : 200, deps.healthz());
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
        home_community: o.home.current(),
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
    handle(req, res).catch(() => {
      if (!res.headersSent) {
        res.statusCode = 500;
        res.end('internal error\n');
      } else res.destroy();
    });
  };

  const timeouts = {
    headersTimeout: o.headersTimeoutMs,
    requestTimeout: Math.max(o.headersTimeoutMs, 30_000),
    keepAliveTimeout: Math.min(5000, o.idleTimeoutMs),
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(o.headersTimeoutMs / 4))),
  };
  const server = deps.tls
    ? https.createServer({ cert: deps.tls.cert, key: deps.tls.key, ...timeouts }, onRequest)
    : http.createServer(timeouts, onRequest);
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    else socket.destroy();
  });

  // Sockets per address: counted from accept to close, HTTP and upgraded WebSocket alike.
  const sockets = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const ip = socket.remoteAddress ?? 'unknown';
    const n = (sockets.get(ip) ?? 0) + 1;
    if (n > o.socketsPerIp) {
      m.inc('hearthnet_relay_rejects_total', { reason: 'ip_socket_limit' });
      socket.destroy();
      return;
    }
    sockets.set(ip, n);
    // A peer that resets its TCP socket (ECONNRESET, EPIPE) must never take the relay down: after an
    // upgrade the HTTP server no longer listens for socket errors (ws does once it has the socket,
    // but a refused upgrade's 404/503 is written to a socket nobody else watches).
    socket.on('error', (e: NodeJS.ErrnoException) => {
      const code = e.code === 'ECONNRESET' || e.code === 'EPIPE' || e.code === 'ETIMEDOUT' ? e.code : 'other';
      m.inc('hearthnet_relay_socket_errors_total', { code });
      socket.destroy();
    });
    socket.once('close', () => {
      const k = (sockets.get(ip) ?? 1) - 1;
      if (k <= 0) sockets.delete(ip);
      else sockets.set(ip, k);
    });
    // Idle: a socket that says nothing for idleTimeoutMs is closed (ws clears this on upgrade;
    // WebSocket liveness is the hello timeout and the ping sweep).
    socket.setTimeout(o.idleTimeoutMs, () => {
      m.inc('hearthnet_relay_rejects_total', { reason: 'idle_timeout' });
      socket.destroy();
    });
  });
  return server;
}
