/**
 * M31 service, layer 4: bridge forwarding (§4.3). A bridge node in two communities stands in for M14
 * federation; these are engine actions of the bridge's side in the destination community, not
 * capabilities. Alerts, cancels and revocations cross the same way: the rules of §4.3 (federation_forward
 * on, the bridge not yet in the unsigned hops, fewer than 8 hops), the receiver's checks in full before
 * any write (a tampered or unauthorized cancel or revocation is refused with its seed error and nothing
 * is stored), the bridge appended to the hops without re-signing, audit `forwarded` and the event that
 * peers of this community ingest.
 */
import { canonical } from '../core/canonical.js';
import { HnError } from '../core/errors.js';
import { sha256Hex } from '../core/hash.js';
import type { NodeID } from '../core/types.js';
import { alertSha, verifyCancel, type AlertEnvelope, type Cancel } from './alert.js';
import { checkCertShape, checkRevocation, parseTime, type RoleCertificate, type Revocation } from './role.js';
import { segmentPrefix } from './target.js';
import { STORES, hopsOf, isObj, type AlertRecord } from './records.js';
import { CivDefReads } from './reads.js';

const S = STORES;
export type Forwarded = { forwarded: boolean; reason?: string };

export class CivDefForwarder extends CivDefReads {
  private notForwarded(reason: string): Forwarded {
    this.d.log?.info('civdef bridge: not forwarded', { reason });
    return { forwarded: false, reason };
  }

  /** The §4.3 hop rules shared by alerts, cancels and revocations; a reason to stop, or null. */
  private hopRule(hops: NodeID[] | null): string | null {
    if (!this.d.settings().federation_forward) return 'federation_forward off';
    if (hops === null) return 'malformed';
    if (hops.includes(this.d.self)) return 'loop';
    if (hops.length >= 8) return 'too many hops';
    return null;
  }

  /**
   * Bridge forwarding (§4.3; a bridge node in two communities stands in for M14 federation). An engine
   * action of the bridge's side in the destination community, not a capability: `envIn` is an envelope
   * this operator's node received in another community. Forwarded only if `federation_forward` is on,
   * `federation` is a channel, the alert is public, this side's home region overlaps the target, the
   * publisher is not revoked, the alert not expired, this node not yet in the hops and hops < 8, and the
   * envelope passes the receiver's checks here. Appends itself to the hops (no re-signing), writes audit
   * `forwarded` and emits `civdef.alert.forwarded`.
   */
  async forwardIn(envIn: unknown, to_community: string): Promise<{ forwarded: boolean; reason?: string }> {
    const no = (reason: string) => {
      this.d.log?.info('civdef bridge: not forwarded', { reason });
      return { forwarded: false, reason };
    };
    const s = this.d.settings();
    if (!s.federation_forward) return no('federation_forward off');
    if (!isObj(envIn) || !isObj(envIn.alert) || !isObj(envIn.alert.target)) return no('malformed');
    const env = envIn as unknown as AlertEnvelope;
    const a = env.alert;
    const { channels, roles, region } = a.target;
    if (!Array.isArray(channels) || !channels.includes('federation')) return no('no federation channel');
    if (!Array.isArray(roles) || roles.length > 0) return no('role-restricted');
    const home = s.home_region;
    if (!home || typeof region !== 'string' || !(segmentPrefix(home, region) || segmentPrefix(region, home)))
      return no('regions do not overlap');
    if (this.revs.has(a.publisher_cert)) return no('publisher revoked');
    if (typeof a.expires_at !== 'string' || parseTime(a.expires_at) <= this.now()) return no('expired');
    const hops = Array.isArray(env.federation_hops) ? env.federation_hops : [];
    if (hops.includes(this.d.self)) return no('loop');
    if (hops.length >= 8) return no('too many hops');
    if (await this.d.db.get(S.alerts, a.alert_id)) return no('already here');
    const fwd: AlertEnvelope = { ...env, federation_hops: [...hops, this.d.self] };
    const got = await this.receiveEnvelope(fwd, null);
    if (got !== 'stored') return no(`not accepted: ${got}`);
    const rec = { alert_id: a.alert_id, alert_sha: alertSha(a), to_community, hops: fwd.federation_hops };
    await this.appendAudit('forwarded', a.alert_id, this.d.self, rec);
    await this.d.append('civdef.alert.forwarded', { ...rec, envelope: fwd } as never);
    return { forwarded: true };
  }

