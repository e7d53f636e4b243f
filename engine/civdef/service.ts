/**
 * M31 civil-defence service: the eleven capabilities of seed §2.6 and the ten events of §3.6 over
 * explicit dependencies (storage, signer, event append, bus, clock), so the same code runs as a module
 * of the node and in tests. Every check of a call runs before its first write (nothing stored on a
 * rejection); each state change and its audit entry are written in one storage transaction.
 */
import { canonicalString } from '../core/canonical.js';
import { HnError, toHnError } from '../core/errors.js';
import type { NodeID } from '../core/types.js';
import { ulidGenerator } from '../core/ulid.js';
import type { EventEnvelope } from '../events/log.js';
import type { Metrics } from '../observability/metrics.js';
import type { StorageAdapter, Tx } from '../store/types.js';
import { ACK_STATUSES, SlidingLimiter, signAck, verifyAck, type Ack, type AckStatus } from './ack.js';
import {
  alertBodyOf,
  alertSha,
  isoS,
  normaliseDraft,
  sevOrder,
  stubOf,
  text,
  verifyAlertSig,
  verifyAttestation,
  verifyCancel,
  type Alert,
  type AlertBody,
  type AlertEnvelope,
  type AlertStub,
  type Cancel,
} from './alert.js';
import {
  buildExport,
  checkpointBody,
  CHECKPOINT_EVERY,
  entryHash,
  leafOf,
  makeEntry,
  verifyChain,
  verifyChainBatch,
  ZERO,
  type AuditEntry,
  type AuditEvent,
  type CheckpointBody,
  type VerifyReport,
  type Witness,
} from './audit.js';
import { nrwAdapter, SEVERITIES, type RegionAdapter, type Severity } from './regions/nrw.js';
import {
  certState,
  checkCertShape,
  checkChain,
  checkRevocation,
  parseTime,
  signRevocation,
  type ChainCtx,
  type RoleCertificate,
  type Revocation,
  type Signer,
} from './role.js';
import { bboxInside, isRegionCode, matchesTarget, parseBBox, segmentPrefix } from './target.js';

export const STORES = {
  alerts: 'civdef_alerts',
  acks: 'civdef_acks',
  certs: 'civdef_certs',
  revocations: 'civdef_revocations',
  audit: 'civdef_audit',
  meta: 'civdef_audit_meta',
  witness: 'civdef_audit_witness',
  settings: 'civdef_settings',
} as const;
const S = STORES;

export const CIVDEF_SCHEMA = {
  version: 1,
  stores: [
    {
      name: S.alerts,
      keyPath: 'alert_id',
      indexes: [
        { name: 'by_region', keyPath: 'region' },
        { name: 'by_published', keyPath: 'published_at' },
        { name: 'by_expires', keyPath: 'expires_at' },
        { name: 'by_severity', keyPath: 'sev' },
        { name: 'by_publisher', keyPath: 'publisher' },
        { name: 'by_state', keyPath: 'state' },
      ],
    },
    {
      name: S.acks,
      keyPath: 'k',
      indexes: [
        { name: 'by_alert', keyPath: 'alert_id' },
        { name: 'by_acker', keyPath: 'acker' },
      ],
    },
    {
      name: S.certs,
      keyPath: 'cert_id',
      indexes: [
        { name: 'by_holder', keyPath: 'holder' },
        { name: 'by_issuer', keyPath: 'issuer' },
        { name: 'by_role', keyPath: 'role' },
        { name: 'by_region', keyPath: 'region' },
        { name: 'by_expires', keyPath: 'expires_at' },
      ],
    },
    { name: S.revocations, keyPath: 'cert_id' },
    {
      name: S.audit,
      keyPath: 'seq',
      indexes: [
        { name: 'by_alert', keyPath: 'alert_id' },
        { name: 'by_event', keyPath: 'event' },
        { name: 'by_at', keyPath: 'at' },
      ],
    },
    { name: S.meta, keyPath: 'key' },
    { name: S.witness, keyPath: 'chain' },
    { name: S.settings, keyPath: 'key' },
  ],
};

