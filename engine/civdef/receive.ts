/**
 * M31 service, layer 2: receipt of peers' civdef events (§4.3): alert envelopes and stubs, cancels, acks,
 * revocations, registrations and witnessed checkpoint heads; idempotent, checked before any write.
 */
import { canonicalString } from '../core/canonical.js';
import { HnError, toHnError } from '../core/errors.js';
import type { NodeID } from '../core/types.js';
import type { EventEnvelope } from '../events/log.js';
import type { Tx } from '../store/types.js';
import { verifyAck, type Ack } from './ack.js';
import {
  alertBodyOf,
  alertSha,
  isoS,
  normaliseDraft,
  sevOrder,
  stubOf,
  verifyAlertSig,
  verifyAttestation,
  verifyCancel,
  type Alert,
  type AlertEnvelope,
  type AlertStub,
  type Cancel,
} from './alert.js';
import { SEVERITIES } from './regions/nrw.js';
import {
  checkCertShape,
  checkChain,
  checkRevocation,
  parseTime,
  type RoleCertificate,
  type Revocation,
} from './role.js';
import { matchesTarget, segmentPrefix } from './target.js';
import { STORES, hopsOf, isObj, type AlertRecord } from './records.js';
import { CivDefCore } from './core.js';

const S = STORES;

export class CivDefReceiver extends CivDefCore {
  protected async storeCerts(certs: RoleCertificate[], audit: boolean): Promise<void> {
    const fresh = certs.filter((c) => !this.certs.has(c.cert_id));
    if (!fresh.length) return;
    const writes = async (tx: Tx) => {
      for (const c of fresh) await tx.put(S.certs, c);
    };
    if (audit) await this.appendAudit('role_registered', null, this.d.self, fresh[0], writes, [S.certs]);
    else await this.d.db.transaction([S.certs], 'readwrite', writes);
    for (const c of fresh) this.certs.set(c.cert_id, c);
  }

  protected async applyRevocation(
    rev: Revocation,
    cert: RoleCertificate | undefined,
    hops: NodeID[] = [],
  ): Promise<void> {
    const affected = (await this.d.db.getAll<AlertRecord>(S.alerts)).filter(
      (a) => a.envelope?.alert.publisher_cert === rev.cert_id || a.stub?.publisher_cert === rev.cert_id,
    );
    await this.appendAudit(
      'role_revoked',
      null,
      rev.revoked_by,
      rev,
      async (tx) => {
        await tx.put(S.revocations, rev);
        if (cert && !this.certs.has(cert.cert_id)) await tx.put(S.certs, cert);
        for (const a of affected) await tx.put(S.alerts, { ...a, publisher_revoked: true });
      },
      [S.revocations, S.certs, S.alerts],
    );
    this.revs.set(rev.cert_id, rev);
    if (cert) this.certs.set(cert.cert_id, cert);
    this.emit({ kind: 'revoked', revocation: rev, cert: cert ?? null, hops });
  }

  protected attestationValid(alert: Alert, cert: RoleCertificate, at: number): boolean {
    const a = alert.issuer_attestation;
    if (!a || !verifyAttestation(alert)) return false;
    if (this.roots().has(a.by)) return true;
    if (!cert.issuer_chain.includes(a.by)) return false;
    const byCert = a.cert_id
      ? this.certs.get(a.cert_id)
      : [...this.certs.values()].find((c) => c.holder === a.by && c.scopes.includes('alert.cosign'));
    if (!byCert || byCert.holder !== a.by || !byCert.scopes.includes('alert.cosign')) return false;
    try {
      checkChain(byCert, at, this.ctx(byCert));
      return true;
    } catch {
      return false;
    }
  }

  protected async panic(alert_id: string): Promise<void> {
    const now = this.now();
    if (this.loraSent.has(alert_id) || now - this.loraLast < 60_000) return;
    if (!this.d.has?.('experimental.lora.panic.send')) return;
    try {
      if (this.d.settings().lora_panic_signal === false) return;
      const st = await this.d.call!('experimental.lora.status', {});
      if (st?.state !== 'ready') return; // no stick: nothing to send
      this.loraSent.add(alert_id);
      this.loraLast = now;
      await this.d.call!('experimental.lora.panic.send', {});
    } catch (e) {
      this.d.log?.warn('civdef lora panic failed', { code: toHnError(e).code });
    }
  }

  protected bundleOf(cert: RoleCertificate): RoleCertificate[] {
    const out = [cert];
    for (const link of cert.issuer_chain) {
      const c = [...this.certs.values()].find((x) => x.holder === link && x.scopes.includes('role.issue'));
      if (c) out.push(c);
    }
    return out;
  }

