/**
 * M30 evidence service: the eight capabilities of seed §2.5, the six events of seed §3.5,
 * replication through the event log (§4.9), drafts (§4.7) and EBKH sync (§4.8).
 * Every dependency is explicit (storage, signing, events, membership, clock), so the same code
 * runs as a module of the node and in unit tests with real parts.
 *
 * Bad input never writes: every check of a call runs before its first write.
 */
import { canonicalString } from '../core/canonical.js';
import {
  EVIDENCE_CLAIM_TTL_DAYS_DEFAULT,
  EVIDENCE_DISPUTE_MIN_TRUST,
  EVIDENCE_MAX_PROVENANCE_DEPTH,
} from '../core/constants.js';
import { queueTail } from '../core/vocab.js';
import { b64url, fromB64url, fromUtf8, utf8 } from '../core/encoding.js';
import { HnError, type ErrorCode } from '../core/errors.js';
import { sha256Hex } from '../core/hash.js';
import { EVIDENCE_LEVELS, type EvidenceLevel, type NodeID, type TrustLevel } from '../core/types.js';
import type { EventEnvelope } from '../events/log.js';
import type { Metrics } from '../observability/metrics.js';
import type { StorageAdapter } from '../store/types.js';
import {
  ATTEST_ROLES,
  buildClaim,
  isoSeconds,
  normaliseDraft,
  normText,
  parseClaimId,
  RETRACTED,
  verifyAttestation,
  verifyClaimRecord,
  verifyDispute,
  type Attestation,
  type AttestRole,
  type ClaimRecord,
  type Dispute,
  type UnsignedClaim,
} from './claim.js';
import { Extractor, type DraftInput } from './extractor.js';
import { EbkhSync, type EbkhOptions, type SyncReport } from './ebkh_sync.js';
import { bad, obj, optBool, optInt } from './input.js';
import { EvidenceReader, type EvidenceSettings } from './query.js';
import { cycleGuard, EvidenceStore, S } from './store.js';
import { claimToCredential, credentialToClaim } from './vc.js';

export type { SyncReport } from './ebkh_sync.js';
import type { Membership, Override } from './trust.js';

export const EVIDENCE_EVENTS = [
  'evidence.claim.asserted',
  'evidence.claim.attested',
  'evidence.dispute.opened',
  'evidence.dispute.retracted',
  'evidence.ebkh.synced',
  'evidence.ebkh.sync_partial',
] as const;
export const EVIDENCE_CAPABILITIES = {
  assert: 'experimental.evidence.claim.assert',
  dispute: 'experimental.evidence.claim.dispute',
  attest: 'experimental.evidence.claim.attest',
  get: 'experimental.evidence.claim.get',
  query: 'experimental.evidence.claim.query',
  trace: 'experimental.evidence.provenance.trace',
  summary: 'experimental.evidence.subject.summary',
  sync: 'experimental.evidence.ebkh.sync',
} as const;

export const DEFAULT_SETTINGS: EvidenceSettings = {
  claim_ttl_days: EVIDENCE_CLAIM_TTL_DAYS_DEFAULT,
  dispute_min_trust: EVIDENCE_DISPUTE_MIN_TRUST,
  max_provenance_depth: EVIDENCE_MAX_PROVENANCE_DEPTH,
  attestations_required: 3,
  trust_default: 0.5,
  ebkh_trust: 0.5,
  multi_valued_predicates: [],
  summary_max_predicates: 32,
  ebkh_endpoint: null,
  ebkh_token: null,
};

type Signer = <T extends Record<string, unknown>>(obj: T) => T & { signature: string };

export interface EvidenceDeps {
  self: NodeID;
  sign: Signer;
  db: StorageAdapter;
  /** append a local event (the node's EventLog) */
  append(type: string, data: Record<string, unknown>): Promise<unknown>;
  levelOf(n: NodeID): Membership;
  now?: () => number;
  settings?: () => Partial<EvidenceSettings>;
  metrics?: Metrics;
  ebkh?: EbkhOptions;
  extract?: boolean;
  /** Ed25519 over Data Integrity hashData with the node key (VC export); absent → export unavailable */
  signDataIntegrity?: (hashData: Uint8Array) => Uint8Array;
  /** raise a member's community level (the kit's community component) */
  promote?: (target: NodeID, level: TrustLevel) => Promise<unknown>;
}

