/**
 * M30 store (digest §6): the module's own object stores over the engine's StorageAdapter
 * (IndexedDB in the tab, fake-indexeddb or memory in Node). Append-only for records: a record is
 * written once under its content address and never changed or deleted.
 *
 * The adapter has no multiEntry indexes, so the multi-valued indexes of §6 (`by_parent`,
 * `by_supersedes`, `by_source`) are rows of `evidence_links` ({rel, target, claim_id}) indexed
 * `by_target` [rel, target]; they are written in the same transaction as the claim.
 */
import { canonicalString } from '../core/canonical.js';
import { HnError } from '../core/errors.js';
import type { NodeID } from '../core/types.js';
import type { DbSchema, StorageAdapter, Tx } from '../store/types.js';
import { geoOf, type Attestation, type ClaimRecord, type Dispute } from './claim.js';

export const S = {
  claims: 'evidence_claims',
  links: 'evidence_links',
  attestations: 'evidence_attestations',
  disputes: 'evidence_disputes',
  drafts: 'evidence_drafts',
  trust: 'evidence_trust',
  sync: 'evidence_sync',
  firstSeen: 'evidence_first_seen',
} as const;
export const ALL_STORES = Object.values(S);
const RECORD_STORES = [S.claims, S.links, S.attestations, S.disputes, S.firstSeen];

export const EVIDENCE_SCHEMA: DbSchema = {
  version: 1,
  stores: [
    {
      name: S.claims,
      keyPath: 'claim_id',
      indexes: [
        { name: 'by_subject', keyPath: 'subject' },
        { name: 'by_subject_predicate', keyPath: ['subject', 'predicate'] },
        { name: 'by_triple', keyPath: ['subject', 'predicate', 'object'] },
        { name: 'by_predicate_object', keyPath: ['predicate', 'object'] },
        { name: 'by_object', keyPath: 'object' },
        { name: 'by_asserter', keyPath: 'asserted_by' },
        { name: 'by_asserted_at', keyPath: ['asserted_at', 'claim_id'] },
        { name: 'by_geo', keyPath: 'geo' },
      ],
    },
    { name: S.links, keyPath: 'k', indexes: [{ name: 'by_target', keyPath: ['rel', 'target'] }] },
    { name: S.attestations, keyPath: 'k', indexes: [{ name: 'by_claim', keyPath: 'claim_id' }] },
    {
      name: S.disputes,
      keyPath: 'k',
      indexes: [
        { name: 'by_claim', keyPath: 'claim_id' },
        { name: 'by_counterclaim', keyPath: 'counterclaim_id' },
        { name: 'by_disputer', keyPath: 'disputer' },
      ],
    },
    { name: S.drafts, keyPath: 'draft_id' },
    { name: S.trust, keyPath: 'k' },
    { name: S.sync, keyPath: 'k' },
    { name: S.firstSeen, keyPath: 'node' },
  ],
};

export type LinkRel = 'parent' | 'supersedes' | 'source';
interface ClaimRow {
  claim_id: string;
  subject: string;
  predicate: string;
  object: string;
  asserted_by: string;
  asserted_at: string;
  geo?: [number, number];
  origin: string | null;
  record: ClaimRecord;
}
interface LinkRow {
  k: string;
  rel: LinkRel;
  target: string;
  claim_id: string;
}
interface AttRow {
  k: [string, string];
  claim_id: string;
  attestation: Attestation;
}
interface DispRow {
  k: [string, string];
  claim_id: string;
  counterclaim_id: string;
  disputer: string;
  dispute: Dispute;
}

export interface TriplePattern {
  subject?: string;
  predicate?: string;
  object?: string;
}

export class EvidenceStore {
  constructor(readonly db: StorageAdapter) {}

