/** M31 signed witness statements: peers sign the checkpoint heads they receive, the owner's export
 * carries them, and any verifier — one that never saw the old chain too — catches a rewritten chain. */
import 'fake-indexeddb/auto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  buildExport,
  checkpointBody,
  entryHash,
  leafOf,
  makeEntry,
  toJsonl,
  verifyExport,
  type AuditEntry,
} from '../../engine/civdef/audit.js';
import { signStatement, verifyStatement, type WitnessStatement } from '../../engine/civdef/witness.js';
import { keyPairFromSeed } from '../../engine/identity/identity.js';
import type { HearthNode } from '../../engine/index.js';
import {
  PUB,
  ROGUE,
  ROOT,
  cert,
  civNode,
  draft,
  dump,
  link,
  settle,
  signer,
  svcOf,
} from './civdef-helpers.js';
import { seedOf } from './helpers.js';

const WEHR = 'DE.NRW.Kleve.Issum.Feuerwehr.Wehrleiter';
const ISSUM = 'DE.NRW.Kleve.Issum';
const HEAD = {
  chain: ROOT.nodeId,
  seq: 7,
  head_hash: 'ab'.repeat(32),
  tree_size: 8,
  tree_root: 'cd'.repeat(32),
};

async function exportText(n: HearthNode): Promise<string> {
  const lines: string[] = [];
  for await (const f of n.stream('experimental.civdef.audit.export', {}))
    lines.push((f.data as { line: string }).line);
  return lines.join('\n') + '\n';
}

/** A self-consistent rewrite of A's chain from `from` on, signed with A's own key (the owner's forgery). */
function rewrite(rows: { entry: AuditEntry; payload: unknown }[], seed: number, from: number): string {
  const kp = keyPairFromSeed(seedOf(seed));
  const sign = signer(kp);
  const entries: AuditEntry[] = [];
  const payloads = new Map<number, unknown>();
  let prevCp: { tree_size: number; tree_root: string } | null = null;
  for (const r of rows) {
    const e = r.entry;
    if (e.seq < from) {
      entries.push(e);
      payloads.set(e.seq, r.payload);
      continue;
    }
    const isCp = e.event === 'checkpoint';
    const payload = isCp
      ? checkpointBody(entries, prevCp)
      : { ...(r.payload as Record<string, unknown>), rewritten: true };
    const { signature: _s, payload_sha: _p, ...fields } = e;
    const ne = makeEntry(
      sign,
      { ...fields, prev_sha: entryHash(entries[entries.length - 1]!) } as never,
      payload,
    );
    if (isCp) prevCp = payload as { tree_size: number; tree_root: string };
    entries.push(ne);
    payloads.set(ne.seq, payload);
  }
  const frames = buildExport(sign, {
    chain: kp.nodeId,
    entries,
    payloadOf: (e) => payloads.get(e.seq) ?? null,
    include: () => true,
    filter: {},
    exported_at: '2026-12-06T08:00:00Z',
    verify: { ok: true, checked: entries.length, head_seq: entries.length - 1, head_hash: '' },
    allLeaves: entries.map(leafOf),
  });
  return toJsonl(frames);
}

