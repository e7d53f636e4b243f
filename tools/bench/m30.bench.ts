/**
 * M30 evidence figures (Node, fake-indexeddb: the IndexedDB implementation the unit tests use):
 * - `m30.indexed_query_speedup_vs_scan`: full-scan time ÷ indexed triple-query time over the same
 *   10,000-claim store, same run (goal ≥ 10);
 * - `m30.trace_us_per_node`: provenance trace of a 1,000-node DAG (root → 32 → 967), µs per node;
 * - `m30.verify_claims_per_s`: §3.3 verification (schema, re-normalisation, ID, Ed25519) of fresh records.
 */
import 'fake-indexeddb/auto';
import type { BenchFilter } from './run.js';
import { keyPairFromSeed, signObject } from '../../engine/identity/identity.js';
import { openIndexedDbStorage } from '../../engine/store/indexeddb.js';
import {
  buildClaim,
  normaliseDraft,
  verifyClaimRecord,
  type ClaimRecord,
} from '../../engine/evidence/claim.js';
import { EVIDENCE_SCHEMA, EvidenceStore, S } from '../../engine/evidence/store.js';
import { EvidenceService } from '../../engine/evidence/service.js';

export const names = [
  'm30.indexed_query_speedup_vs_scan',
  'm30.trace_us_per_node',
  'm30.verify_claims_per_s',
];

const kp = keyPairFromSeed(new Uint8Array(32).fill(42));
const AT = '2026-03-01T12:00:00Z';
const claim = (
  subject: string,
  predicate: string,
  object: string,
  derived_from: string[] = [],
): ClaimRecord =>
  signObject(
    kp,
    buildClaim(normaliseDraft({ subject, predicate, object, derived_from }, AT), kp.nodeId, AT) as never,
  ) as unknown as ClaimRecord;

async function putAll(store: EvidenceStore, recs: ClaimRecord[]) {
  for (let i = 0; i < recs.length; i += 500)
    await store.db.transaction([S.claims, S.links, S.firstSeen], 'readwrite', async (tx) => {
      for (const r of recs.slice(i, i + 500)) await store.putClaimTx(tx, r, null);
    });
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function querySpeedup(): Promise<number> {
  const db = await openIndexedDbStorage(`bench-m30-q-${Date.now()}`, EVIDENCE_SCHEMA);
  const store = new EvidenceStore(db);
  const recs: ClaimRecord[] = [];
  for (let i = 0; i < 10_000; i++) recs.push(claim(`subject ${i % 1000}`, `p${i % 7}`, `object ${i}`));
  await putAll(store, recs);
  const probes = [...Array(20)].map((_, j) => recs[(j * 487) % recs.length]!);
  const pat = (r: ClaimRecord) => ({ subject: r.subject, predicate: r.predicate, object: r.object });
  for (const r of probes.slice(0, 3)) await store.match(pat(r)); // warm-up
  const idx: number[] = [];
  for (const r of probes) {
    const t = performance.now();
    const got = await store.match(pat(r));
    idx.push(performance.now() - t);
    if (got.length !== 1) throw new Error('indexed query missed');
  }
  const scan: number[] = [];
  for (const r of probes.slice(0, 5)) {
    const t = performance.now();
    const got = await store.scan(pat(r));
    scan.push(performance.now() - t);
    if (got.length !== 1) throw new Error('scan missed');
  }
  await db.close();
  return median(scan) / median(idx);
}

async function traceUsPerNode(): Promise<number> {
  const db = await openIndexedDbStorage(`bench-m30-t-${Date.now()}`, EVIDENCE_SCHEMA);
  const svc = new EvidenceService({
    self: kp.nodeId,
    sign: (o) => signObject(kp, o),
    db,
    append: async () => undefined,
    levelOf: () => 'member',
    now: () => Date.parse(AT),
  });
  const layer2 = [...Array(967)].map((_, i) => claim('dag', 'p', `l2 ${i}`));
  const layer1 = [...Array(32)].map((_, i) =>
    claim(
      'dag',
      'p',
      `l1 ${i}`,
      [...Array(31)].map((__, k) => layer2[(i * 31 + k) % 967]!.claim_id),
    ),
  );
  const root = claim(
    'dag',
    'p',
    'root',
    layer1.map((r) => r.claim_id),
  );
  await putAll(svc.store, [...layer2, ...layer1, root]);
  await svc.trace({ claim_id: root.claim_id, max_depth: 2 }); // warm-up
  const runs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    const tr = await svc.trace({ claim_id: root.claim_id, max_depth: 8 });
    runs.push(performance.now() - t);
    if (tr.nodes.length !== 1000) throw new Error(`trace saw ${tr.nodes.length} nodes`);
  }
  await db.close();
  return (median(runs) * 1000) / 1000;
}

function verifyPerS(): number {
  const recs = [...Array(600)].map((_, i) => claim(`verify ${i}`, 'p', `o ${i}`));
  for (const r of recs.slice(0, 100)) verifyClaimRecord(r); // warm-up (these 100 are not timed again)
  const t = performance.now();
  for (const r of recs.slice(100)) verifyClaimRecord(r);
  return 500 / ((performance.now() - t) / 1000);
}

export async function figures(want: BenchFilter): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  if (want('m30.indexed_query_speedup_vs_scan'))
    out['m30.indexed_query_speedup_vs_scan'] = await querySpeedup();
  if (want('m30.trace_us_per_node')) out['m30.trace_us_per_node'] = await traceUsPerNode();
  if (want('m30.verify_claims_per_s')) out['m30.verify_claims_per_s'] = verifyPerS();
  return out;
}