  // ------------------------------------------------------------ writes (idempotent, append-only)
  /** Store a verified claim and its link rows; returns false when it was already held. */
  async putClaim(r: ClaimRecord, origin: string | null = null): Promise<boolean> {
    return this.db.transaction([S.claims, S.links, S.firstSeen], 'readwrite', (tx) =>
      this.putClaimTx(tx, r, origin),
    );
  }
  async putClaimTx(tx: Tx, r: ClaimRecord, origin: string | null): Promise<boolean> {
    if (await tx.get(S.claims, r.claim_id)) return false;
    const row: ClaimRow = {
      claim_id: r.claim_id,
      subject: r.subject,
      predicate: r.predicate,
      object: r.object,
      asserted_by: r.asserted_by,
      asserted_at: r.asserted_at,
      origin,
      record: r,
    };
    const g = geoOf(r.object);
    if (g) row.geo = g;
    await tx.put(S.claims, row);
    const link = (rel: LinkRel, target: string) =>
      tx.put<LinkRow>(S.links, {
        k: `${rel}\u0000${target}\u0000${r.claim_id}`,
        rel,
        target,
        claim_id: r.claim_id,
      });
    for (const p of r.derived_from) await link('parent', p);
    for (const p of r.supersedes) await link('supersedes', p);
    for (const s of new Set(r.sources.map((x) => x.source_id))) await link('source', s);
    await this.seenTx(tx, r.asserted_by, r.asserted_at);
    return true;
  }
  private async seenTx(tx: Tx, node: string, at: string) {
    const cur = await tx.get<{ node: string; first_seen: string }>(S.firstSeen, node);
    if (!cur || at < cur.first_seen) await tx.put(S.firstSeen, { node, first_seen: at });
  }
  async putAttestation(a: Attestation): Promise<boolean> {
    return this.db.transaction([S.attestations, S.firstSeen], 'readwrite', async (tx) => {
      const k: [string, string] = [a.claim_id, a.attester];
      if (await tx.get(S.attestations, k)) return false;
      await tx.put<AttRow>(S.attestations, { k, claim_id: a.claim_id, attestation: a });
      await this.seenTx(tx, a.attester, a.attested_at);
      return true;
    });
  }
  async putDispute(d: Dispute): Promise<boolean> {
    return this.db.transaction([S.disputes], 'readwrite', async (tx) => {
      const k: [string, string] = [d.claim_id, d.counterclaim_id];
      if (await tx.get(S.disputes, k)) return false;
      await tx.put<DispRow>(S.disputes, {
        k,
        claim_id: d.claim_id,
        counterclaim_id: d.counterclaim_id,
        disputer: d.disputer,
        dispute: d,
      });
      return true;
    });
  }

  // ------------------------------------------------------------ reads
  async getClaim(id: string): Promise<ClaimRecord | undefined> {
    return (await this.db.get<ClaimRow>(S.claims, id))?.record;
  }
  async hasClaim(id: string): Promise<boolean> {
    return (await this.db.count(S.claims, { key: id })) > 0;
  }
  async attestationsOf(id: string): Promise<Attestation[]> {
    return (await this.db.getAll<AttRow>(S.attestations, { index: 'by_claim', key: id })).map(
      (r) => r.attestation,
    );
  }
  async attestation(id: string, attester: NodeID): Promise<Attestation | undefined> {
    return (await this.db.get<AttRow>(S.attestations, [id, attester]))?.attestation;
  }
  async disputesOf(id: string): Promise<Dispute[]> {
    return (await this.db.getAll<DispRow>(S.disputes, { index: 'by_claim', key: id })).map((r) => r.dispute);
  }
  async disputesByCounterclaim(id: string): Promise<Dispute[]> {
    return (await this.db.getAll<DispRow>(S.disputes, { index: 'by_counterclaim', key: id })).map(
      (r) => r.dispute,
    );
  }
  async disputesBy(node: string): Promise<Dispute[]> {
    return (await this.db.getAll<DispRow>(S.disputes, { index: 'by_disputer', key: node })).map(
      (r) => r.dispute,
    );
  }
  /** Claims linking to `target` by `rel` (`parent` = derivatives_of, `supersedes`, `source`). */
  async linked(rel: LinkRel, target: string): Promise<string[]> {
    const rows = await this.db.getAll<LinkRow>(S.links, { index: 'by_target', key: [rel, target] });
    return rows.map((r) => r.claim_id);
  }
  /** Claims with predicate `retracted` whose object is `target`. */
  async retractionsOf(target: string): Promise<ClaimRecord[]> {
    return this.byIndex('by_predicate_object', ['retracted', target]);
  }
  async claimsBy(node: string): Promise<ClaimRecord[]> {
    return this.byIndex('by_asserter', node);
  }
  async countClaimsBy(node: string): Promise<number> {
    return this.db.count(S.claims, { index: 'by_asserter', key: node });
  }
  async firstSeen(node: string): Promise<string | undefined> {
    return (await this.db.get<{ first_seen: string }>(S.firstSeen, node))?.first_seen;
  }
  private async byIndex(index: string, key: string | string[]): Promise<ClaimRecord[]> {
    return (await this.db.getAll<ClaimRow>(S.claims, { index, key })).map((r) => r.record);
  }