interface Plan {
  record: UnsignedClaim;
  exists: boolean;
  /** disputes by this node whose counterclaim this retraction targets */
  retractsDisputes: Dispute[];
}

export class EvidenceService {
  readonly store: EvidenceStore;
  readonly reader: EvidenceReader;
  readonly extractor: Extractor;
  readonly rejected: Partial<Record<ErrorCode, number>> = {};
  private queue: Promise<unknown> = Promise.resolve();
  readonly ebkh: EbkhSync;
  private now: () => number;

  constructor(private d: EvidenceDeps) {
    this.store = new EvidenceStore(d.db);
    this.now = d.now ?? (() => Date.now());
    this.reader = new EvidenceReader({
      store: this.store,
      now: this.now,
      settings: () => this.settings(),
      levelOf: d.levelOf,
    });
    this.extractor = new Extractor(d.extract ?? true);
    this.ebkh = new EbkhSync({
      self: d.self,
      store: this.store,
      now: this.now,
      settings: () => this.settings(),
      token: () => this.ebkh.storedToken(),
      append: d.append,
      serial: (fn) => this.serial(fn),
      acceptClaim: (v) => this.acceptClaim(v),
      countRejected: (code) => this.countRejected(code),
      options: d.ebkh,
    });
  }
  private countRejected(code: ErrorCode) {
    this.rejected[code] = (this.rejected[code] ?? 0) + 1;
    this.d.metrics?.inc('evidence_rejected_total', { code }, 1, 'Evidence records rejected on receipt');
  }

  settings(): EvidenceSettings {
    return { ...DEFAULT_SETTINGS, ...(this.d.settings?.() ?? {}) };
  }
  get self(): NodeID {
    return this.d.self;
  }

  /** Local writes run one at a time, so checks and writes of one call see a stable store. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    // the caller gets p (and its rejection); the queue only needs to know it settled
    this.queue = queueTail(p);
    return p;
  }
  /** Resolves when every queued write (local or replicated) has finished. */
  idle(): Promise<void> {
    return queueTail(this.queue);
  }

  // ------------------------------------------------------------ assert (§4.1)
  private async plan(draftIn: unknown, asserted_at: string): Promise<Plan> {
    const s = this.settings();
    const draft = normaliseDraft(draftIn, asserted_at, s.claim_ttl_days);
    for (const p of draft.derived_from)
      if (!(await this.store.hasClaim(p)))
        throw new HnError('claim_not_found', 'unknown derived_from target', { details: { claim_id: p } });
    for (const p of draft.supersedes) {
      const o = await this.store.getClaim(p);
      if (!o) throw new HnError('claim_not_found', 'unknown supersedes target', { details: { claim_id: p } });
      if (o.asserted_by !== this.d.self) bad('only your own claims can be superseded');
    }
    const retractsDisputes: Dispute[] = [];
    if (draft.predicate === RETRACTED) {
      const t = await this.store.getClaim(draft.object);
      if (!t)
        throw new HnError('claim_not_found', 'unknown retraction target', {
          details: { claim_id: draft.object },
        });
      if (t.asserted_by !== this.d.self) bad('only your own claims can be retracted');
      if (t.subject !== draft.subject) bad('a retraction carries the subject of its target');
      for (const dd of await this.store.disputesByCounterclaim(t.claim_id))
        if (dd.disputer === this.d.self) retractsDisputes.push(dd);
    }
    const record = buildClaim(draft, this.d.self, asserted_at);
    await cycleGuard(this.store, record.claim_id, draft.derived_from);
    return { record, exists: await this.store.hasClaim(record.claim_id), retractsDisputes };
  }

  private async commit(plan: Plan): Promise<ClaimRecord> {
    const signed = this.d.sign(plan.record as unknown as Record<string, unknown>) as unknown as ClaimRecord;
    await this.store.putClaim(signed);
    await this.d.append('evidence.claim.asserted', { record: signed });
    for (const dd of plan.retractsDisputes)
      await this.d.append('evidence.dispute.retracted', {
        claim_id: dd.claim_id,
        counterclaim_id: dd.counterclaim_id,
        retraction_id: signed.claim_id,
      });
    return signed;
  }

