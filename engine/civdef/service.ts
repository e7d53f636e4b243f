/**
 * M31 civil-defence service: the eleven capabilities of seed §2.6 and the ten events of §3.6 over
 * explicit dependencies (storage, signer, event append, bus, clock), so the same code runs as a module
 * of the node and in tests. Every check of a call runs before its first write (nothing stored on a
 * rejection); each state change and its audit entry are written in one storage transaction.
 */
import { canonicalString } from '../core/canonical.js';
import { HnError, toHnError } from '../core/errors.js';
import { ACK_STATUSES, signAck, type AckStatus } from './ack.js';
import {
  alertBodyOf,
  isoS,
  normaliseDraft,
  sevOrder,
  stubOf,
  text,
  type Alert,
  type AlertBody,
  type AlertEnvelope,
  type Cancel,
} from './alert.js';
import {
  certState,
  checkCertShape,
  checkChain,
  parseTime,
  signRevocation,
  type RoleCertificate,
} from './role.js';
import { bboxInside, segmentPrefix } from './target.js';
import { STORES, bad, isObj, type AlertRecord } from './records.js';
import { CivDefForwarder } from './forward.js';

export { STORES, CIVDEF_SCHEMA } from './records.js';
export type { AlertRecord, CivDefDeps, CivDefSettings, Notice } from './records.js';
const S = STORES;

export class CivDefService extends CivDefForwarder {
  // ---------------------------------------------------------------- certs
  async register(input: unknown): Promise<Record<string, unknown>> {
    if (!isObj(input)) bad('input must be an object');
    const inp = input as Record<string, unknown>;
    const cert = checkCertShape(inp.cert);
    const chainIn = inp.chain_certs ?? [];
    if (!Array.isArray(chainIn) || chainIn.length > 4) bad('chain_certs: ≤4 certificates');
    const chain = (chainIn as unknown[]).map(checkCertShape);
    if (!this.registerLimiter.take('register', this.now()))
      throw new HnError('rate_limited', 'register: 20 per minute');
    checkChain(cert, this.now(), this.ctx(cert, chain));
    const out = {
      cert_id: cert.cert_id,
      state: 'active',
      holder: cert.holder,
      role: cert.role,
      region: cert.region,
      expires_at: cert.expires_at,
    };
    if (this.certs.has(cert.cert_id)) return out;
    await this.storeCerts([cert, ...chain], true);
    await this.d.append('civdef.role.registered', { cert, chain_certs: chain } as never);
    return out;
  }

  listRoles(input: unknown): Record<string, unknown>[] {
    const q = (isObj(input) ? input : {}) as Record<string, any>;
    const now = this.now();
    return [...this.certs.values()]
      .filter((c) => (q.holder ? c.holder === q.holder : true))
      .filter((c) => (q.role_prefix ? segmentPrefix(q.role_prefix, c.role) : true))
      .filter((c) => (q.region_prefix ? segmentPrefix(q.region_prefix, c.region) : true))
      .map((c) => ({
        cert: c,
        state: certState(c, now, this.ctx(c)),
        revocation: this.revs.get(c.cert_id) ?? null,
      }))
      .filter((x) => q.include_inactive === true || x.state === 'active')
      .sort((a, b) => a.cert.cert_id.localeCompare(b.cert.cert_id));
  }

  async revoke(input: unknown): Promise<{ cert_id: string; revoked_at: string }> {
    if (!isObj(input)) bad('input must be an object');
    const { cert_id } = input as Record<string, unknown>;
    const reason = text((input as Record<string, unknown>).reason, 'reason', 1, 280);
    const cert = this.certs.get(cert_id as string);
    if (!cert) throw new HnError('not_found', 'unknown cert');
    const existing = this.revs.get(cert.cert_id);
    if (existing) return { cert_id: cert.cert_id, revoked_at: existing.revoked_at };
    const allowed = new Set<string>([cert.issuer, ...cert.issuer_chain, ...this.roots()]);
    if (!allowed.has(this.d.self))
      throw new HnError('civdef_cert_out_of_scope', 'not the issuer, an ancestor or a root');
    const rev = signRevocation(this.d.sign, {
      cert_id: cert.cert_id,
      revoked_by: this.d.self,
      revoked_at: isoS(this.now()),
      reason,
    });
    await this.applyRevocation(rev, cert);
    await this.d.append('civdef.role.revoked', { revocation: rev, cert } as never);
    return { cert_id: cert.cert_id, revoked_at: rev.revoked_at };
  }

