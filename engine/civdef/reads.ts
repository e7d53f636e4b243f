/**
 * M31 service, layer 3: reads — alert.list, alert.get, alert.acks and the alert.subscribe stream, with
 * role-restricted content shown only to holders of a matching active cert (§4.3, §4.7).
 */
import { HnError } from '../core/errors.js';
import type { NodeID } from '../core/types.js';
import { type Ack } from './ack.js';
import { SEVERITIES } from './regions/nrw.js';
import { certState, parseTime } from './role.js';
import { isRegionCode, parseBBox, segmentPrefix } from './target.js';
import { STORES, bad, isObj, type AlertRecord } from './records.js';
import { CivDefReceiver } from './receive.js';

const S = STORES;

export class CivDefReads extends CivDefReceiver {
  // ---------------------------------------------------------------- reads
  protected view(r: AlertRecord, full: boolean) {
    const expired = parseTime(r.expires_at) <= this.now();
    return {
      alert_id: r.alert_id,
      envelope: full ? r.envelope : null,
      stub: r.stub ?? (r.envelope ? null : null),
      state: r.state === 'cancelled' ? 'cancelled' : expired ? 'expired' : 'active',
      cancel: r.cancel,
      foreign_role: r.foreign_role,
      uncosigned: r.uncosigned,
      publisher_revoked: r.publisher_revoked,
      matched: r.matched,
      severity: r.severity,
      region: r.region,
      published_at: r.published_at,
      exercise: r.envelope ? r.envelope.alert.status !== 'actual' : false,
    };
  }

  /** may `caller` see the full content of a (role-restricted) alert? */
  protected mayRead(r: AlertRecord, caller: NodeID, isLocal: boolean): boolean {
    if (!r.restricted) return true;
    if (r.publisher === caller) return true;
    const now = this.now();
    const holder = isLocal ? this.d.self : caller;
    return [...this.certs.values()].some(
      (c) =>
        c.holder === holder &&
        r.stub!.target.roles.some((p) => segmentPrefix(p, c.role)) &&
        certState(c, now, this.ctx(c)) === 'active',
    );
  }

  async list(input: unknown, caller: NodeID = this.d.self, isLocal = true) {
    const q = (isObj(input) ? input : {}) as Record<string, any>;
    const activeOnly = q.active_only !== false;
    const min = q.severity_min === undefined ? 0 : SEVERITIES.indexOf(q.severity_min);
    if (min < 0) bad('severity_min');
    if (q.region !== undefined && !isRegionCode(q.region))
      throw new HnError('civdef_alert_target_invalid', 'bad region');
    const limit = q.limit === undefined ? 50 : q.limit;
    if (!Number.isInteger(limit) || limit < 1 || limit > 200) bad('limit 1..200');
    const all = await this.d.db.getAll<AlertRecord>(S.alerts);
    const alerts = all
      .filter((r) => r.sev >= min)
      .filter((r) =>
        q.region ? segmentPrefix(q.region, r.region) || segmentPrefix(r.region, q.region) : true,
      )
      .map((r) => this.view(r, r.envelope !== null && this.mayRead(r, caller, isLocal)))
      .filter((v) => !activeOnly || v.state === 'active')
      .sort(
        (a, b) =>
          SEVERITIES.indexOf(b.severity) - SEVERITIES.indexOf(a.severity) ||
          b.published_at.localeCompare(a.published_at),
      )
      .slice(0, limit);
    return { alerts };
  }

  async get(input: unknown, caller: NodeID = this.d.self, isLocal = true) {
    if (!isObj(input) || typeof input.alert_id !== 'string') bad('alert_id required');
    const r = await this.d.db.get<AlertRecord>(S.alerts, (input as { alert_id: string }).alert_id);
    if (!r) throw new HnError('civdef_alert_not_found', 'unknown alert');
    if (r.restricted && !this.mayRead(r, caller, isLocal))
      throw new HnError('civdef_cert_out_of_scope', 'role-restricted alert');
    return this.view(r, true);
  }