  assert(input: unknown) {
    return this.serial(async () => {
      const at = isoSeconds(this.now());
      const plan = await this.plan(input, at);
      if (!plan.exists) await this.commit(plan);
      const v = await this.reader.get(plan.record.claim_id);
      return {
        claim_id: plan.record.claim_id,
        evidence_level: v.evidence_level,
        deduplicated: plan.exists,
        contradictions: v.contradictions,
      };
    });
  }

  // ------------------------------------------------------------ dispute (§4.3)
  dispute(input: unknown) {
    return this.serial(async () => {
      const i = obj(input);
      const claim_id = parseClaimId(i.claim_id);
      if (i.counterclaim === undefined) bad('counterclaim is required');
      const rationale = normText(i.rationale, 'rationale', 1000, false);
      if (!(await this.store.hasClaim(claim_id)))
        throw new HnError('claim_not_found', 'unknown claim', { details: { claim_id } });
      const at = isoSeconds(this.now());
      const plan = await this.plan(i.counterclaim, at);
      const counterclaim_id = plan.record.claim_id;
      if (counterclaim_id === claim_id) bad('a claim cannot dispute itself');
      if (!plan.exists) await this.commit(plan);
      const isRetraction = plan.record.predicate === RETRACTED && plan.record.object === claim_id;
      if (!isRetraction) {
        const existing = (await this.store.disputesOf(claim_id)).find(
          (x) => x.counterclaim_id === counterclaim_id,
        );
        if (!existing) {
          const dispute = this.d.sign({
            claim_id,
            counterclaim_id,
            disputer: this.d.self,
            disputed_at: at,
            rationale,
          }) as Dispute;
          await this.store.putDispute(dispute);
          await this.d.append('evidence.dispute.opened', { dispute });
        }
      }
      const v = await this.reader.get(claim_id);
      return { counterclaim_id, target_evidence_level: v.evidence_level };
    });
  }

  // ------------------------------------------------------------ attest
  attest(input: unknown) {
    return this.serial(async () => {
      const i = obj(input);
      const claim_id = parseClaimId(i.claim_id);
      if (!ATTEST_ROLES.includes(i.role as AttestRole)) bad('role must be one of ' + ATTEST_ROLES.join(', '));
      const rationale = normText(i.rationale, 'rationale', 1000, false);
      const claim = await this.store.getClaim(claim_id);
      if (!claim) throw new HnError('claim_not_found', 'unknown claim', { details: { claim_id } });
      if (claim.asserted_by === this.d.self) bad('a node cannot attest its own claim');
      let a = await this.store.attestation(claim_id, this.d.self);
      if (!a) {
        a = this.d.sign({
          claim_id,
          attester: this.d.self,
          attested_at: isoSeconds(this.now()),
          role: i.role as AttestRole,
          rationale,
        }) as Attestation;
        await this.store.putAttestation(a);
        await this.d.append('evidence.claim.attested', { attestation: a });
      }
      const v = await this.reader.get(claim_id);
      return { claim_id, attester: a.attester, attested_at: a.attested_at, evidence_level: v.evidence_level };
    });
  }

  // ------------------------------------------------------------ reads
  async get(input: unknown) {
    return this.reader.get(parseClaimId(obj(input).claim_id));
  }