  // ---------------------------------------------------------------- publish
  /** The unsigned body the publisher will sign, for a cosigner to sign first (§8.1). */
  prepare(input: unknown): AlertBody {
    const draft = normaliseDraft(input, this.now());
    const cert = this.certs.get(draft.cert_id);
    if (!cert) throw new HnError('civdef_cert_invalid', 'unknown cert');
    const { issuer_attestation: _a, alert_id, ...rest } = draft;
    return {
      ...rest,
      alert_id: alert_id ?? this.ulid(),
      published_at: isoS(this.now()),
      publisher: this.d.self,
      publisher_role: cert.role,
      publisher_cert: cert.cert_id,
    };
  }

  async publish(input: unknown): Promise<{
    alert_id: string;
    published_at: string;
    channels_used: string[];
    channels_skipped: string[];
  }> {
    const now = this.now();
    // 1. shape
    const draft = normaliseDraft(input, now);
    const publishedIn = (input as Record<string, unknown>).published_at;
    if (publishedIn !== undefined) {
      if (
        typeof publishedIn !== 'string' ||
        !/Z$/.test(publishedIn) ||
        Math.abs(parseTime(publishedIn) - now) > 600_000
      )
        bad('published_at must be within 10 minutes of now');
    }
    // 2. degraded audit
    await this.verifyLastLink();
    if (this.degraded)
      throw new HnError('civdef_audit_chain_broken', `audit chain broken at ${this.degraded.first_bad_seq}`);
    // 3. cert
    const cert = this.certs.get(draft.cert_id);
    if (!cert) throw new HnError('civdef_cert_invalid', 'unknown cert');
    if (cert.holder !== this.d.self)
      throw new HnError('civdef_cert_not_owned', 'cert holder is another node');
    // 4. chain
    const ctx = this.ctx(cert);
    checkChain(cert, now, ctx);
    const adapter = ctx.adapter!;
    // 5. target within the cert's region and bounds
    if (!segmentPrefix(cert.region, draft.target.region))
      throw new HnError('civdef_alert_target_invalid', 'target region outside the cert region');
    const info = adapter.regionInfo(draft.target.region);
    if (!info) throw new HnError('civdef_alert_target_invalid', 'unknown region');
    if (draft.target.bbox && info.bounds && !bboxInside(draft.target.bbox, info.bounds))
      throw new HnError('civdef_alert_target_invalid', 'bbox outside the region bounds');
    // 6. scope
    const spec = adapter.roleSpec(cert.role)!;
    if (!cert.scopes.includes('alert.publish'))
      throw new HnError('civdef_cert_out_of_scope', 'cert lacks alert.publish');
    if (spec.max_severity === null || sevOrder(draft.severity) > sevOrder(spec.max_severity))
      throw new HnError('civdef_cert_out_of_scope', `severity above the role cap ${spec.max_severity}`);
    // body (signed bytes) — fixed now so that an attestation can be checked
    const body: AlertBody = {
      ...(({ issuer_attestation: _a, alert_id: _i, ...r }) => r)(draft),
      alert_id: draft.alert_id ?? this.ulid(),
      published_at: (publishedIn as string | undefined) ?? isoS(now),
      publisher: this.d.self,
      publisher_role: cert.role,
      publisher_cert: cert.cert_id,
    };
    const signed = this.d.sign(body as never) as unknown as Alert;
    const alert: Alert = draft.issuer_attestation
      ? { ...signed, issuer_attestation: draft.issuer_attestation }
      : signed;
    const needCosign = this.d.settings().require_issuer_cosign.includes(draft.severity);
    if (needCosign && !cert.scopes.includes('cosign.waived') && !this.attestationValid(alert, cert, now))
      throw new HnError('civdef_cert_out_of_scope', 'issuer cosignature required');
    // 7. evidence claim (M30 through the bus)
    if (draft.evidence_claim && this.d.has?.('experimental.evidence.claim.get')) {
      try {
        await this.d.call!('experimental.evidence.claim.get', { claim_id: draft.evidence_claim });
      } catch {
        throw new HnError('claim_not_found', 'evidence_claim not found');
      }
    }
    // 9. idempotence on alert_id (before the rate limit: a retry is not a new publish)
    const existing = await this.d.db.get<AlertRecord>(S.alerts, body.alert_id);
    const channels = this.channelsOf(alert);
    if (existing) {
      const prev = existing.envelope?.alert;
      const same =
        prev &&
        canonicalString({ ...alertBodyOf(prev), published_at: '' }) ===
          canonicalString({ ...alertBodyOf(alert), published_at: '' });
      if (!same) bad('alert_id exists with different content');
      return { alert_id: prev!.alert_id, published_at: prev!.published_at, ...channels };
    }
    // 8. rate limit
    if (!this.publishLimiter.take('publish', now))
      throw new HnError('rate_limited', '10 publishes per minute');
    const envelope: AlertEnvelope = {
      alert,
      cert_bundle: this.bundleOf(cert),
      federation_hops: [],
      received_at: isoS(now),
      received_via: 'bus',
    };
    const rec = this.recordOf(envelope, {
      foreign_role: false,
      uncosigned: false,
      matched: this.matches(alert),
    });
    // 10. audit before distribution
    await this.appendAudit('published', alert.alert_id, this.d.self, alert, (tx) => tx.put(S.alerts, rec), [
      S.alerts,
    ]);
    // 11. event + local delivery
    await this.d.append(
      'civdef.alert.published',
      rec.restricted ? { stub: stubOf(alert) } : ({ envelope } as never),
    );
    this.emit({ kind: 'alert', record: rec, notify: this.shouldNotify(rec) });
    // 12. mirror into M30 (through the bus only) and record it
    if (this.d.settings().mirror_to_evidence && this.d.has?.('experimental.evidence.claim.assert')) {
      try {
        const c = await this.d.call!('experimental.evidence.claim.assert', {
          subject: alert.target.region,
          predicate: 'civdef_alert',
          object: alert.alert_id,
        });
        await this.appendAudit('mirrored', alert.alert_id, this.d.self, {
          alert_id: alert.alert_id,
          claim_id: c.claim_id,
        });
      } catch (e) {
        this.d.log?.warn('civdef mirror to evidence failed', {
          code: toHnError(e).code,
          alert_id: alert.alert_id,
        });
      }
    }
    // 13. LoRa panic signal
    if (channels.channels_used.includes('lora')) void this.panic(alert.alert_id);
    return { alert_id: alert.alert_id, published_at: alert.published_at, ...channels };
  }