  async acks(input: unknown, caller: NodeID = this.d.self, isLocal = true) {
    if (!isObj(input) || typeof input.alert_id !== 'string') bad('alert_id required');
    const rec = await this.d.db.get<AlertRecord>(S.alerts, (input as { alert_id: string }).alert_id);
    if (!rec) throw new HnError('civdef_alert_not_found', 'unknown alert');
    const rows = await this.d.db.getAll<Ack & { k: string }>(S.acks, {
      index: 'by_alert',
      key: rec.alert_id,
    });
    const seeNotes = isLocal
      ? rec.publisher === this.d.self || (rec.restricted && this.mayRead(rec, caller, true))
      : rec.publisher === caller;
    return {
      acks: rows
        .map(({ k: _k, ...a }) => (seeNotes ? a : (({ note: _n, ...r }) => r)(a)))
        .sort((a, b) => a.acked_at.localeCompare(b.acked_at)),
    };
  }

  // ---------------------------------------------------------------- streams
  async *subscribe(input: unknown, caller: NodeID, isLocal: boolean, signal?: AbortSignal) {
    const q = (isObj(input) ? input : {}) as Record<string, any>;
    const f = (isObj(q.filter) ? q.filter : {}) as Record<string, any>;
    if (f.region !== undefined && !isRegionCode(f.region))
      throw new HnError('civdef_alert_target_invalid', 'bad region');
    const bbox = f.bbox === undefined ? null : parseBBox(f.bbox);
    const min = f.severity_min === undefined ? 0 : SEVERITIES.indexOf(f.severity_min);
    if (min < 0) bad('severity_min');
    const n = this.streams.get(caller) ?? 0;
    if (n >= 4) throw new HnError('capacity_exceeded', 'at most 4 subscriptions per caller');
    this.streams.set(caller, n + 1);
    const queue: Record<string, unknown>[] = [];
    let wake: (() => void) | null = null;
    const match = (r: AlertRecord) =>
      r.sev >= min &&
      (!f.region || segmentPrefix(f.region, r.region) || segmentPrefix(r.region, f.region)) &&
      (!bbox ||
        !r.envelope?.alert.target.bbox ||
        !(r.envelope.alert.target.bbox[2] < bbox[0] || r.envelope.alert.target.bbox[0] > bbox[2])) &&
      (!Array.isArray(f.roles) ||
        f.roles.length === 0 ||
        (r.stub?.target.roles ?? []).some((p: string) =>
          f.roles.some((x: string) => segmentPrefix(p, x) || segmentPrefix(x, p)),
        ));
    const off = this.onNotice((nt) => {
      if (nt.kind === 'revoked') {
        // revocations are public and unfiltered: a bridge carries them to the other community (§4.3)
        const { revocation, cert, hops } = nt;
        queue.push({ type: 'revoked', revocation, cert, federation_hops: hops });
        return wake?.();
      }
      if (!match(nt.record)) return;
      if (nt.kind === 'alert')
        queue.push(
          this.mayRead(nt.record, caller, isLocal) && nt.record.envelope
            ? { type: 'alert', envelope: nt.record.envelope }
            : { type: 'stub', stub: nt.record.stub },
        );
      else
        queue.push({
          type: 'cancelled',
          alert_id: nt.record.alert_id,
          cancel: nt.record.cancel,
          by_cert_bundle: nt.by_cert_bundle,
          federation_hops: nt.hops,
        });
      wake?.();
    });
    try {
      if (q.replay_active !== false) {
        for (const r of await this.d.db.getAll<AlertRecord>(S.alerts))
          if (r.state === 'active' && parseTime(r.expires_at) > this.now() && match(r))
            yield {
              event: 'alert',
              data:
                this.mayRead(r, caller, isLocal) && r.envelope
                  ? { type: 'alert', envelope: r.envelope }
                  : { type: 'stub', stub: r.stub },
            };
      }
      while (!signal?.aborted) {
        while (queue.length) {
          const fr = queue.shift()!;
          yield { event: fr.type as string, data: fr };
        }
        await new Promise<void>((res) => {
          wake = res;
          signal?.addEventListener('abort', () => res(), { once: true });
        });
        wake = null;
      }
    } finally {
      off();
      this.streams.set(caller, (this.streams.get(caller) ?? 1) - 1);
    }
  }
}
