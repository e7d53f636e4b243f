/**
 * M30 reads (digest §4.2–4.6): evidence levels computed on read, supersession, TTL, advisory
 * contradictions, trust, ClaimView, query with ranking and cursor, provenance trace, subject summary.
 * Deterministic for a given record set, clock and local overrides.
 */
import { canonicalString } from '../core/canonical.js';
import { HnError } from '../core/errors.js';
import type { EvidenceLevel, NodeID } from '../core/types.js';
import {
  MULTI_VALUED_PREDICATES,
  RETRACTED,
  type Attestation,
  type ClaimRecord,
  type Dispute,
} from './claim.js';
import type { EvidenceStore, TriplePattern } from './store.js';
import { S } from './store.js';
import { claimTrust, scoreAsserter, scoreSource, type Membership, type Override } from './trust.js';

export interface EvidenceSettings {
  claim_ttl_days: number;
  dispute_min_trust: number;
  max_provenance_depth: number;
  attestations_required: number;
  trust_default: number;
  ebkh_trust: number;
  /** operator-defined extra multi-valued predicates (never contradict) */
  multi_valued_predicates: string[];
  summary_max_predicates: number;
  ebkh_endpoint: string | null;
  ebkh_token: string | null;
}

export interface ClaimView {
  record: ClaimRecord;
  evidence_level: EvidenceLevel;
  base_level: EvidenceLevel;
  trust_score: number;
  stale: boolean;
  superseded_by: string[];
  retracted: boolean;
  attestation_count: number;
  active_dispute_count: number;
  contradictions: string[];
}

export interface ReaderDeps {
  store: EvidenceStore;
  now: () => number;
  settings: () => EvidenceSettings;
  levelOf: (n: NodeID) => Membership;
}

export const LEVEL_RANK: Record<EvidenceLevel, number> = {
  unverified: 0,
  cited: 1,
  cross_referenced: 2,
  attested: 3,
  disputed: 4,
};
const FIRST_HAND: ReadonlySet<string> = new Set(['first-hand witness', 'official record holder']);
const TRACE_NODE_CAP = 2000;

export interface TrustOverrideRow {
  kind: 'node' | 'host';
  target: string;
  mode: Override;
}

export class EvidenceReader {
  constructor(private d: ReaderDeps) {}
  get store() {
    return this.d.store;
  }

  // ------------------------------------------------------------ trust
  async override(kind: 'node' | 'host', target: string): Promise<Override | null> {
    return (await this.d.store.getKv<Override>(S.trust, `${kind}:${target}`)) ?? null;
  }
  async scoreAsserter(n: string): Promise<number> {
    const s = this.d.settings();
    const override = await this.override('node', n);
    if (override) return scoreAsserter({ override, membership: null, days_known: 0, claims: 0, disputed: 0 });
    const claims = await this.d.store.claimsBy(n);
    let disputed = 0;
    for (const c of claims) {
      const ds = await this.d.store.disputesOf(c.claim_id);
      if (ds.some((x) => x.disputer !== n)) disputed++;
    }
    const first = await this.d.store.firstSeen(n);
    const days_known = first ? Math.max(0, (this.d.now() - Date.parse(first)) / 86_400_000) : 0;
    return scoreAsserter(
      { membership: this.d.levelOf(n as NodeID), days_known, claims: claims.length, disputed },
      s.trust_default,
    );
  }
  async trustOf(r: ClaimRecord): Promise<number> {
    const s = this.d.settings();
    const asserter = await this.scoreAsserter(r.asserted_by);
    const ids = [...new Set(r.sources.map((x) => x.source_id))];
    const hostOv = new Map<string, Override | null>();
    const nodeScores = new Map<string, number>();
    for (const id of ids) {
      if (id.startsWith('node:')) nodeScores.set(id.slice(5), await this.scoreAsserter(id.slice(5)));
      if (id.startsWith('url:')) {
        try {
          const h = new URL(id.slice(4)).hostname;
          hostOv.set(h, await this.override('host', h));
        } catch {
          /* scored as default */
        }
      }
    }
    const scores = ids.map((id) =>
      scoreSource(id, {
        asserter: (n) => nodeScores.get(n) ?? s.trust_default,
        hostOverride: (h) => hostOv.get(h),
        ebkhTrust: s.ebkh_trust,
        trustDefault: s.trust_default,
      }),
    );
    return claimTrust(asserter, scores);
  }