  protected matches(a: Alert | AlertStub): boolean {
    return matchesTarget(a.target, {
      home_region: this.d.settings().home_region,
      position: this.position,
      roles: this.myActiveCerts().map((c) => c.role),
    });
  }

  protected recordOf(
    env: AlertEnvelope,
    f: { foreign_role: boolean; uncosigned: boolean; matched: boolean },
  ): AlertRecord {
    const a = env.alert;
    const restricted = a.target.roles.length > 0;
    return {
      alert_id: a.alert_id,
      envelope: env,
      stub: restricted ? stubOf(a) : null,
      region: a.target.region,
      sev: sevOrder(a.severity),
      severity: a.severity,
      published_at: a.published_at,
      expires_at: a.expires_at,
      publisher: a.publisher,
      restricted,
      state: 'active',
      cancel: null,
      foreign_role: f.foreign_role,
      uncosigned: f.uncosigned,
      publisher_revoked: false,
      matched: f.matched,
    };
  }

  /** A loud (OS) notification: matched, not foreign, cosigned, not expired, an actual alert ≥ warning. */
  shouldNotify(r: AlertRecord): boolean {
    return (
      r.matched &&
      !r.foreign_role &&
      !r.uncosigned &&
      !r.publisher_revoked &&
      r.state === 'active' &&
      parseTime(r.expires_at) > this.now() &&
      r.sev >= sevOrder('warning') &&
      (r.envelope?.alert.status ?? 'actual') === 'actual'
    );
  }

  // ---------------------------------------------------------------- receipt
  /** A peer's civdef event (event-log gossip). */
  ingest(ev: EventEnvelope): void {
    this.bg(() => this.ingestNow(ev));
  }

  async ingestNow(ev: EventEnvelope): Promise<void> {
    const d = ev.data as Record<string, any>;
    switch (ev.event_type) {
      case 'civdef.alert.published':
        if (d.envelope) await this.receiveEnvelope(d.envelope, ev.author as NodeID);
        else if (d.stub) await this.receiveStub(d.stub);
        return;
      case 'civdef.alert.forwarded':
        // a bridge of this community re-announced an alert from another one (§4.3); hops are unsigned
        if (d.envelope) await this.receiveEnvelope(d.envelope, ev.author as NodeID);
        return;
      case 'civdef.alert.cancelled':
        return this.receiveCancel(d.cancel, d.by_cert_bundle ?? [], hopsOf(d.federation_hops) ?? []);
      case 'civdef.alert.acked':
        return this.receiveAck(d.ack);
      case 'civdef.role.revoked':
        return this.receiveRevocation(d.revocation, d.cert, hopsOf(d.federation_hops) ?? []);
      case 'civdef.role.registered':
        return this.receiveRegistered(d.cert, d.chain_certs ?? []);
      case 'civdef.audit.checkpointed':
        return this.receiveCheckpointed(d, ev.author as NodeID);
    }
  }

  protected drop(metric: string, why: string, id?: string) {
    this.d.metrics?.inc('hearthnet_civdef_dropped_total', { reason: metric });
    this.d.log?.warn('civdef alert dropped', { reason: why, alert_id: id });
  }