  async query(input: unknown) {
    const i = obj(input);
    const pattern: { subject?: string; predicate?: string; object?: string } = {};
    if (i.subject !== undefined) pattern.subject = normText(i.subject, 'subject', 512, true);
    if (i.predicate !== undefined) {
      if (typeof i.predicate !== 'string' || !/^[a-z][a-z0-9_]{0,63}$/.test(i.predicate))
        bad('malformed predicate');
      pattern.predicate = i.predicate as string;
    }
    if (i.object !== undefined) pattern.object = normText(i.object, 'object', 2048, true);
    if (!Object.keys(pattern).length) bad('a query needs subject, predicate or object');
    const min = (i.min_evidence ?? 'unverified') as EvidenceLevel;
    if (!EVIDENCE_LEVELS.includes(min)) bad('unknown min_evidence');
    const limit = optInt(i.limit, 'limit', 50, 1, 200);
    let offset = 0;
    if (i.cursor !== undefined && i.cursor !== null) {
      try {
        const c = JSON.parse(fromUtf8(fromB64url(i.cursor as string))) as { o?: unknown };
        if (typeof c.o !== 'number' || !Number.isSafeInteger(c.o) || c.o < 0) throw new Error();
        offset = c.o;
      } catch {
        bad('malformed cursor');
      }
    }
    const r = await this.reader.query({
      pattern,
      min_evidence: min,
      include_stale: optBool(i.include_stale, 'include_stale', false),
      include_superseded: optBool(i.include_superseded, 'include_superseded', false),
      limit,
      offset,
    });
    return {
      claims: r.claims,
      next_cursor: r.next_offset === null ? null : b64url(utf8(JSON.stringify({ o: r.next_offset }))),
      contradictions: r.contradictions,
    };
  }

  async trace(input: unknown) {
    const i = obj(input);
    const id = parseClaimId(i.claim_id);
    const md = i.max_depth ?? 5;
    if (typeof md !== 'number' || !Number.isInteger(md) || md < 0) bad('max_depth must be an integer ≥ 0');
    return this.reader.trace(id, md as number);
  }

  async summary(input: unknown) {
    const i = obj(input);
    return this.reader.summary(normText(i.subject, 'subject', 512, true));
  }

  // ------------------------------------------------------------ replication (§4.9)
  /** Ingest one event of the log (own or a peer's); invalid inner records are counted and skipped. */
  ingest(
    ev: Pick<EventEnvelope, 'event_type' | 'event_id' | 'author' | 'data'>,
  ): Promise<'stored' | 'duplicate' | 'skipped' | 'rejected'> {
    return this.serial(async () => {
      if (!ev.event_type.startsWith('evidence.')) {
        await this.suggest(ev);
        return 'skipped';
      }
      try {
        return await this.ingestRecord(ev);
      } catch (e) {
        this.countRejected(e instanceof HnError ? e.code : 'bad_request');
        return 'rejected';
      }
    });
  }

  private async ingestRecord(
    ev: Pick<EventEnvelope, 'event_type' | 'data'>,
  ): Promise<'stored' | 'duplicate' | 'skipped'> {
    const data = ev.data ?? {};
    switch (ev.event_type) {
      case 'evidence.claim.asserted': {
        const r = await this.acceptClaim(data.record);
        return (await this.store.putClaim(r)) ? 'stored' : 'duplicate';
      }
      case 'evidence.claim.attested': {
        const a = verifyAttestation(data.attestation);
        return (await this.store.putAttestation(a)) ? 'stored' : 'duplicate';
      }
      case 'evidence.dispute.opened': {
        const dd = verifyDispute(data.dispute);
        const cc = await this.store.getClaim(dd.counterclaim_id);
        if (cc && cc.asserted_by !== dd.disputer) bad('the disputer must be the counterclaim asserter');
        return (await this.store.putDispute(dd)) ? 'stored' : 'duplicate';
      }
      default:
        return 'skipped'; // dispute.retracted and ebkh.* carry nothing to store
    }
  }

  /** §3.3 verification plus the receive-side drop rule for retractions of another node's claim. */
  private async acceptClaim(v: unknown): Promise<ClaimRecord> {
    const r = verifyClaimRecord(v);
    if (r.predicate === RETRACTED) {
      const t = await this.store.getClaim(r.object);
      if (t && t.asserted_by !== r.asserted_by) bad('retraction of another node’s claim');
    }
    return r;
  }

  /** Catch up from the stored log (the module was off, or the tab reloaded). */
  async catchUp(events: Iterable<EventEnvelope>): Promise<void> {
    for (const ev of events) void this.ingest(ev);
    await this.idle();
  }