  private channelsOf(a: Alert): { channels_used: string[]; channels_skipped: string[] } {
    const used: string[] = [];
    const skipped: string[] = [];
    for (const ch of a.target.channels) {
      const ok =
        ch === 'local' ||
        ch === 'push' ||
        (ch === 'lora' && sevOrder(a.severity) >= sevOrder('emergency') && a.status === 'actual') ||
        (ch === 'federation' && this.d.settings().federation_forward);
      (ok ? used : skipped).push(ch);
    }
    return { channels_used: used, channels_skipped: skipped };
  }

  async cancel(input: unknown): Promise<{ alert_id: string; cancelled_at: string }> {
    if (!isObj(input)) bad('input must be an object');
    const inp = input as Record<string, unknown>;
    const reason = text(inp.reason, 'reason', 1, 280);
    if (typeof inp.alert_id !== 'string') bad('alert_id required');
    if (typeof inp.cert_id !== 'string') bad('cert_id required');
    const rec = await this.d.db.get<AlertRecord>(S.alerts, inp.alert_id as string);
    if (!rec) throw new HnError('civdef_alert_not_found', 'unknown alert');
    if (rec.cancel) return { alert_id: rec.alert_id, cancelled_at: rec.cancel.cancelled_at };
    const cert = this.certs.get(inp.cert_id as string);
    if (!cert) throw new HnError('civdef_cert_invalid', 'unknown cert');
    if (cert.holder !== this.d.self)
      throw new HnError('civdef_cert_not_owned', 'cert holder is another node');
    this.checkCancelScope(cert, rec, this.now());
    const c = this.d.sign({
      alert_id: rec.alert_id,
      reason,
      cancelled_at: isoS(this.now()),
      by: this.d.self,
      by_cert: cert.cert_id,
    }) as unknown as Cancel;
    const next = { ...rec, state: 'cancelled' as const, cancel: c };
    await this.appendAudit('cancelled', rec.alert_id, this.d.self, c, (tx) => tx.put(S.alerts, next), [
      S.alerts,
    ]);
    await this.d.append('civdef.alert.cancelled', {
      cancel: c,
      by_cert_bundle: this.bundleOf(cert),
    } as never);
    this.emit({ kind: 'cancelled', record: next, by_cert_bundle: this.bundleOf(cert), hops: [] });
    return { alert_id: rec.alert_id, cancelled_at: c.cancelled_at };
  }