  // ------------------------------------------------------------ per-claim facts
  isStale(r: ClaimRecord): boolean {
    return this.d.now() >= Date.parse(r.asserted_at) + r.ttl_days * 86_400_000;
  }
  /** Valid supersessions of `r`: same asserter and not older (§4.3). */
  async supersededBy(r: ClaimRecord): Promise<string[]> {
    const out: string[] = [];
    for (const id of await this.d.store.linked('supersedes', r.claim_id)) {
      const n = await this.d.store.getClaim(id);
      if (n && n.asserted_by === r.asserted_by && n.asserted_at >= r.asserted_at) out.push(id);
    }
    return out.sort();
  }
  /** Self-retractions of `r` (a retraction by another node never counts). */
  async selfRetractions(r: ClaimRecord): Promise<ClaimRecord[]> {
    return (await this.d.store.retractionsOf(r.claim_id)).filter(
      (x) => x.asserted_by === r.asserted_by && x.subject === r.subject,
    );
  }
  /** A dispute is retracted when its disputer retracted the counterclaim. */
  async disputeRetracted(d: Dispute): Promise<boolean> {
    const rs = await this.d.store.retractionsOf(d.counterclaim_id);
    return rs.some((x) => x.asserted_by === d.disputer);
  }
  /** Disputes of `r` with their state: counted toward D or not. */
  async disputeFacts(r: ClaimRecord) {
    const s = this.d.settings();
    const out: { dispute: Dispute; retracted: boolean; counts: boolean }[] = [];
    for (const d of await this.d.store.disputesOf(r.claim_id)) {
      const cc = await this.d.store.getClaim(d.counterclaim_id);
      const wellFormed = !!cc && cc.asserted_by === d.disputer;
      const retracted = await this.disputeRetracted(d);
      const counts =
        wellFormed && !retracted && (await this.scoreAsserter(d.disputer)) >= s.dispute_min_trust;
      out.push({ dispute: d, retracted, counts });
    }
    return out;
  }
  /** Attestations of `r` that count: attester ≠ asserter and ≥ trusted. */
  async countedAttestations(r: ClaimRecord): Promise<Attestation[]> {
    return (await this.d.store.attestationsOf(r.claim_id)).filter((a) => {
      if (a.attester === r.asserted_by) return false;
      const lvl = this.d.levelOf(a.attester);
      return lvl === 'trusted' || lvl === 'anchor';
    });
  }
  /** The exact transition rules of §4.2. */
  async levels(r: ClaimRecord) {
    const s = this.d.settings();
    const A = await this.countedAttestations(r);
    const dfacts = await this.disputeFacts(r);
    const retractions = await this.selfRetractions(r);
    const D = dfacts.filter((x) => x.counts).length + retractions.length;
    const S = new Set(r.sources.map((x) => x.source_id));
    let base: EvidenceLevel;
    if (A.some((a) => FIRST_HAND.has(a.role)) || A.length >= s.attestations_required) base = 'attested';
    else if (S.size >= 2 && [...S].some((x) => x !== `node:${r.asserted_by}`)) base = 'cross_referenced';
    else if (S.size >= 1) base = 'cited';
    else base = 'unverified';
    return {
      evidence_level: (D >= 1 ? 'disputed' : base) as EvidenceLevel,
      base_level: base,
      attestations: A,
      disputes: dfacts,
      retractions,
      active_dispute_count: D,
    };
  }
  multiValued(p: string): boolean {
    return (
      (MULTI_VALUED_PREDICATES as readonly string[]).includes(p) ||
      this.d.settings().multi_valued_predicates.includes(p)
    );
  }
  /** Current = not stale, not superseded, not retracted. */
  async isCurrent(r: ClaimRecord): Promise<boolean> {
    if (this.isStale(r)) return false;
    if ((await this.supersededBy(r)).length) return false;
    return (await this.selfRetractions(r)).length === 0;
  }
  /** Advisory contradictions of a claim: other current claims, same s/p, other object, equal modifiers. */
  async contradictionsOf(r: ClaimRecord): Promise<string[]> {
    if (this.multiValued(r.predicate) || !(await this.isCurrent(r))) return [];
    const mods = canonicalString(r.modifiers);
    const out: string[] = [];
    for (const o of await this.d.store.match({ subject: r.subject, predicate: r.predicate })) {
      if (o.claim_id === r.claim_id || o.object === r.object) continue;
      if (canonicalString(o.modifiers) !== mods) continue;
      if (await this.isCurrent(o)) out.push(o.claim_id);
    }
    return out.sort();
  }