export interface CivDefSettings {
  trust_roots: string[];
  ack_max_per_minute_per_node: number;
  require_issuer_cosign: string[];
  allow_public_ack: boolean;
  federation_forward: boolean;
  home_region: string | null;
  mirror_to_evidence?: boolean;
  lora_panic_signal?: boolean;
}

export interface AlertRecord {
  alert_id: string;
  envelope: AlertEnvelope | null;
  stub: AlertStub | null;
  region: string;
  sev: number;
  severity: Severity;
  published_at: string;
  expires_at: string;
  publisher: NodeID;
  restricted: boolean;
  state: 'active' | 'cancelled';
  cancel: Cancel | null;
  foreign_role: boolean;
  uncosigned: boolean;
  publisher_revoked: boolean;
  matched: boolean;
}

export interface CivDefDeps {
  self: NodeID;
  sign: Signer;
  db: StorageAdapter;
  append(type: string, data: Record<string, unknown>): Promise<unknown>;
  now?: () => number;
  settings: () => CivDefSettings;
  /** a bus call (local or to a peer); used for M30 (claim.get), M29 (panic) and role-restricted pulls */
  call?: (cap: string, input: unknown, opts?: { peer?: NodeID }) => Promise<any>;
  has?: (cap: string) => boolean;
  metrics?: Metrics;
  log?: {
    warn(msg: string, d?: Record<string, unknown>): void;
    info(msg: string, d?: Record<string, unknown>): void;
  };
}

type MetaRow = {
  key: string;
  degraded: { first_bad_seq: number; reason: string } | null;
  last_checkpoint: { seq: number; tree_size: number; tree_root: string } | null;
};
export type Notice =
  { kind: 'alert'; record: AlertRecord; notify: boolean } | { kind: 'cancelled'; record: AlertRecord };

