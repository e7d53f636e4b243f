/**
 * M30 EBKH adapter (digest §4.8): HTTP JSON-RPC 2.0 to an external EBKH hub, through `fetch`.
 * Bearer token (scope `evidence-sync`), 10 s AbortController timeout, two retries (1 s, 3 s) on
 * network errors, 5xx and 429 (honouring Retry-After); other 4xx are not retried.
 * The real EBKH method names are unknown (digest §8 Q7): the table below maps ours onto theirs.
 */
import { HnError } from '../core/errors.js';
import type { NodeID } from '../core/types.js';

export const EBKH_METHODS = {
  identity: 'hn.identity',
  pushClaims: 'hn.claims.push',
  pullSubjects: 'hn.claims.pull',
  pullEntity: 'hn.entity.claims',
  querySpatial: 'hn.spatial.query',
} as const;
export const EBKH_TOKEN_SCOPE = 'evidence-sync';
export const EBKH_PUSH_MAX = 100;
export const EBKH_PULL_SUBJECTS_MAX = 50;

export interface PushResult {
  claim_id: string;
  status: 'stored' | 'duplicate' | 'rejected';
  reason?: string;
}
export interface EbkhAdapter {
  identity(): Promise<{ node_id: NodeID; version: string }>;
  pushClaims(r: unknown[]): Promise<PushResult[]>;
  pullSubjects(
    subjects: string[],
    since: string | null,
    cursor: string | null,
  ): Promise<{ claims: unknown[]; next_cursor: string | null }>;
  pullEntity(uri: string): Promise<unknown[]>;
  querySpatial(bbox: [number, number, number, number], predicate?: string): Promise<unknown[]>;
}

export interface HttpEbkhOptions {
  endpoint: string;
  token?: string | null;
  fetch?: typeof fetch;
  timeoutMs?: number;
  /** waits before retry 1 and 2 (default 1000, 3000 ms) */
  retryDelaysMs?: number[];
  sleep?: (ms: number) => Promise<void>;
}

/** A transport failure (network, timeout, HTTP status, malformed JSON-RPC): `ebkh_unavailable`. */
const unavailable = (detail: string): never => {
  throw new HnError('ebkh_unavailable', `EBKH endpoint unreachable: ${detail}`, { details: { detail } });
};

export class HttpEbkhAdapter implements EbkhAdapter {
  private nextId = 1;
  constructor(private o: HttpEbkhOptions) {}

  get host(): string {
    try {
      return new URL(this.o.endpoint).host;
    } catch {
      return '';
    }
  }

  private async once(
    method: string,
    params: unknown,
  ): Promise<{ retry: boolean; wait?: number; value?: unknown; error?: string }> {
    const f = this.o.fetch ?? globalThis.fetch;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), this.o.timeoutMs ?? 10_000);
    try {
      const res = await f(this.o.endpoint, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(this.o.token ? { authorization: `Bearer ${this.o.token}` } : {}),
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: this.nextId++, method, params }),
        signal: ac.signal,
      });
      if (res.status >= 500 || res.status === 429) {
        const ra = Number(res.headers.get('retry-after'));
        return {
          retry: true,
          wait: Number.isFinite(ra) && ra >= 0 ? ra * 1000 : undefined,
          error: `http ${res.status}`,
        };
      }
      if (!res.ok) return { retry: false, error: `http ${res.status}` };
      let body: unknown;
      try {
        body = await res.json();
      } catch {
        return { retry: false, error: 'malformed JSON' };
      }
      if (typeof body !== 'object' || body === null || (body as { jsonrpc?: unknown }).jsonrpc !== '2.0')
        return { retry: false, error: 'malformed JSON-RPC response' };
      const b = body as { result?: unknown; error?: { code?: unknown; message?: unknown } };
      if (b.error) return { retry: false, error: `rpc error ${String(b.error.code)}` };
      if (!('result' in b)) return { retry: false, error: 'malformed JSON-RPC response' };
      return { retry: false, value: b.result };
    } catch (e) {
      return {
        retry: true,
        error: ac.signal.aborted ? 'timeout' : `network: ${(e as Error)?.name ?? 'error'}`,
      };
    } finally {
      clearTimeout(timer);
    }
  }

  async rpc(method: string, params: unknown): Promise<unknown> {
    const delays = this.o.retryDelaysMs ?? [1000, 3000];
    const sleep = this.o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    let last = 'unknown';
    for (let attempt = 0; attempt <= delays.length; attempt++) {
      const r = await this.once(method, params);
      if (r.error === undefined) return r.value;
      last = r.error;
      if (!r.retry || attempt === delays.length) break;
      await sleep(r.wait ?? delays[attempt]!);
    }
    return unavailable(last);
  }

  async identity() {
    const r = (await this.rpc(EBKH_METHODS.identity, {})) as { node_id?: unknown; version?: unknown };
    if (!r || typeof r.node_id !== 'string') return unavailable('malformed identity');
    return { node_id: r.node_id as NodeID, version: String(r.version ?? '') };
  }
  async pushClaims(records: unknown[]) {
    if (records.length > EBKH_PUSH_MAX) throw new HnError('bad_request', 'at most 100 claims per push');
    const r = await this.rpc(EBKH_METHODS.pushClaims, { claims: records });
    if (!Array.isArray(r)) return unavailable('malformed push result');
    return r as PushResult[];
  }
  async pullSubjects(subjects: string[], since: string | null, cursor: string | null) {
    if (subjects.length > EBKH_PULL_SUBJECTS_MAX)
      throw new HnError('bad_request', 'at most 50 subjects per pull');
    const r = (await this.rpc(EBKH_METHODS.pullSubjects, { subjects, since, cursor })) as {
      claims?: unknown;
      next_cursor?: unknown;
    };
    if (!r || !Array.isArray(r.claims)) return unavailable('malformed pull result');
    return { claims: r.claims, next_cursor: typeof r.next_cursor === 'string' ? r.next_cursor : null };
  }
  async pullEntity(uri: string) {
    const r = await this.rpc(EBKH_METHODS.pullEntity, { uri });
    if (!Array.isArray(r)) return unavailable('malformed entity result');
    return r;
  }
  async querySpatial(bbox: [number, number, number, number], predicate?: string) {
    const r = await this.rpc(EBKH_METHODS.querySpatial, { bbox, ...(predicate ? { predicate } : {}) });
    if (!Array.isArray(r)) return unavailable('malformed spatial result');
    return r;
  }
}