  async view(r: ClaimRecord): Promise<ClaimView> {
    const lv = await this.levels(r);
    return {
      record: r,
      evidence_level: lv.evidence_level,
      base_level: lv.base_level,
      trust_score: await this.trustOf(r),
      stale: this.isStale(r),
      superseded_by: await this.supersededBy(r),
      retracted: lv.retractions.length > 0,
      attestation_count: lv.attestations.length,
      active_dispute_count: lv.active_dispute_count,
      contradictions: await this.contradictionsOf(r),
    };
  }
  async get(id: string): Promise<ClaimView> {
    const r = await this.d.store.getClaim(id);
    if (!r)
      throw new HnError('claim_not_found', 'no claim with that ID is known', { details: { claim_id: id } });
    return this.view(r);
  }

  // ------------------------------------------------------------ query
  async query(q: {
    pattern: TriplePattern;
    min_evidence: EvidenceLevel;
    include_stale: boolean;
    include_superseded: boolean;
    limit: number;
    offset: number;
  }) {
    const rows = await this.d.store.match(q.pattern);
    const views: ClaimView[] = [];
    for (const r of rows) {
      if (!q.include_stale && this.isStale(r)) continue;
      const v = await this.view(r);
      if (!q.include_superseded && v.superseded_by.length) continue;
      if (q.min_evidence === 'disputed') {
        if (v.evidence_level !== 'disputed') continue;
      } else if (LEVEL_RANK[v.base_level] < LEVEL_RANK[q.min_evidence]) continue;
      views.push(v);
    }
    sortViews(views);
    const page = views.slice(q.offset, q.offset + q.limit);
    const groups = new Map<string, { subject: string; predicate: string; claim_ids: Set<string> }>();
    for (const v of page) {
      if (!v.contradictions.length) continue;
      const k = canonicalString([v.record.subject, v.record.predicate]);
      const g = groups.get(k) ?? {
        subject: v.record.subject,
        predicate: v.record.predicate,
        claim_ids: new Set(),
      };
      g.claim_ids.add(v.record.claim_id);
      for (const c of v.contradictions) g.claim_ids.add(c);
      groups.set(k, g);
    }
    return {
      claims: page,
      next_offset: q.offset + q.limit < views.length ? q.offset + q.limit : null,
      contradictions: [...groups.values()].map((g) => ({
        subject: g.subject,
        predicate: g.predicate,
        claim_ids: [...g.claim_ids].sort(),
      })),
    };
  }

