/** §7.6 trace and level properties (fast-check), over real stores (memory adapter) and real signatures. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { openMemoryStorage } from '../../engine/store/memory.js';
import { keyPairFromSeed, signObject } from '../../engine/identity/identity.js';
import { EvidenceService } from '../../engine/evidence/service.js';
import { EVIDENCE_SCHEMA } from '../../engine/evidence/store.js';
import { LEVEL_RANK } from '../../engine/evidence/query.js';
import type { NodeID } from '../../engine/core/types.js';

let n = 0;
async function service(seed = 1, levels: Map<string, string> = new Map()) {
  const kp = keyPairFromSeed(new Uint8Array(32).fill(seed));
  const db = await openMemoryStorage(`ev-props-${++n}-${Math.random()}`, EVIDENCE_SCHEMA);
  const events: { type: string; data: Record<string, unknown> }[] = [];
  const svc = new EvidenceService({
    self: kp.nodeId,
    sign: (o) => signObject(kp, o),
    db,
    append: async (type, data) => void events.push({ type, data }),
    levelOf: (x: NodeID) => (levels.get(x) as never) ?? 'member',
    now: () => Date.parse('2026-03-01T12:00:00Z'),
  });
  return { svc, kp, events };
}

/** A random DAG: node i derives from some nodes j < i. */
const dagArb = fc
  .integer({ min: 1, max: 14 })
  .chain((size) =>
    fc.tuple(
      fc.constant(size),
      fc.array(fc.array(fc.nat(), { maxLength: 3 }), { minLength: size, maxLength: size }),
      fc.integer({ min: 0, max: 8 }),
    ),
  );

describe('§7.6 trace properties', () => {
  it('the node set is exactly what is reachable within max_depth, in topological order, each once', async () => {
    await fc.assert(
      fc.asyncProperty(dagArb, async ([size, parentsRaw, maxDepth]) => {
        const { svc } = await service();
        const ids: string[] = [];
        const parents: string[][] = [];
        for (let i = 0; i < size; i++) {
          const ps = i === 0 ? [] : [...new Set(parentsRaw[i]!.map((p) => ids[p % i]!))];
          parents.push(ps);
          ids.push(
            (await svc.assert({ subject: 'dag', predicate: 'p', object: `n${i}`, derived_from: ps }))
              .claim_id,
          );
        }
        const root = ids[size - 1]!;
        const tr = await svc.trace({ claim_id: root, max_depth: maxDepth });
        // oracle: BFS minimum depths over the same edges
        const depth = new Map<string, number>([[root, 0]]);
        let frontier = [root];
        while (frontier.length) {
          const next: string[] = [];
          for (const id of frontier) {
            const d = depth.get(id)!;
            if (d >= maxDepth) continue;
            for (const p of parents[ids.indexOf(id)]!)
              if (!depth.has(p)) {
                depth.set(p, d + 1);
                next.push(p);
              }
          }
          frontier = next;
        }
        const got = tr.nodes.map((x) => x.claim_id);
        expect(new Set(got).size).toBe(got.length);
        expect([...got].sort()).toEqual([...depth.keys()].sort());
        for (const x of tr.nodes) expect(x.depth).toBe(depth.get(x.claim_id));
        // topological: every parent listed comes after its child
        const pos = new Map(got.map((id, i) => [id, i]));
        for (const x of tr.nodes)
          for (const p of x.parents)
            if (pos.has(p) && depth.get(x.claim_id)! < maxDepth)
              expect(pos.get(p)!).toBeGreaterThan(pos.get(x.claim_id)!);
        expect(tr.cycle_detected).toBe(false);
        expect(tr.max_depth_applied).toBe(maxDepth);
      }),
      { numRuns: 25 },
    );
  });

  it('the level never drops as sources or attestations are added', async () => {
    const steps = fc.array(
      fc.oneof(
        fc.record({
          kind: fc.constant('source' as const),
          id: fc.constantFrom('doc:a', 'doc:b', 'url:https://x.example/', 'SELF'),
        }),
        fc.record({
          kind: fc.constant('attest' as const),
          who: fc.integer({ min: 2, max: 6 }),
          role: fc.constantFrom('expert', 'first-hand witness', 'official record holder'),
        }),
      ),
      { maxLength: 6 },
    );
    await fc.assert(
      fc.asyncProperty(steps, async (ss) => {
        const levels = new Map<string, string>();
        const attesters = [2, 3, 4, 5, 6].map((s) => keyPairFromSeed(new Uint8Array(32).fill(s)));
        attesters.forEach((k, i) => levels.set(k.nodeId, i % 2 ? 'member' : 'trusted'));
        const { svc, kp } = await service(1, levels);
        const sources: { source_id: string }[] = [];
        let last = -1;
        for (let i = 0; i <= ss.length; i++) {
          // the claim with the sources so far, plus every attestation so far
          const { claim_id } = await svc.assert({ subject: 'lvl', predicate: 'p', object: 'o', sources });
          for (const st of ss.slice(0, i))
            if (st.kind === 'attest') {
              const k = attesters[st.who - 2]!;
              const a = signObject(k, {
                claim_id,
                attester: k.nodeId,
                attested_at: '2026-03-01T12:00:00Z',
                role: st.role,
                rationale: 'r',
              });
              await svc.ingest({
                event_type: 'evidence.claim.attested',
                event_id: 'e',
                author: k.nodeId,
                data: { attestation: a },
              });
            }
          const lvl = LEVEL_RANK[(await svc.get({ claim_id })).evidence_level];
          expect(lvl).toBeGreaterThanOrEqual(last);
          last = lvl;
          const st = ss[i];
          if (st?.kind === 'source')
            sources.push({ source_id: st.id === 'SELF' ? `node:${kp.nodeId}` : st.id });
        }
      }),
      { numRuns: 25 },
    );
  });
});
