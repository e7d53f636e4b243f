/**
 * EBKH sync (digest §4.8): one run at a time, pull our subjects' claims (verified, then stored with
 * the EBKH host as their source), push our own claims not yet acknowledged, pin the EBKH node id on
 * first contact, and end with `evidence.ebkh.synced` or `evidence.ebkh.sync_partial`. An unreachable
 * endpoint makes the report partial (`ebkh_unavailable`); it never throws past the report.
 */
import { HnError, type ErrorCode } from '../core/errors.js';
import type { NodeID } from '../core/types.js';
import { isoSeconds, type ClaimRecord } from './claim.js';
import { HttpEbkhAdapter, type EbkhAdapter } from './ebkh_adapter.js';
import { bad, isPlain, obj } from './input.js';
import type { EvidenceSettings } from './query.js';
import { S, type EvidenceStore } from './store.js';

export interface SyncReport {
  direction: 'pull' | 'push' | 'bidi';
  started_at: string;
  finished_at: string;
  endpoint_host: string;
  ebkh_node_id: string | null;
  pulled: number;
  pushed: number;
  duplicates: number;
  rejected: { claim_id: string; code: ErrorCode }[];
  partial: boolean;
  error: { code: 'ebkh_unavailable'; detail: string } | null;
}

/** EBKH transport options (tests shorten the retry waits) */
export interface EbkhOptions {
  fetch?: typeof fetch;
  timeoutMs?: number;
  retryDelaysMs?: number[];
  adapter?: EbkhAdapter;
}

export interface EbkhSyncDeps {
  self: NodeID;
  store: EvidenceStore;
  now(): number;
  settings(): EvidenceSettings;
  /** the bearer token, kept in the module's own store (never in the exportable config) */
  token(): Promise<string | null>;
  append(type: string, data: Record<string, unknown>): Promise<unknown>;
  /** run a store write in the service's write queue */
  serial<T>(fn: () => Promise<T>): Promise<T>;
  /** §3.3 verification with the receive-side rules */
  acceptClaim(v: unknown): Promise<ClaimRecord>;
  countRejected(code: ErrorCode): void;
  options?: EbkhOptions;
}

const TOKEN_KEY = 'token';

export class EbkhSync {
  private syncing: Promise<SyncReport> | null = null;

  constructor(private readonly d: EbkhSyncDeps) {}

  /** Store (or clear) the EBKH bearer token in the module's own store. */
  async setToken(token: string | null): Promise<void> {
    if (token !== null && (typeof token !== 'string' || !/^[\x21-\x7e]{1,512}$/.test(token)))
      bad('token must be 1..512 printable ASCII characters');
    if (token === null) await this.d.store.db.delete(S.sync, TOKEN_KEY);
    else await this.d.store.putKv(S.sync, TOKEN_KEY, token);
  }
  async storedToken(): Promise<string | null> {
    return (await this.d.store.getKv<string>(S.sync, TOKEN_KEY)) ?? null;
  }
  /** The last report for the configured endpoint (null before the first sync). */
  async lastReport(): Promise<SyncReport | null> {
    const s = this.d.settings();
    if (!s.ebkh_endpoint) return null;
    let host: string;
    try {
      host = new URL(s.ebkh_endpoint).host;
    } catch {
      return null;
    }
    return (await this.d.store.getKv<SyncReport>(S.sync, `${host}|last_report`)) ?? null;
  }

  async sync(input: unknown = {}): Promise<SyncReport> {
    const i = obj(input ?? {});
    const direction = (i.direction ?? 'bidi') as SyncReport['direction'];
    if (!['pull', 'push', 'bidi'].includes(direction)) bad('direction must be pull, push or bidi');
    const s = this.d.settings();
    if (!s.ebkh_endpoint && !this.d.options?.adapter)
      throw new HnError('ebkh_unavailable', 'no EBKH endpoint is configured');
    // only one sync at a time: concurrent callers share the result
    if (!this.syncing)
      this.syncing = this.run(direction).finally(() => {
        this.syncing = null;
      });
    return this.syncing;
  }

  private async adapter(): Promise<{ a: EbkhAdapter; host: string }> {
    const s = this.d.settings();
    const o = this.d.options;
    if (o?.adapter) return { a: o.adapter, host: 'adapter' };
    const a = new HttpEbkhAdapter({
      endpoint: s.ebkh_endpoint!,
      token: s.ebkh_token ?? (await this.d.token()),
      fetch: o?.fetch,
      timeoutMs: o?.timeoutMs,
      retryDelaysMs: o?.retryDelaysMs,
    });
    return { a, host: a.host };
  }