describe('M31 witness statements', () => {
  it('sign/verify round-trips; any changed field, extra field or foreign signer fails (property)', () => {
    const s = signStatement(signer(ROGUE), HEAD, ROGUE.nodeId, '2026-12-06T08:00:00Z');
    expect(verifyStatement(s)).toBe(true);
    fc.assert(
      fc.property(
        fc.constantFrom<keyof WitnessStatement>(
          'chain',
          'seq',
          'head_hash',
          'tree_size',
          'tree_root',
          'witness',
          'witnessed_at',
          'signature',
          't',
        ),
        fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
        (k, v) => {
          fc.pre(JSON.stringify(v) !== JSON.stringify(s[k]));
          expect(verifyStatement({ ...s, [k]: v })).toBe(false);
        },
      ),
    );
    expect(verifyStatement({ ...s, extra: 1 })).toBe(false);
    // a witness may not vouch for its own chain; a statement signed by someone else fails
    expect(verifyStatement(signStatement(signer(ROGUE), HEAD, ROOT.nodeId, '2026-12-06T08:00:00Z'))).toBe(
      false,
    );
    expect(
      verifyStatement(
        signStatement(signer(ROOT), { ...HEAD, chain: ROGUE.nodeId }, ROOT.nodeId, '2026-12-06T08:00:00Z'),
      ),
    ).toBe(true);
    for (const junk of [null, 1, 'x', [], {}, { ...s, signature: 'zz' }])
      expect(verifyStatement(junk)).toBe(false);
  });

  it("a peer signs the owner's checkpoint; the export carries it; a rewrite is caught by a verifier that never saw the old chain", async () => {
    const A = await civNode(141, { home_region: ISSUM });
    const B = await civNode(142, { home_region: ISSUM }, A.id);
    await link(A, B);
    const wc = cert(ROOT, A.id, WEHR, ISSUM, PUB);
    await A.call('experimental.civdef.role.register', { cert: wc });
    await A.call('experimental.civdef.alert.publish', draft(wc.cert_id));
    await svcOf(A).checkpoint();
    await settle(A, B);
    await settle(A, B);
    // B signed exactly one statement for A's head, and A holds it
    const onB = await svcOf(B).witnessStatements(A.id);
    expect(onB).toHaveLength(1);
    expect(onB[0]).toMatchObject({ chain: A.id, witness: B.id });
    expect(verifyStatement(onB[0])).toBe(true);
    const onA = await svcOf(A).witnessStatements();
    expect(onA).toEqual(onB);
    // a second delivery of the same head signs nothing new
    await svcOf(B).idle();
    expect(await svcOf(B).witnessStatements(A.id)).toHaveLength(1);

    const good = await exportText(A);
    expect(good.split('\n').filter((l) => l.includes('"type":"witness"'))).toHaveLength(1);
    expect(verifyExport(good, { trustedChains: [A.id] })).toMatchObject({ ok: true, witness_statements: 1 });

    // the owner rewrites its chain from the published entry on, self-consistently, with its own key
    const rows = await svcOf(A).auditRows();
    const published = rows.find((r) => r.entry.event === 'published')!.seq;
    const forged = rewrite(rows, 141, published);
    expect(verifyExport(forged)).toMatchObject({ ok: true }); // alone it looks fine
    // a verifier holding only B's signed statement (never saw A's old chain) catches it
    expect(verifyExport(forged, { statements: onB })).toMatchObject({
      ok: false,
      first_bad_seq: onB[0]!.seq,
    });
    // the forger pasting B's statement into the file does not help either
    const lines = forged.trimEnd().split('\n');
    lines.splice(lines.length - 1, 0, JSON.stringify({ type: 'witness', statement: onB[0] }));
    expect(verifyExport(lines.join('\n'))).toMatchObject({ ok: false, first_bad_seq: onB[0]!.seq });
    // a statement frame with a flipped byte → named, not counted
    const bad = good.replace(
      /("type":"witness".*"head_hash":")(.)/,
      (_m, a, c) => a + (c === '0' ? '1' : '0'),
    );
    expect(verifyExport(bad)).toMatchObject({ ok: false, reason: 'witness statement invalid' });
    for (const n of [A, B]) await n.close();
  });

  it('a forged statement event (bad signature, or not signed by its author) is dropped; nothing stored', async () => {
    const A = await civNode(143, { home_region: ISSUM });
    const before = await dump(A);
    const s = signStatement(signer(ROGUE), { ...HEAD, chain: A.id }, ROGUE.nodeId, '2026-12-06T08:00:00Z');
    const ev = (author: string, statement: unknown) =>
      ({
        event_type: 'civdef.audit.checkpointed',
        author,
        data: { ...HEAD, chain: A.id, statement },
      }) as never;
    await svcOf(A).ingestNow(ev(ROOT.nodeId, s)); // author ≠ witness
    await svcOf(A).ingestNow(ev(ROGUE.nodeId, { ...s, seq: 8 })); // signature no longer holds
    await svcOf(A).ingestNow(ev(ROGUE.nodeId, 'junk'));
    // an unsigned head for A's chain announced by someone else is no head of A's
    await svcOf(A).ingestNow({
      event_type: 'civdef.audit.checkpointed',
      author: ROGUE.nodeId,
      data: { ...HEAD, chain: ROOT.nodeId },
    } as never);
    expect(await dump(A)).toBe(before);
    await svcOf(A).ingestNow(ev(ROGUE.nodeId, s));
    expect(await svcOf(A).witnessStatements()).toEqual([s]);
    await A.close();
  });
});