  // ------------------------------------------------------------ drafts (§4.7)
  private async suggest(ev: Pick<EventEnvelope, 'event_type' | 'event_id' | 'author' | 'data'>) {
    for (const { pattern, draft } of this.extractor.consume(ev))
      await this.saveDraft(pattern, draft, ev.event_id);
  }
  async saveDraft(pattern: string, draft: DraftInput, event_id: string | null): Promise<string> {
    const draft_id = sha256Hex(canonicalString(draft)).slice(0, 32);
    if (!(await this.d.db.get(S.drafts, draft_id)))
      await this.d.db.put(S.drafts, {
        draft_id,
        pattern,
        event_id,
        draft,
        created_at: isoSeconds(this.now()),
        status: 'open',
      });
    return draft_id;
  }
  async drafts(): Promise<{ draft_id: string; pattern: string; draft: DraftInput; status: string }[]> {
    return this.d.db.getAll(S.drafts);
  }
  /** The operator asserts a draft (a local engine API, not a bus capability; digest §8 Q4). */
  async assertDraft(draft_id: string) {
    const row = await this.d.db.get<{ draft_id: string; draft: DraftInput; status: string }>(
      S.drafts,
      draft_id,
    );
    if (!row) throw new HnError('not_found', 'no such draft');
    const out = await this.assert(row.draft);
    await this.d.db.put(S.drafts, { ...row, status: 'asserted', claim_id: out.claim_id });
    return out;
  }
  async dismissDraft(draft_id: string) {
    const row = await this.d.db.get<Record<string, unknown>>(S.drafts, draft_id);
    if (row) await this.d.db.put(S.drafts, { ...row, status: 'dismissed' });
  }

  // ------------------------------------------------------------ trust overrides
  async setTrustOverride(kind: 'node' | 'host', target: string, mode: Override | null): Promise<void> {
    if (kind !== 'node' && kind !== 'host') bad('kind must be node or host');
    if (mode !== null && mode !== 'allow' && mode !== 'block') bad('mode must be allow, block or null');
    const k = `${kind}:${target}`;
    if (mode === null) await this.d.db.delete(S.trust, k);
    else await this.store.putKv(S.trust, k, mode);
  }
  async trustOverrides(): Promise<{ k: string; v: Override }[]> {
    return this.d.db.getAll(S.trust);
  }

  // ------------------------------------------------------------ EBKH (§4.8), in ebkh_sync.ts
  ebkhSync(input: unknown = {}): Promise<SyncReport> {
    return this.ebkh.sync(input);
  }

  // ------------------------------------------------------------ community levels (local API)
  levelOf(n: NodeID): Membership {
    return this.d.levelOf(n);
  }
  /** Promote a member to `trusted` (this node must be trusted or the anchor; core digest §3). */
  async promote(target: NodeID, level: TrustLevel = 'trusted'): Promise<void> {
    if (!this.d.promote) throw new HnError('not_implemented', 'promotion is not wired on this node');
    await this.d.promote(target, level);
  }

  // ------------------------------------------------------------ VC 2.0 interop (vc.ts)
  async record(id: string): Promise<ClaimRecord> {
    const r = await this.store.getClaim(parseClaimId(id));
    if (!r) throw new HnError('claim_not_found', 'unknown claim', { details: { claim_id: id } });
    return r;
  }
  /** Export one of this node's claims as a VC 2.0 with an eddsa-jcs-2022 proof by the same key. */
  async exportVc(input: unknown): Promise<{ credential: Record<string, unknown> }> {
    const r = await this.record(obj(input).claim_id as string);
    if (r.asserted_by !== this.d.self)
      throw new HnError('unauthorized', 'only the asserter can sign a credential for its claim');
    const sign = this.d.signDataIntegrity;
    if (!sign) throw new HnError('not_implemented', 'this node cannot sign credentials');
    return { credential: claimToCredential(r, sign) };
  }
  /** Import a credential: proof, embedded claim (§3.3) and key binding verified before anything is stored. */
  importVc(input: unknown): Promise<{ claim_id: string; stored: boolean; evidence_level: EvidenceLevel }> {
    return this.serial(async () => {
      const r = await this.acceptClaim(credentialToClaim(obj(input).credential));
      const stored = await this.store.putClaim(r, 'vc');
      const v = await this.reader.get(r.claim_id);
      return { claim_id: r.claim_id, stored, evidence_level: v.evidence_level };
    });
  }
}