  /** §4.3 receipt of a public alert envelope (idempotent on alert_id). Returns the outcome. */
  async receiveEnvelope(
    envIn: unknown,
    from: NodeID | null = null,
  ): Promise<'stored' | 'duplicate' | 'dropped'> {
    if (!isObj(envIn) || !isObj(envIn.alert)) return (this.drop('malformed', 'envelope shape'), 'dropped');
    const env = envIn as unknown as AlertEnvelope;
    const a = env.alert;
    const now = this.now();
    if (from && !this.inboundLimiter.take(from, now))
      return (this.drop('rate', 'inbound alerts per peer'), 'dropped');
    let sha: string;
    try {
      sha = alertSha(a);
    } catch {
      return (this.drop('malformed', 'not canonical'), 'dropped');
    }
    const existing = await this.d.db.get<AlertRecord>(S.alerts, a.alert_id);
    if (existing?.envelope) {
      if (alertSha(existing.envelope.alert) === sha) return 'duplicate';
      this.d.log?.warn('civdef security: same alert_id, different bytes', { alert_id: a.alert_id });
      return (this.drop('conflict', 'alert_id conflict', a.alert_id), 'dropped');
    }
    if (existing?.stub && existing.stub.alert_sha !== sha)
      return (this.drop('conflict', 'stub sha mismatch', a.alert_id), 'dropped');
    // shape check of the body, then the publisher signature
    try {
      const n = normaliseDraft(
        Object.fromEntries(
          Object.entries(alertBodyOf(a)).filter(
            ([k]) =>
              !['publisher', 'publisher_role', 'publisher_cert', 'published_at', 'expires_at'].includes(k),
          ),
        ),
        parseTime(a.published_at),
      );
      if (canonicalString(n.target) !== canonicalString(a.target)) throw new Error('target not normal');
    } catch {
      return (this.drop('malformed', 'alert shape', a.alert_id), 'dropped');
    }
    if (!verifyAlertSig(a)) return (this.drop('signature', 'bad publisher signature', a.alert_id), 'dropped');
    const bundle = Array.isArray(env.cert_bundle) ? env.cert_bundle : [];
    const cert = bundle.find((c) => c?.cert_id === a.publisher_cert) ?? this.certs.get(a.publisher_cert);
    if (!cert || cert.holder !== a.publisher || cert.role !== a.publisher_role)
      return (this.drop('cert', 'no publisher cert', a.alert_id), 'dropped');
    const at = parseTime(a.published_at);
    let foreign = false;
    try {
      checkChain(
        cert,
        at,
        this.ctx(
          cert,
          bundle.filter((c) => c !== cert),
        ),
      );
    } catch (e) {
      const code = toHnError(e).code;
      if (code === 'civdef_role_revoked') {
        await this.appendAudit('dropped_revoked', a.alert_id, a.publisher, a);
        await this.d.append('civdef.alert.dropped.revoked', {
          alert_id: a.alert_id,
          cert_id: cert.cert_id,
          publisher: a.publisher,
        });
        this.drop('revoked', 'publisher cert revoked', a.alert_id);
        return 'dropped';
      }
      if (code === 'civdef_cert_invalid')
        return (this.drop('cert', 'cert invalid at published_at', a.alert_id), 'dropped');
      foreign = true;
    }
    let uncosigned = false;
    if (
      !foreign &&
      this.d.settings().require_issuer_cosign.includes(a.severity) &&
      !cert.scopes.includes('cosign.waived')
    )
      uncosigned = !this.attestationValidWith(a, cert, at, bundle);
    const hops = Array.isArray(env.federation_hops) ? env.federation_hops.slice(0, 8) : [];
    const mine: AlertEnvelope = {
      alert: a,
      cert_bundle: bundle,
      federation_hops: hops,
      received_at: isoS(now),
      received_via: hops.length ? 'federation' : 'bus',
    };
    const rec = this.recordOf(mine, { foreign_role: foreign, uncosigned, matched: this.matches(a) });
    await this.d.db.put(S.alerts, rec);
    if (foreign)
      await this.d.append('civdef.alert.foreign_role', {
        alert_id: a.alert_id,
        publisher: a.publisher,
        role: a.publisher_role,
      });
    this.emit({ kind: 'alert', record: rec, notify: this.shouldNotify(rec) });
    if (
      !foreign &&
      !uncosigned &&
      sevOrder(a.severity) >= sevOrder('emergency') &&
      a.status === 'actual' &&
      parseTime(a.expires_at) > now &&
      a.target.channels.includes('lora')
    )
      void this.panic(a.alert_id);
    return 'stored';
  }

  protected attestationValidWith(
    a: Alert,
    cert: RoleCertificate,
    at: number,
    bundle: RoleCertificate[],
  ): boolean {
    const att = a.issuer_attestation;
    if (!att || !verifyAttestation(a)) return false;
    if (this.roots().has(att.by)) return true;
    if (!cert.issuer_chain.includes(att.by)) return false;
    const byCert = [...bundle, ...this.certs.values()].find(
      (c) => c.holder === att.by && c.scopes.includes('alert.cosign'),
    );
    if (!byCert) return false;
    try {
      checkChain(byCert, at, this.ctx(byCert, bundle));
      return true;
    } catch {
      return false;
    }
  }

