/**
 * EBKH test double (M30 digest §4.8): a real Node HTTP JSON-RPC 2.0 server with the five `hn.*`
 * methods, an in-memory claim table, its own Ed25519 key and CORS headers. It stores what it is
 * given (a hub, not a verifier) and has fault switches for the adapter's failure paths.
 * Listens on 127.0.0.1 only. Usage: `npx tsx tools/ebkh-double/server.ts [port]`, or `startEbkhDouble()`.
 * Control over HTTP (for browsers): POST /__control {"fault": ..., "page_size": n, "reset": true}.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { base64urlnopad } from '@scure/base';

export type EbkhFault =
  | null
  | 'down'
  | 'slow'
  | '500'
  | '401'
  | 'malformed_json'
  | 'bad_signature_record'
  | { fail_after_page: number };

interface Row {
  record: Record<string, any>;
  received: number;
}

export interface EbkhDouble {
  url: string;
  node_id: string;
  /** requests seen per method (retry counting) */
  calls: Record<string, number>;
  /** authorization headers seen */
  auth: string[];
  table: Map<string, Row>;
  fault: EbkhFault;
  pageSize: number;
  /** pull pages served since the last fault change (for `fail_after_page`) */
  pagesServed: number;
  slowMs: number;
  close(): Promise<void>;
}

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'POST, OPTIONS',
  'access-control-allow-headers': 'content-type, authorization',
};

function geo(o: unknown): [number, number] | null {
  const m = typeof o === 'string' ? /^geo:(-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?)/.exec(o) : null;
  return m ? [Number(m[1]), Number(m[2])] : null;
}

export async function startEbkhDouble(port = 0): Promise<EbkhDouble> {
  const seed = randomBytes(32);
  const node_id = `ed25519:${base64urlnopad.encode(ed25519.getPublicKey(seed))}`;
  const d: EbkhDouble = {
    url: '',
    node_id,
    calls: {},
    auth: [],
    table: new Map(),
    fault: null,
    pageSize: 2,
    pagesServed: 0,
    slowMs: 2000,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections?.();
        server.close(() => r());
      }),
  };

  const reply = (res: ServerResponse, status: number, body: string) => {
    res.writeHead(status, { 'content-type': 'application/json', ...CORS });
    res.end(body);
  };

  function call(method: string, p: Record<string, any>): unknown {
    switch (method) {
      case 'hn.identity':
        return { node_id, version: 'ebkh-double/1' };
      case 'hn.claims.push': {
        const claims = Array.isArray(p.claims) ? p.claims : [];
        return claims.map((c: Record<string, any>) => {
          const id = typeof c?.claim_id === 'string' ? c.claim_id : '';
          if (!id || typeof c.subject !== 'string')
            return { claim_id: id, status: 'rejected', reason: 'malformed' };
          if (d.table.has(id)) return { claim_id: id, status: 'duplicate' };
          d.table.set(id, { record: c, received: Date.now() });
          return { claim_id: id, status: 'stored' };
        });
      }
      case 'hn.claims.pull': {
        const f = d.fault;
        if (f && typeof f === 'object' && d.pagesServed >= f.fail_after_page) throw new Error('page fault');
        const subjects = new Set<string>(Array.isArray(p.subjects) ? p.subjects : []);
        const since = typeof p.since === 'string' ? Date.parse(p.since) : -Infinity;
        const rows = [...d.table.values()]
          .filter((r) => subjects.has(r.record.subject) && r.received >= since)
          .sort((a, b) => (a.record.claim_id < b.record.claim_id ? -1 : 1));
        const off = p.cursor ? Number(p.cursor) : 0;
        let claims = rows.slice(off, off + d.pageSize).map((r) => r.record);
        if (d.fault === 'bad_signature_record')
          claims = claims.map((c) => ({ ...c, object: `${String(c.object)} (edited at the hub)` }));
        d.pagesServed++;
        return { claims, next_cursor: off + d.pageSize < rows.length ? String(off + d.pageSize) : null };
      }
      case 'hn.entity.claims':
        return [...d.table.values()].filter((r) => r.record.subject === p.uri).map((r) => r.record);
      case 'hn.spatial.query': {
        const [minLon, minLat, maxLon, maxLat] = Array.isArray(p.bbox) ? p.bbox : [];
        return [...d.table.values()]
          .map((r) => r.record)
          .filter((c) => {
            const g = geo(c.object);
            return g && g[0] >= minLat && g[0] <= maxLat && g[1] >= minLon && g[1] <= maxLon;
          })
          .filter((c) => !p.predicate || c.predicate === p.predicate);
      }
      default:
        return undefined;
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    if (req.method === 'OPTIONS') return reply(res, 204, '');
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    if (req.url === '/__control') {
      const c = JSON.parse(text || '{}') as { fault?: EbkhFault; page_size?: number; reset?: boolean };
      if ('fault' in c) d.fault = c.fault ?? null;
      if (c.page_size) d.pageSize = c.page_size;
      if (c.reset) d.table.clear();
      d.pagesServed = 0;
      return reply(res, 200, JSON.stringify({ ok: true, claims: d.table.size }));
    }
    let msg: { id?: unknown; method?: string; params?: Record<string, any> };
    try {
      msg = JSON.parse(text);
    } catch {
      return reply(
        res,
        400,
        JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'parse error' } }),
      );
    }
    const method = String(msg.method);
    d.calls[method] = (d.calls[method] ?? 0) + 1;
    d.auth.push(String(req.headers.authorization ?? ''));
    if (d.fault === 'down') {
      req.socket.destroy();
      return;
    }
    if (d.fault === '500') return reply(res, 500, '{"error":"boom"}');
    if (d.fault === '401') return reply(res, 401, '{"error":"unauthorized"}');
    if (d.fault === 'slow') await new Promise((r) => setTimeout(r, d.slowMs));
    if (d.fault === 'malformed_json') return reply(res, 200, '{"jsonrpc":"2.0","result":');
    let result: unknown;
    try {
      result = call(method, msg.params ?? {});
    } catch {
      return reply(
        res,
        503,
        JSON.stringify({
          jsonrpc: '2.0',
          id: msg.id ?? null,
          error: { code: -32000, message: 'unavailable' },
        }),
      );
    }
    if (result === undefined)
      return reply(
        res,
        200,
        JSON.stringify({
          jsonrpc: '2.0',
          id: msg.id ?? null,
          error: { code: -32601, message: 'method not found' },
        }),
      );
    return reply(res, 200, JSON.stringify({ jsonrpc: '2.0', id: msg.id ?? null, result }));
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) reply(res, 500, '{}');
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  d.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/rpc`;
  return d;
}

if (process.argv[1] && /ebkh-double[/\\]server/.test(process.argv[1])) {
  void startEbkhDouble(Number(process.argv[2] ?? 0)).then((d) =>
    console.log(`ebkh double at ${d.url} (${d.node_id})`),
  );
}