  // ------------------------------------------------------------ trace (§4.5)
  async trace(id: string, maxDepthIn: number) {
    const s = this.d.settings();
    const rootRec = await this.d.store.getClaim(id);
    if (!rootRec)
      throw new HnError('claim_not_found', 'no claim with that ID is known', { details: { claim_id: id } });
    const max_depth_applied = Math.min(maxDepthIn, s.max_provenance_depth);
    // 1. BFS for minimum depths; expand only nodes with depth < max_depth
    const depth = new Map<string, number>([[id, 0]]);
    const recs = new Map<string, ClaimRecord>([[id, rootRec]]);
    const missing = new Set<string>();
    let truncated = false;
    let frontier = [id];
    while (frontier.length) {
      const next: string[] = [];
      for (const cid of frontier) {
        const r = recs.get(cid)!;
        const dd = depth.get(cid)!;
        if (dd >= max_depth_applied) {
          if (r.derived_from.length) truncated = true;
          continue;
        }
        for (const p of r.derived_from) {
          if (depth.has(p) || missing.has(p)) continue;
          if (recs.size >= TRACE_NODE_CAP) {
            truncated = true;
            continue;
          }
          const pr = await this.d.store.getClaim(p);
          if (!pr) {
            missing.add(p);
            continue;
          }
          depth.set(p, dd + 1);
          recs.set(p, pr);
          next.push(p);
        }
      }
      frontier = next;
    }
    // 2. iterative DFS, children in ClaimID order, white/grey/black; a grey hit = cycle
    const colour = new Map<string, 1 | 2>();
    const post: string[] = [];
    let cycle_detected = false;
    const children = (cid: string) =>
      (depth.get(cid)! < max_depth_applied ? recs.get(cid)!.derived_from : []).filter((p) => recs.has(p));
    const stack: { id: string; i: number; kids: string[] }[] = [{ id, i: 0, kids: children(id) }];
    colour.set(id, 1);
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      if (top.i < top.kids.length) {
        const k = top.kids[top.i++]!;
        const c = colour.get(k);
        if (c === 1) cycle_detected = true;
        else if (c === undefined) {
          colour.set(k, 1);
          stack.push({ id: k, i: 0, kids: children(k) });
        }
      } else {
        colour.set(top.id, 2);
        post.push(top.id);
        stack.pop();
      }
    }
    const order = post.reverse();
    // 3–4. nodes, union of sources, attestations and disputes
    const nodes = [];
    const sources = new Map<string, unknown>();
    const attestations: Attestation[] = [];
    const disputes: (Dispute & { retracted: boolean })[] = [];
    for (const cid of order) {
      const r = recs.get(cid)!;
      const lv = await this.levels(r);
      nodes.push({
        claim_id: cid,
        depth: depth.get(cid)!,
        parents: [...r.derived_from].filter((p) => recs.has(p) || missing.has(p)).sort(),
        subject: r.subject,
        predicate: r.predicate,
        object: r.object,
        asserted_by: r.asserted_by,
        asserted_at: r.asserted_at,
        evidence_level: lv.evidence_level,
      });
      for (const src of r.sources) sources.set(canonicalString(src), src);
      attestations.push(...(await this.d.store.attestationsOf(cid)));
      for (const d of lv.disputes) disputes.push({ ...d.dispute, retracted: d.retracted });
    }
    const root = await this.view(rootRec);
    return {
      root,
      nodes,
      sources: [...sources.values()],
      attestations,
      disputes,
      evidence_level: root.evidence_level,
      trust_score: root.trust_score,
      max_depth_applied,
      truncated,
      missing: [...missing].sort(),
      cycle_detected,
    };
  }

  // ------------------------------------------------------------ summary (§3.4)
  async summary(subject: string) {
    const s = this.d.settings();
    const rows = await this.d.store.match({ subject });
    const byPred = new Map<string, ClaimRecord[]>();
    for (const r of rows) byPred.set(r.predicate, [...(byPred.get(r.predicate) ?? []), r]);
    const preds = [...byPred.entries()].sort((a, b) => b[1].length - a[1].length || (a[0] < b[0] ? -1 : 1));
    const truncated = preds.length > s.summary_max_predicates;
    const out = [];
    const disputes: Dispute[] = [];
    const sources = new Set<string>();
    for (const [predicate, recs] of preds.slice(0, s.summary_max_predicates)) {
      const views: ClaimView[] = [];
      for (const r of recs) {
        const v = await this.view(r);
        views.push(v);
        for (const x of r.sources) sources.add(x.source_id);
        disputes.push(...(await this.d.store.disputesOf(r.claim_id)));
      }
      sortViews(views);
      const best = views.find((v) => !v.stale && !v.superseded_by.length && !v.retracted) ?? null;
      out.push({
        predicate,
        best: best ? best.record.claim_id : null,
        contradiction: views.some((v) => v.contradictions.length > 0),
        claims: views,
      });
    }
    return {
      subject,
      predicates: out,
      disputes,
      sources: [...sources].sort(),
      claim_count: rows.length,
      truncated,
    };
  }
}

/** Evidence rank (disputed first), trust desc, asserted_at desc, claim_id asc. */
export function sortViews(v: ClaimView[]): void {
  v.sort(
    (a, b) =>
      LEVEL_RANK[b.evidence_level] - LEVEL_RANK[a.evidence_level] ||
      b.trust_score - a.trust_score ||
      (a.record.asserted_at < b.record.asserted_at
        ? 1
        : a.record.asserted_at > b.record.asserted_at
          ? -1
          : 0) ||
      (a.record.claim_id < b.record.claim_id ? -1 : a.record.claim_id > b.record.claim_id ? 1 : 0),
  );
}

export { RETRACTED };
