/**
 * M26 ShardStore (digest B4/B6/B7): shard ads learnt from the event log (`distributed_llm.shard.advertised` /
 * `.withdrawn`, gossiped like every event), health from `shard.list` polls, and the candidate filter of B6.
 * Ads from non-members, from an author other than the advertised host, or expiring more than 24 h ahead are
 * ignored.
 */
import type { NodeID, TrustLevel } from '../core/types.js';
import { EV, type ShardDescriptor, type ShardHealth } from './types.js';
import { keyOf } from './plan.js';

export interface AdEvent {
  event_type: string;
  author: string;
  data: Record<string, unknown>;
}

const MAX_AHEAD_S = 24 * 3600;

export class ShardStore {
  private readonly ads = new Map<string, ShardDescriptor>();
  private readonly health = new Map<string, { h: ShardHealth; at: number }>();

  constructor(
    private readonly levelOf: (n: NodeID) => TrustLevel | 'revoked' | null,
    private readonly now: () => number = Date.now,
  ) {}

  /** Feed one event (from `events.list` at start and `events.subscribe` afterwards). */
  ingest(ev: AdEvent): void {
    const lvl = this.levelOf(ev.author as NodeID);
    if (lvl === null || lvl === 'revoked' || lvl === 'unknown') return;
    const d = ev.data;
    if (ev.event_type === EV.advertised) {
      if (d.host !== ev.author || typeof d.shard_id !== 'string') return;
      const exp = Number(d.expires_at);
      if (!Number.isFinite(exp) || exp > this.now() / 1000 + MAX_AHEAD_S) return;
      const r = d.layer_range;
      if (
        !Array.isArray(r) ||
        r.length !== 2 ||
        !r.every((x) => Number.isInteger(x) && x >= 0) ||
        r[0] > r[1]
      )
        return;
      const key = keyOf({ shard_id: d.shard_id, host: ev.author });
      const old = this.ads.get(key);
      if (!old || old.advertised_at <= Number(d.advertised_at))
        this.ads.set(key, d as unknown as ShardDescriptor);
    } else if (ev.event_type === EV.withdrawn) {
      if (typeof d.shard_id !== 'string') return;
      const key = keyOf({ shard_id: d.shard_id, host: ev.author });
      this.ads.delete(key);
      this.health.delete(key);
    }
  }

  /** Live (unexpired) ads, optionally of one model. */
  list(model_id?: string): ShardDescriptor[] {
    const nowS = this.now() / 1000;
    return [...this.ads.values()].filter(
      (a) => a.expires_at > nowS && (!model_id || a.model_id === model_id),
    );
  }

  setHealth(h: ShardHealth): void {
    this.health.set(keyOf(h), { h, at: this.now() });
  }

  /** Health no older than `maxAgeMs`. */
  healthOf(key: string, maxAgeMs: number): ShardHealth | undefined {
    const e = this.health.get(key);
    return e && this.now() - e.at <= maxAgeMs ? e.h : undefined;
  }

  /** Drop a host's ads that its own `shard.list` no longer names. */
  forgetMissing(host: string, present: Set<string>): void {
    for (const [k, a] of this.ads) if (a.host === host && !present.has(a.shard_id)) this.ads.delete(k);
  }

  /** Replica count per layer of a model (other hosts' live ads), for "serve automatically". */
  coverage(model_id: string, weights: string, total: number, exceptHost?: string): number[] {
    const c = new Array<number>(total).fill(0);
    for (const a of this.list(model_id))
      if (a.weights_sha256 === weights && a.host !== exceptHost)
        for (let l = a.layer_range[0]; l <= a.layer_range[1] && l < total; l++) c[l]!++;
    return c;
  }
}