  // ---------------------------------------------------------------- acks
  async ack(input: unknown) {
    if (!isObj(input)) bad('input must be an object');
    const inp = input as Record<string, unknown>;
    if (typeof inp.alert_id !== 'string') bad('alert_id required');
    if (!(ACK_STATUSES as readonly string[]).includes(inp.status as string))
      bad('status must be an AckStatus');
    const note = inp.note === undefined || inp.note === '' ? '' : text(inp.note, 'note', 1, 280, true);
    const rec = await this.d.db.get<AlertRecord>(S.alerts, inp.alert_id as string);
    if (!rec) throw new HnError('civdef_alert_not_found', 'unknown alert');
    const now = this.now();
    if (!rec.restricted) {
      if (!this.d.settings().allow_public_ack)
        throw new HnError('civdef_cert_out_of_scope', 'public_ack_disabled');
    } else {
      let cert: RoleCertificate | undefined;
      if (inp.cert_id !== undefined) {
        cert = this.certs.get(inp.cert_id as string);
        if (!cert) throw new HnError('civdef_cert_invalid', 'unknown cert');
        if (cert.holder !== this.d.self)
          throw new HnError('civdef_cert_not_owned', 'cert holder is another node');
        checkChain(cert, now, this.ctx(cert));
      } else
        cert = this.myActiveCerts().find((c) => rec.stub!.target.roles.some((p) => segmentPrefix(p, c.role)));
      if (!cert || !rec.stub!.target.roles.some((p) => segmentPrefix(p, cert!.role)))
        throw new HnError('civdef_cert_out_of_scope', 'no matching role');
    }
    if (!this.ackLimiter.take(`${rec.alert_id}|${this.d.self}`, now))
      throw new HnError('civdef_ack_rate_limited', 'CIVDEF_ACK_MAX_PER_MINUTE_PER_NODE');
    const ack = signAck(this.d.sign, {
      alert_id: rec.alert_id,
      acker: this.d.self,
      acked_at: isoS(now),
      status: inp.status as AckStatus,
      note,
    });
    const row = { ...ack, k: `${ack.alert_id}|${ack.acker}|${ack.acked_at}|${ack.signature.slice(-12)}` };
    await this.appendAudit('acked', rec.alert_id, this.d.self, ack, (tx) => tx.put(S.acks, row), [S.acks]);
    const { note: _n, ...noNote } = ack;
    await this.d.append('civdef.alert.acked', { ack: rec.restricted ? noNote : ack } as never);
    return { alert_id: rec.alert_id, acked_at: ack.acked_at, status: ack.status };
  }
}