  /**
   * A cancel seen in the other community (a subscribe frame `{type:"cancelled", cancel, by_cert_bundle,
   * federation_hops}`). Verified like a received cancel (§4.6), signature first: a broken signature →
   * `civdef_cert_invalid`; a canceller who is not the publisher needs a cert in the bundle or the store
   * (else `civdef_cert_invalid`) held by `by` (else `civdef_cert_not_owned`) that passes §4.1 and may
   * cancel (`civdef_cert_out_of_scope`, or the chain's own error). Only an alert this community holds
   * and that is still active is cancelled. Audit `forwarded` {alert_id, alert_sha, cancel_sha,
   * to_community, hops}; emits `civdef.alert.cancelled` with the hops so peers here cancel too.
   */
  async forwardCancelIn(frame: unknown, to_community: string): Promise<Forwarded> {
    if (!isObj(frame) || !isObj(frame.cancel)) return this.notForwarded('malformed');
    const hops = hopsOf(frame.federation_hops);
    const stop = this.hopRule(hops);
    if (stop) return this.notForwarded(stop);
    const c = frame.cancel as unknown as Cancel;
    if (typeof c.alert_id !== 'string' || typeof c.cancelled_at !== 'string' || !verifyCancel(c))
      throw new HnError('civdef_cert_invalid', 'cancel signature broken');
    const bIn = frame.by_cert_bundle ?? [];
    if (!Array.isArray(bIn) || bIn.length > 5) throw new HnError('civdef_cert_invalid', 'by_cert_bundle');
    const bundle = bIn.map(checkCertShape);
    const rec = await this.d.db.get<AlertRecord>(S.alerts, c.alert_id);
    if (!rec) return this.notForwarded('alert not here');
    if (rec.state === 'cancelled') return this.notForwarded('already cancelled');
    if (c.by !== rec.publisher) {
      const cert = [...bundle, ...this.certs.values()].find((x) => x.cert_id === c.by_cert);
      if (!cert) throw new HnError('civdef_cert_invalid', 'unknown cancel cert');
      if (cert.holder !== c.by)
        throw new HnError('civdef_cert_not_owned', 'cancel cert held by another node');
      this.checkCancelScope(cert, rec, parseTime(c.cancelled_at), bundle);
    }
    const fwdHops = [...hops!, this.d.self];
    const next: AlertRecord = { ...rec, state: 'cancelled', cancel: c };
    const hop = {
      alert_id: rec.alert_id,
      alert_sha: rec.envelope ? alertSha(rec.envelope.alert) : null,
      cancel_sha: sha256Hex(canonical(c as never)),
      to_community,
      hops: fwdHops,
    };
    await this.appendAudit('forwarded', rec.alert_id, this.d.self, hop, (tx) => tx.put(S.alerts, next), [
      S.alerts,
    ]);
    await this.d.append('civdef.alert.cancelled', {
      cancel: c,
      by_cert_bundle: bundle,
      federation_hops: fwdHops,
    } as never);
    this.emit({ kind: 'cancelled', record: next, by_cert_bundle: bundle, hops: fwdHops });
    return { forwarded: true };
  }

  /**
   * A revocation seen in the other community (a subscribe frame `{type:"revoked", revocation, cert,
   * federation_hops}`); "revocations are gossiped the same way" (§4.3). Checked as on receipt (§3.2):
   * the cert must match (`civdef_cert_invalid`), the revoker be its issuer, an ancestor or a root
   * (`civdef_cert_out_of_scope`; unknown cert and not a root → `not_found`), the signature verify
   * (`civdef_cert_invalid`). Applied here (audit `role_revoked`, alerts of the cert marked
   * `publisher_revoked`), then audit `forwarded` {cert_id, revocation_sha, to_community, hops} and
   * `civdef.role.revoked` with the hops so peers here learn it.
   */
  async forwardRevocationIn(frame: unknown, to_community: string): Promise<Forwarded> {
    if (!isObj(frame) || !isObj(frame.revocation)) return this.notForwarded('malformed');
    const hops = hopsOf(frame.federation_hops);
    const stop = this.hopRule(hops);
    if (stop) return this.notForwarded(stop);
    const r = frame.revocation as unknown as Revocation;
    let cert: RoleCertificate | undefined = this.certs.get(r.cert_id);
    if (!cert && frame.cert) {
      cert = checkCertShape(frame.cert);
      if (cert.cert_id !== r.cert_id) throw new HnError('civdef_cert_invalid', 'cert does not match');
    }
    checkRevocation(r, cert, this.roots());
    if (this.revs.has(r.cert_id)) return this.notForwarded('already here');
    const fwdHops = [...hops!, this.d.self];
    await this.applyRevocation(r, cert, fwdHops);
    await this.appendAudit('forwarded', null, this.d.self, {
      cert_id: r.cert_id,
      revocation_sha: sha256Hex(canonical(r as never)),
      to_community,
      hops: fwdHops,
    });
    await this.d.append('civdef.role.revoked', {
      revocation: r,
      cert: cert ?? null,
      federation_hops: fwdHops,
    } as never);
    return { forwarded: true };
  }
}