  private async run(direction: SyncReport['direction']): Promise<SyncReport> {
    const { a, host } = await this.adapter();
    const store = this.d.store;
    const rep: SyncReport = {
      direction,
      started_at: isoSeconds(this.d.now()),
      finished_at: '',
      endpoint_host: host,
      ebkh_node_id: null,
      pulled: 0,
      pushed: 0,
      duplicates: 0,
      rejected: [],
      partial: false,
      error: null,
    };
    const fail = (e: unknown) => {
      if (!(e instanceof HnError) || e.code !== 'ebkh_unavailable') throw e;
      rep.partial = true;
      rep.error = { code: 'ebkh_unavailable', detail: String(e.details?.detail ?? e.message) };
    };
    const syncKey = (k: string) => `${host}|${k}`;
    try {
      const id = await a.identity();
      const pinned = await store.getKv<string>(S.sync, syncKey('node_id'));
      if (pinned && pinned !== id.node_id) {
        rep.partial = true;
        rep.error = { code: 'ebkh_unavailable', detail: 'EBKH node id changed since first contact' };
      } else {
        if (!pinned) await store.putKv(S.sync, syncKey('node_id'), id.node_id);
        rep.ebkh_node_id = id.node_id;
        if (direction !== 'push') await this.pull(a, rep, syncKey).catch(fail);
        if (direction !== 'pull' && !rep.partial) await this.push(a, rep, syncKey).catch(fail);
      }
    } catch (e) {
      fail(e);
    }
    rep.finished_at = isoSeconds(this.d.now());
    const { rejected, ...summary } = rep;
    await store.putKv(S.sync, syncKey('last_report'), rep);
    await this.d.append(rep.partial ? 'evidence.ebkh.sync_partial' : 'evidence.ebkh.synced', {
      ...summary,
      rejected_count: rejected.length,
    });
    return rep;
  }

  private async pull(a: EbkhAdapter, rep: SyncReport, key: (k: string) => string) {
    const store = this.d.store;
    const since = (await store.getKv<string>(S.sync, key('last_pull'))) ?? null;
    const started = rep.started_at;
    const subjects = await store.subjects();
    for (let b = 0; b < subjects.length; b += 50) {
      const batch = subjects.slice(b, b + 50);
      let cursor: string | null = null;
      do {
        const page = await a.pullSubjects(batch, since, cursor);
        for (const rec of page.claims) {
          try {
            const r = await this.d.serial(() => this.d.acceptClaim(rec));
            const stored = await this.d.serial(() => store.putClaim(r, `ebkh:${rep.endpoint_host}`));
            if (stored) rep.pulled++;
            else rep.duplicates++;
          } catch (e) {
            const id = isPlain(rec) && typeof rec.claim_id === 'string' ? rec.claim_id.slice(0, 64) : '';
            rep.rejected.push({ claim_id: id, code: 'claim_signature_invalid' });
            this.d.countRejected(e instanceof HnError ? e.code : 'bad_request');
          }
        }
        cursor = page.next_cursor;
      } while (cursor);
    }
    await store.putKv(S.sync, key('last_pull'), started);
  }

  private async push(a: EbkhAdapter, rep: SyncReport, key: (k: string) => string) {
    const store = this.d.store;
    const acked = new Set((await store.getKv<string[]>(S.sync, key('pushed'))) ?? []);
    const mine = (await store.claimsBy(this.d.self)).filter((r) => !acked.has(r.claim_id));
    mine.sort((x, y) => (x.claim_id < y.claim_id ? -1 : 1));
    for (let b = 0; b < mine.length; b += 100) {
      const batch = mine.slice(b, b + 100);
      const res = await a.pushClaims(batch);
      for (const r of res) {
        if (!batch.some((x) => x.claim_id === r.claim_id)) continue;
        if (r.status === 'stored') rep.pushed++;
        else if (r.status === 'duplicate') rep.duplicates++;
        if (r.status !== 'rejected') acked.add(r.claim_id);
      }
      await store.putKv(S.sync, key('pushed'), [...acked].sort());
    }
  }
}