  /** Claims matching a triple pattern through the most selective index (≥1 field set). */
  async match(p: TriplePattern): Promise<ClaimRecord[]> {
    const { subject: s, predicate: pr, object: o } = p;
    let rows: ClaimRecord[];
    if (s !== undefined && pr !== undefined && o !== undefined)
      rows = await this.byIndex('by_triple', [s, pr, o]);
    else if (s !== undefined && pr !== undefined) rows = await this.byIndex('by_subject_predicate', [s, pr]);
    else if (pr !== undefined && o !== undefined) rows = await this.byIndex('by_predicate_object', [pr, o]);
    else if (s !== undefined) rows = await this.byIndex('by_subject', s);
    else if (o !== undefined) rows = await this.byIndex('by_object', o);
    else if (pr !== undefined)
      rows = (
        await this.db.getAll<ClaimRow>(S.claims, {
          index: 'by_predicate_object',
          range: { lower: [pr], upper: [pr, []] },
        })
      ).map((r) => r.record);
    else rows = [];
    return rows.filter(
      (r) =>
        (s === undefined || r.subject === s) &&
        (pr === undefined || r.predicate === pr) &&
        (o === undefined || r.object === o),
    );
  }
  /** The same answer by a full scan (bench baseline and a test oracle). */
  async scan(p: TriplePattern): Promise<ClaimRecord[]> {
    const rows = await this.db.getAll<ClaimRow>(S.claims);
    return rows
      .map((r) => r.record)
      .filter(
        (r) =>
          (p.subject === undefined || r.subject === p.subject) &&
          (p.predicate === undefined || r.predicate === p.predicate) &&
          (p.object === undefined || r.object === p.object),
      );
  }
  /** Claims whose `geo:` object lies in [minLon, minLat, maxLon, maxLat]. */
  async bbox(b: [number, number, number, number], predicate?: string): Promise<ClaimRecord[]> {
    const [minLon, minLat, maxLon, maxLat] = b;
    const rows = await this.db.getAll<ClaimRow>(S.claims, {
      index: 'by_geo',
      range: { lower: [minLat, -Infinity], upper: [maxLat, Infinity] },
    });
    return rows
      .filter((r) => r.geo && r.geo[1] >= minLon && r.geo[1] <= maxLon)
      .filter((r) => predicate === undefined || r.predicate === predicate)
      .map((r) => r.record);
  }
  async subjects(): Promise<string[]> {
    const rows = await this.db.getAll<ClaimRow>(S.claims);
    return [...new Set(rows.map((r) => r.subject))].sort();
  }
  async allClaims(): Promise<ClaimRecord[]> {
    return (await this.db.getAll<ClaimRow>(S.claims)).map((r) => r.record);
  }

  // ------------------------------------------------------------ small local state
  async getKv<T>(store: string, k: string): Promise<T | undefined> {
    return (await this.db.get<{ k: string; v: T }>(store, k))?.v;
  }
  async putKv(store: string, k: string, v: unknown): Promise<void> {
    await this.db.put(store, { k, v });
  }

  /** Canonical dump of every store (tests compare dumps before and after bad input). */
  async dump(stores: readonly string[] = ALL_STORES): Promise<string> {
    const out: Record<string, unknown[]> = {};
    for (const s of stores) out[s] = await this.db.getAll(s);
    return canonicalString(out);
  }
  /** Dump of the replicated record stores only. */
  dumpRecords(): Promise<string> {
    return this.dump(RECORD_STORES);
  }
}

/** DFS over the ancestors with an on-stack set: a revisit of a grey node or the new ID → cycle. */
export async function cycleGuard(store: EvidenceStore, newId: string, parents: string[]): Promise<void> {
  const colour = new Map<string, 1 | 2>();
  const cycle = () => {
    throw new HnError('evidence_cycle_detected', 'the derivation chain forms a cycle', {
      details: { claim_id: newId },
    });
  };
  colour.set(newId, 1);
  const stack: { id: string; kids: string[]; i: number }[] = [{ id: newId, kids: parents, i: 0 }];
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    if (top.i >= top.kids.length) {
      colour.set(top.id, 2);
      stack.pop();
      continue;
    }
    const k = top.kids[top.i++]!;
    const c = colour.get(k);
    if (c === 1) cycle();
    if (c === 2) continue;
    const r = await store.getClaim(k);
    colour.set(k, 1);
    stack.push({ id: k, kids: r ? r.derived_from : [], i: 0 });
  }
}
