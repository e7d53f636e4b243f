/**
 * Harness protocol v1 server (conformance/README.md) around any Target, by default the in-process
 * engine target: dog-foods the `url` target and shows other implementations the wire shapes.
 *
 *   npx tsx conformance/harness/serve-engine.ts [--port 7311] [--peers 2] [--token-file <path>]
 *
 * Prints the URL; the admin token is written to the token file (mode 0600), never logged.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { RawPort, Target } from './target.js';

export interface HarnessServer {
  url: string;
  token: string;
  close(): Promise<void>;
}

export async function serveHarness(
  target: Target,
  o: { host?: string; port?: number; token?: string } = {},
): Promise<HarnessServer> {
  const token = o.token ?? randomBytes(32).toString('base64url');
  const authed = (req: IncomingMessage) => {
    const got = Buffer.from(String(req.headers.authorization ?? ''));
    const want = Buffer.from(`Bearer ${token}`);
    return got.length === want.length && timingSafeEqual(got, want);
  };
  const body = async (req: IncomingMessage): Promise<any> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const t = Buffer.concat(chunks).toString('utf8');
    return t ? JSON.parse(t) : {};
  };
  const send = (res: ServerResponse, status: number, v: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(v));
  };
  const peerOf = (v: unknown) => Number(v ?? 0) || 0;

  const server = createServer((req, res) => {
    void (async () => {
      if (!authed(req))
        return send(res, 401, { error: { code: 'unauthorized', message: 'admin token required' } });
      const u = new URL(req.url ?? '/', 'http://x');
      const route = `${req.method} ${u.pathname}`;
      const q = (k: string) => u.searchParams.get(k);
      try {
        switch (route) {
          case 'GET /harness/v1/info': {
            const i = await target.info();
            return send(res, 200, { ...i, node_id: i.peers[0] ?? null });
          }
          case 'POST /harness/v1/reset':
            await target.reset();
            return send(res, 200, { ok: true });
          case 'POST /harness/v1/call': {
            const b = await body(req);
            const r = await target.call(peerOf(b.peer), String(b.capability), b.input ?? {});
            return send(res, 200, 'error' in r ? r : { output: r.output, meta: {} });
          }
          case 'POST /harness/v1/vector': {
            if (!target.vector) break;
            const b = await body(req);
            return send(
              res,
              200,
              await target.vector(peerOf(b.peer), String(b.family), String(b.op), b.input),
            );
          }
          case 'POST /harness/v1/x08/token': {
            if (!target.x08Token) break;
            const b = await body(req);
            const r = await target.x08Token(peerOf(b.peer), {
              local: String(b.local ?? ''),
              purpose: String(b.purpose ?? ''),
              session_id: String(b.session_id ?? ''),
            });
            return send(res, 200, { token: r.token });
          }
          case 'GET /harness/v1/events/poll': {
            const peer = peerOf(q('peer'));
            const cursor = Number(q('cursor') ?? 0) || 0;
            const deadline = Date.now() + Math.min(10_000, Number(q('wait_ms') ?? 0) || 0);
            let r = await target.events(peer, cursor);
            while (!r.events.length && Date.now() < deadline) {
              await new Promise((s) => setTimeout(s, 50));
              r = await target.events(peer, cursor);
            }
            return send(res, 200, r);
          }
          case 'POST /harness/v1/link/open':
            if (!target.linkAll) break;
            await body(req); // {relay_url, room}: the in-process target links its peers in memory
            await target.linkAll();
            return send(res, 200, { ok: true });
          case 'GET /harness/v1/link/list':
            if (!target.links) break;
            return send(res, 200, { links: await target.links(peerOf(q('peer'))) });
          case 'POST /harness/v1/config': {
            if (!target.config) break;
            const b = await body(req);
            await target.config(peerOf(b.peer), b.modules ?? {});
            return send(res, 200, { ok: true });
          }
        }
        return send(res, 404, { error: { code: 'not_found', message: `no harness endpoint ${route}` } });
      } catch (e) {
        return send(res, 500, {
          error: { code: 'internal_error', message: String((e as Error)?.message ?? e) },
        });
      }
    })();
  });

  // raw_link and x08_accept: one WebSocket message = one link (or X08) message
  const wss = new WebSocketServer({ noServer: true });
  const bridge = (ws: WebSocket, port: RawPort) => {
    port.onMessage((m) => ws.readyState === ws.OPEN && ws.send(m));
    port.onClose((r) => ws.close(1000, String(r).slice(0, 120)));
    ws.on('message', (d: Buffer) => void port.send(new Uint8Array(d)).catch(() => undefined));
    ws.on('close', () => port.close('socket closed'));
  };
  server.on('upgrade', (req, socket, head) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const q = (k: string) => u.searchParams.get(k) ?? '';
    const open: (() => Promise<RawPort>) | null = !authed(req)
      ? null
      : u.pathname === '/harness/v1/raw' && target.rawLink
        ? () => target.rawLink!(peerOf(q('peer')))
        : u.pathname === '/harness/v1/x08' && target.x08Accept
          ? () =>
              target.x08Accept!(peerOf(q('peer')), {
                purpose: q('purpose'),
                token: q('token'),
                local: q('from'),
              })
          : null;
    if (!open) {
      socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      open().then(
        (port) => bridge(ws, port),
        () => ws.close(1011, 'open failed'),
      );
    });
  });

  await new Promise<void>((r) => server.listen(o.port ?? 0, o.host ?? '127.0.0.1', r));
  const a = server.address() as AddressInfo;
  return {
    url: `http://${a.address}:${a.port}/`,
    token,
    async close() {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

async function main() {
  const argv = process.argv.slice(2);
  const arg = (k: string) => {
    const i = argv.indexOf(`--${k}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const { EngineTarget } = await import('./targets/engine.js');
  const target = new EngineTarget({ peers: Number(arg('peers') ?? 2) });
  const s = await serveHarness(target, {
    port: Number(arg('port') ?? 7311),
    host: arg('host') ?? '127.0.0.1',
  });
  const file = arg('token-file') ?? 'conformance-harness.token';
  writeFileSync(file, s.token + '\n', { mode: 0o600 });
  console.log(`harness v1 at ${s.url} (admin token in ${file})`);
  const stop = () => void s.close().then(() => target.close().then(() => process.exit(0)));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (process.argv[1] && /serve-engine(\.ts)?$/.test(process.argv[1])) void main();