const bad = (m: string): never => {
  throw new HnError('bad_request', m);
};
const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export class CivDefService {
  private readonly now: () => number;
  private readonly ulid;
  private certs = new Map<string, RoleCertificate>();
  private revs = new Map<string, Revocation>();
  private head = { seq: -1, hash: ZERO };
  private lastCheckpoint: { seq: number; tree_size: number; tree_root: string } | null = null;
  private degraded: { first_bad_seq: number; reason: string } | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private publishLimiter = new SlidingLimiter(10, 60_000);
  private registerLimiter = new SlidingLimiter(20, 60_000);
  private inboundLimiter = new SlidingLimiter(30, 60_000);
  private ackLimiter: SlidingLimiter;
  private inboundAckLimiter: SlidingLimiter;
  private listeners = new Set<(n: Notice) => void>();
  private streams = new Map<string, number>();
  private pending: Promise<unknown> = Promise.resolve();
  private loraSent = new Set<string>();
  private loraLast = -Infinity;
  /** in-memory one-off position (never stored) */
  position: { lon: number; lat: number } | null = null;

  constructor(private readonly d: CivDefDeps) {
    this.now = d.now ?? Date.now;
    this.ulid = ulidGenerator(this.now);
    this.ackLimiter = new SlidingLimiter(d.settings().ack_max_per_minute_per_node);
    this.inboundAckLimiter = new SlidingLimiter(d.settings().ack_max_per_minute_per_node);
  }

  // ---------------------------------------------------------------- setup
  async start(): Promise<void> {
    for (const c of await this.d.db.getAll<RoleCertificate>(S.certs)) this.certs.set(c.cert_id, c);
    for (const r of await this.d.db.getAll<Revocation>(S.revocations)) this.revs.set(r.cert_id, r);
    const meta = await this.d.db.get<MetaRow>(S.meta, 'state');
    this.degraded = meta?.degraded ?? null;
    this.lastCheckpoint = meta?.last_checkpoint ?? null;
    const last = (
      await this.d.db.getAll<{ seq: number; entry: AuditEntry }>(S.audit, { reverse: true, limit: 1 })
    )[0];
    if (last) this.head = { seq: last.entry.seq, hash: entryHash(last.entry) };
    else
      await this.appendAudit('genesis', null, this.d.self, {
        chain: this.d.self,
        created_at: isoS(this.now()),
      });
    // startup verification (digest §4.8)
    await this.verifyAudit();
  }

  /** settle background work (receipt of peer events) */
  async idle(): Promise<void> {
    let p: Promise<unknown>;
    do {
      p = this.pending;
      await p;
      await this.queue;
    } while (p !== this.pending);
  }
  private bg(f: () => Promise<unknown>): void {
    this.pending = this.pending
      .then(f)
      .catch((e) => this.d.log?.warn('civdef background', { code: toHnError(e).code }));
  }

  onNotice(cb: (n: Notice) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }
  private emit(n: Notice) {
    for (const l of this.listeners) l(n);
  }

  adapterFor(region: string): RegionAdapter | null {
    return segmentPrefix('DE.NRW', region) ? nrwAdapter(this.d.settings().trust_roots as NodeID[]) : null;
  }
  private roots(): Set<string> {
    return new Set(this.d.settings().trust_roots);
  }
  private ctx(cert: { region: string }, bundle: RoleCertificate[] = []): ChainCtx {
    const byHolder = (h: NodeID) => [
      ...[...this.certs.values()].filter((c) => c.holder === h),
      ...bundle.filter((c) => c.holder === h),
    ];
    return {
      roots: this.roots(),
      adapter: this.adapterFor(cert.region),
      revoked: (id) => this.revs.has(id),
      certsOf: byHolder,
    };
  }
  private myActiveCerts(): RoleCertificate[] {
    const now = this.now();
    return [...this.certs.values()].filter(
      (c) => c.holder === this.d.self && certState(c, now, this.ctx(c)) === 'active',
    );
  }

  // ---------------------------------------------------------------- audit
  /** Append one audit entry (and optional state writes) in one transaction; serialised. */
  private appendAudit(
    event: AuditEvent,
    alert_id: string | null,
    actor: NodeID,
    payload: unknown,
    writes?: (tx: Tx) => Promise<void>,
    extraStores: string[] = [],
  ): Promise<AuditEntry> {
    const run = async () => {
      const entry = makeEntry(
        this.d.sign,
        {
          seq: this.head.seq + 1,
          chain: this.d.self,
          alert_id,
          event,
          actor,
          at: isoS(this.now()),
          prev_sha: this.head.hash,
        },
        payload,
      );
      await this.d.db.transaction([S.audit, ...extraStores], 'readwrite', async (tx) => {
        if (writes) await writes(tx);
        await tx.put(S.audit, { seq: entry.seq, alert_id, event, at: entry.at, entry, payload });
      });
      this.head = { seq: entry.seq, hash: entryHash(entry) };
      if (event !== 'checkpoint' && event !== 'recheckpoint' && (entry.seq + 1) % CHECKPOINT_EVERY === 0)
        await this.writeCheckpoint('checkpoint');
      return entry;
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private async writeCheckpoint(
    kind: 'checkpoint' | 'recheckpoint',
    extra: Partial<CheckpointBody> = {},
  ): Promise<AuditEntry> {
    const rows = await this.d.db.getAll<{ entry: AuditEntry }>(S.audit);
    const body = {
      ...checkpointBody(
        rows.map((r) => r.entry),
        this.lastCheckpoint,
      ),
      ...extra,
    };
    const entry = makeEntry(
      this.d.sign,
      {
        seq: this.head.seq + 1,
        chain: this.d.self,
        alert_id: null,
        event: kind,
        actor: this.d.self,
        at: isoS(this.now()),
        prev_sha: this.head.hash,
      },
      body,
    );
    const cp = { seq: entry.seq, tree_size: body.tree_size, tree_root: body.tree_root };
    await this.d.db.transaction([S.audit, S.meta], 'readwrite', async (tx) => {
      await tx.put(S.audit, {
        seq: entry.seq,
        alert_id: null,
        event: kind,
        at: entry.at,
        entry,
        payload: body,
      });
      await tx.put(S.meta, {
        key: 'state',
        degraded: kind === 'recheckpoint' ? null : this.degraded,
        last_checkpoint: cp,
      });
    });
    this.head = { seq: entry.seq, hash: entryHash(entry) };
    this.lastCheckpoint = cp;
    if (kind === 'recheckpoint') this.degraded = null;
    await this.d.append('civdef.audit.checkpointed', {
      chain: this.d.self,
      seq: body.upto_seq,
      head_hash: body.head_hash,
      tree_size: body.tree_size,
      tree_root: body.tree_root,
    });
    return entry;
  }

  /** On-demand checkpoint (engine action). */
  checkpoint(): Promise<AuditEntry> {
    const p = this.queue.then(() => this.writeCheckpoint('checkpoint'));
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** Operator's re-checkpoint after a break (engine action, not a capability; §4.8). */
  recheckpoint(operator_note: string): Promise<AuditEntry> {
    const note = text(operator_note, 'operator_note', 1, 280);
    const broken = this.degraded;
    const p = this.queue.then(async () => {
      const last = (await this.d.db.getAll<{ entry: AuditEntry }>(S.audit, { reverse: true, limit: 1 }))[0]!;
      this.head = { seq: last.entry.seq, hash: entryHash(last.entry) };
      return this.writeCheckpoint('recheckpoint', {
        broken_at_seq: broken?.first_bad_seq ?? -1,
        reason: broken?.reason ?? 'operator',
        operator_note: note,
        head_hash: this.head.hash,
      });
    });
    this.queue = p.catch(() => undefined);
    return p;
  }

  get isDegraded(): boolean {
    return this.degraded !== null;
  }

  private async witnesses(): Promise<Witness[]> {
    return (await this.d.db.getAll<Witness & { heads?: Witness[] }>(S.witness)).flatMap(
      (w) => w.heads ?? [w],
    );
  }

  /** Full verification (startup, export, daily, the app's "verify"). A break sets degraded mode. */
  async verifyAudit(): Promise<VerifyReport> {
    await this.queue;
    const rows = await this.d.db.getAll<{ seq: number; entry: AuditEntry; payload: unknown }>(S.audit);
    const payloads = new Map(rows.map((r) => [r.seq, r.payload] as [number, unknown]));
    const entries = rows.map((r) => r.entry);
    let rep = await verifyChainBatch(entries, {
      chain: this.d.self,
      payloads,
      witnesses: await this.witnesses(),
    });
    // a recheckpoint acknowledges an earlier break: verify the part after it on its own
    if (!rep.ok && rep.first_bad_seq !== undefined) {
      const rc = rows.filter((r) => r.entry.event === 'recheckpoint' && r.seq > rep.first_bad_seq!).pop();
      if (rc) {
        const tail = rows.filter((r) => r.seq >= rc.seq);
        const r2 = verifyChain(
          tail.map((r) => r.entry),
          { chain: this.d.self, payloads },
        );
        if (r2.ok)
          rep = { ...r2, checked: rows.length, reason: `break at ${rep.first_bad_seq} re-checkpointed` };
        else rep = r2;
      }
    }
    if (!rep.ok && !this.degraded) {
      this.degraded = { first_bad_seq: rep.first_bad_seq!, reason: rep.reason ?? 'broken' };
      await this.d.db.put(S.meta, {
        key: 'state',
        degraded: this.degraded,
        last_checkpoint: this.lastCheckpoint,
      });
      await this.d.append('civdef.audit.broken', {
        chain: this.d.self,
        first_bad_seq: rep.first_bad_seq!,
        reason: rep.reason ?? '',
      });
      this.d.log?.warn('civdef audit chain broken', { first_bad_seq: rep.first_bad_seq });
    }
    return rep;
  }

  /** The last link before a publish (§4.8). */
  private async verifyLastLink(): Promise<void> {
    await this.queue;
    const rows = await this.d.db.getAll<{ entry: AuditEntry }>(S.audit, { reverse: true, limit: 2 });
    if (rows.length === 0) return;
    const es = rows.map((r) => r.entry).reverse();
    const rep = verifyChain(es, { chain: this.d.self, anchorPrev: null });
    if (!rep.ok || entryHash(es[es.length - 1]!) !== this.head.hash) {
      const seq = rep.first_bad_seq ?? es[es.length - 1]!.seq;
      this.degraded = { first_bad_seq: seq, reason: rep.reason ?? 'head mismatch' };
      await this.d.db.put(S.meta, {
        key: 'state',
        degraded: this.degraded,
        last_checkpoint: this.lastCheckpoint,
      });
      await this.d.append('civdef.audit.broken', {
        chain: this.d.self,
        first_bad_seq: seq,
        reason: this.degraded.reason,
      });
    }
  }

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

  private async storeCerts(certs: RoleCertificate[], audit: boolean): Promise<void> {
    const fresh = certs.filter((c) => !this.certs.has(c.cert_id));
    if (!fresh.length) return;
    const writes = async (tx: Tx) => {
      for (const c of fresh) await tx.put(S.certs, c);
    };
    if (audit) await this.appendAudit('role_registered', null, this.d.self, fresh[0], writes, [S.certs]);
    else await this.d.db.transaction([S.certs], 'readwrite', writes);
    for (const c of fresh) this.certs.set(c.cert_id, c);
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

  private async applyRevocation(rev: Revocation, cert: RoleCertificate | undefined): Promise<void> {
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

  private attestationValid(alert: Alert, cert: RoleCertificate, at: number): boolean {
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

  private async panic(alert_id: string): Promise<void> {
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

  private bundleOf(cert: RoleCertificate): RoleCertificate[] {
    const out = [cert];
    for (const link of cert.issuer_chain) {
      const c = [...this.certs.values()].find((x) => x.holder === link && x.scopes.includes('role.issue'));
      if (c) out.push(c);
    }
    return out;
  }

  private matches(a: Alert | AlertStub): boolean {
    return matchesTarget(a.target, {
      home_region: this.d.settings().home_region,
      position: this.position,
      roles: this.myActiveCerts().map((c) => c.role),
    });
  }

  private recordOf(
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
      case 'civdef.alert.cancelled':
        return this.receiveCancel(d.cancel, d.by_cert_bundle ?? []);
      case 'civdef.alert.acked':
        return this.receiveAck(d.ack);
      case 'civdef.role.revoked':
        return this.receiveRevocation(d.revocation, d.cert);
      case 'civdef.role.registered':
        return this.receiveRegistered(d.cert, d.chain_certs ?? []);
      case 'civdef.audit.checkpointed':
        if (typeof d.chain === 'string' && d.chain !== this.d.self) await this.witness(d as Witness);
        return;
    }
  }

  private drop(metric: string, why: string, id?: string) {
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

  private attestationValidWith(
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

  private async receiveStub(s: AlertStub): Promise<void> {
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

  private async receiveCancel(c: Cancel, bundle: RoleCertificate[]): Promise<void> {
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
    this.emit({ kind: 'cancelled', record: next });
  }

  private async receiveAck(a: Ack): Promise<void> {
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

  private async receiveRevocation(r: Revocation, certIn: unknown): Promise<void> {
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
    await this.applyRevocation(r, cert);
  }

  private async receiveRegistered(certIn: unknown, chain: unknown[]): Promise<void> {
    try {
      const cert = checkCertShape(certIn);
      const cs = (Array.isArray(chain) ? chain : []).map(checkCertShape);
      checkChain(cert, this.now(), this.ctx(cert, cs));
      await this.storeCerts([cert, ...cs], false);
    } catch {
      /* a cert that does not verify under local roots is simply not stored */
    }
  }

  private async witness(w: Witness): Promise<void> {
    if (!Number.isSafeInteger(w.seq) || typeof w.head_hash !== 'string') return;
    const prev = await this.d.db.get<{ chain: string; heads: Witness[] }>(S.witness, w.chain);
    const heads = [
      ...(prev?.heads ?? []).filter((h) => h.seq !== w.seq),
      { chain: w.chain, seq: w.seq, head_hash: w.head_hash },
    ].slice(-64);
    await this.d.db.put(S.witness, { chain: w.chain, heads });
  }

  /** heads this node witnessed for a chain (to check another node's export) */
  async witnessedHeads(chain: NodeID): Promise<Witness[]> {
    return (await this.d.db.get<{ heads: Witness[] }>(S.witness, chain))?.heads ?? [];
  }

  // ---------------------------------------------------------------- cancel
  private checkCancelScope(
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
    this.emit({ kind: 'cancelled', record: next });
    return { alert_id: rec.alert_id, cancelled_at: c.cancelled_at };
  }

  // ---------------------------------------------------------------- reads
  private view(r: AlertRecord, full: boolean) {
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
  private mayRead(r: AlertRecord, caller: NodeID, isLocal: boolean): boolean {
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
      if (!match(nt.record)) return;
      if (nt.kind === 'alert')
        queue.push(
          this.mayRead(nt.record, caller, isLocal) && nt.record.envelope
            ? { type: 'alert', envelope: nt.record.envelope }
            : { type: 'stub', stub: nt.record.stub },
        );
      else queue.push({ type: 'cancelled', alert_id: nt.record.alert_id, cancel: nt.record.cancel });
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

  /** audit.export frames (§4.8). `alert_id` / `since` filter payloads; every entry is present. */
  async exportFrames(input: unknown) {
    const q = (isObj(input) ? input : {}) as Record<string, any>;
    const format = q.format ?? 'jsonl';
    if (format === 'pdf') throw new HnError('not_implemented', 'pdf export is not in v1');
    if (format !== 'jsonl') bad('format must be jsonl or pdf');
    if (q.alert_id !== undefined && typeof q.alert_id !== 'string') bad('alert_id');
    if (q.since !== undefined && (typeof q.since !== 'string' || Number.isNaN(Date.parse(q.since))))
      bad('since');
    const rep = await this.verifyAudit();
    const rows = await this.d.db.getAll<{ seq: number; entry: AuditEntry; payload: unknown }>(S.audit);
    let from = 0;
    if (q.since) {
      const cps = rows.filter(
        (r) => (r.entry.event === 'checkpoint' || r.entry.event === 'recheckpoint') && r.entry.at <= q.since,
      );
      from = cps.length ? cps[cps.length - 1]!.seq : 0;
    }
    const inRange = rows.filter((r) => r.seq >= from);
    const payloads = new Map(rows.map((r) => [r.seq, r.payload]));
    const frames = buildExport(this.d.sign, {
      chain: this.d.self,
      entries: inRange.map((r) => r.entry),
      payloadOf: (e) => payloads.get(e.seq) ?? null,
      include: (e) =>
        (q.alert_id === undefined ||
          e.alert_id === q.alert_id ||
          e.event === 'checkpoint' ||
          e.event === 'recheckpoint' ||
          e.event === 'genesis') &&
        (q.since === undefined || e.at >= q.since || e.seq === from),
      filter: { ...(q.alert_id ? { alert_id: q.alert_id } : {}), ...(q.since ? { since: q.since } : {}) },
      exported_at: isoS(this.now()),
      verify: rep,
      allLeaves: rows.map((r) => leafOf(r.entry)),
    });
    return { frames, report: rep };
  }

  /** Test and admin hook: the raw audit rows (seq, entry, payload). */
  async auditRows() {
    return this.d.db.getAll<{ seq: number; entry: AuditEntry; payload: unknown }>(S.audit);
  }
}