  protected async receiveStub(s: AlertStub): Promise<void> {
    if (!isObj(s) || typeof s.alert_id !== 'string') return;
    if (await this.d.db.get(S.alerts, s.alert_id)) return;
    let target;
    try {
      target = (await import('./target.js')).parseTarget(s.target);
    } catch {
      return this.drop('malformed', 'stub target');
    }
    const stub = { ...s, target };
    const rec: AlertRecord = {
      alert_id: s.alert_id,
      envelope: null,
      stub,
      region: target.region,
      sev: SEVERITIES.indexOf(s.severity),
      severity: s.severity,
      published_at: s.published_at,
      expires_at: s.expires_at,
      publisher: s.publisher,
      restricted: true,
      state: 'active',
      cancel: null,
      foreign_role: false,
      uncosigned: false,
      publisher_revoked: this.revs.has(s.publisher_cert),
      matched: this.matches(stub),
    };
    await this.d.db.put(S.alerts, rec);
    // holders of a matching role pull the full alert from the publisher (publisher-side filtering)
    const holder = this.myActiveCerts().some((c) => target.roles.some((p) => segmentPrefix(p, c.role)));
    if (holder && this.d.call) {
      try {
        const got = await this.d.call(
          'experimental.civdef.alert.get',
          { alert_id: s.alert_id },
          { peer: s.publisher },
        );
        if (got?.envelope) await this.receiveEnvelope(got.envelope, null);
      } catch (e) {
        this.d.log?.info('civdef pull failed', { code: toHnError(e).code, alert_id: s.alert_id });
      }
    }
  }

  protected async receiveCancel(c: Cancel, bundle: RoleCertificate[], hops: NodeID[] = []): Promise<void> {
    if (!isObj(c) || !verifyCancel(c)) return this.drop('cancel', 'bad cancel signature');
    const rec = await this.d.db.get<AlertRecord>(S.alerts, c.alert_id);
    if (!rec || rec.state === 'cancelled') return;
    if (c.by !== rec.publisher) {
      const cert = [...bundle, ...this.certs.values()].find((x) => x?.cert_id === c.by_cert);
      if (!cert || cert.holder !== c.by) return this.drop('cancel', 'cancel cert unknown');
      try {
        this.checkCancelScope(cert, rec, parseTime(c.cancelled_at), bundle);
      } catch {
        return this.drop('cancel', 'cancel out of scope');
      }
    }
    const next = { ...rec, state: 'cancelled' as const, cancel: c };
    await this.d.db.put(S.alerts, next);
    this.emit({ kind: 'cancelled', record: next, by_cert_bundle: Array.isArray(bundle) ? bundle : [], hops });
  }

  protected async receiveAck(a: Ack): Promise<void> {
    if (!isObj(a) || !verifyAck(a)) return this.drop('ack', 'bad ack signature');
    if (!this.inboundAckLimiter.take(`${a.alert_id}|${a.acker}`, this.now()))
      return this.drop('ack_rate', 'inbound ack rate');
    const rec = await this.d.db.get<AlertRecord>(S.alerts, a.alert_id);
    if (!rec) return;
    await this.d.db.put(S.acks, {
      ...a,
      k: `${a.alert_id}|${a.acker}|${a.acked_at}|${a.signature.slice(-12)}`,
    });
  }

  protected async receiveRevocation(r: Revocation, certIn: unknown, hops: NodeID[] = []): Promise<void> {
    if (!isObj(r) || this.revs.has(r.cert_id)) return;
    let cert: RoleCertificate | undefined = this.certs.get(r.cert_id);
    if (!cert && certIn) {
      try {
        cert = checkCertShape(certIn);
        if (cert.cert_id !== r.cert_id) return;
      } catch {
        return;
      }
    }
    try {
      checkRevocation(r, cert, this.roots());
    } catch {
      return this.drop('revocation', 'invalid revocation');
    }
    await this.applyRevocation(r, cert, hops);
  }

  protected async receiveRegistered(certIn: unknown, chain: unknown[]): Promise<void> {
    try {
      const cert = checkCertShape(certIn);
      const cs = (Array.isArray(chain) ? chain : []).map(checkCertShape);
      checkChain(cert, this.now(), this.ctx(cert, cs));
      await this.storeCerts([cert, ...cs], false);
    } catch {
      /* a cert that does not verify under local roots is simply not stored */
    }
  }

  // ---------------------------------------------------------------- cancel
  protected checkCancelScope(
    cert: RoleCertificate,
    rec: AlertRecord,
    at: number,
    bundle: RoleCertificate[] = [],
  ): void {
    checkChain(cert, at, this.ctx(cert, bundle));
    if (cert.holder === rec.publisher) return;
    const adapter = this.adapterFor(cert.region)!;
    const mine = adapter.roleSpec(cert.role)!;
    const pubRole = rec.envelope?.alert.publisher_role;
    const theirs = pubRole ? adapter.roleSpec(pubRole) : null;
    const ok =
      cert.scopes.includes('alert.cancel') &&
      segmentPrefix(cert.region, rec.region) &&
      theirs !== null &&
      mine.rank >= theirs.rank &&
      (mine.org === theirs.org || mine.may_cosign_cross_org);
    if (!ok) throw new HnError('civdef_cert_out_of_scope', 'not allowed to cancel this alert');
  }
}
