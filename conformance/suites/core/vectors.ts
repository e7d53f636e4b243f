/**
 * core/vectors: the language-neutral vector families of conformance/vectors/ run against the
 * implementation through the harness op `vector` (the SUT's own functions compute; the files'
 * expected values come from RFC 8032, Wycheproof and hand-written tables, never from the suite or
 * the engine). canonical_json runs over the wire instead (CJ-02, every target). Every case records
 * what it ran (report.wire_vectors).
 */
import { fail, pass, type CaseCtx, type Outcome, type SectionDef } from '../../runner/case.js';
import { loadVectors } from '../../lib/vectors.js';

interface Check {
  name: string;
  op: string;
  input: unknown;
  /** null = agrees; otherwise what differs */
  judge(r: { output: any } | { error: { code: string; message: string } }): string | null;
}

async function runFamily(ctx: CaseCtx, family: string, file: any, checks: Check[]): Promise<Outcome> {
  let passed = 0;
  const bad: { vector: string; problem: string }[] = [];
  for (const c of checks) {
    const r = await ctx.target.vector!(0, family, c.op, c.input);
    const why = c.judge(r);
    if (why) bad.push({ vector: c.name, problem: why });
    else passed++;
  }
  ctx.vectors(family, { run: checks.length, passed, source: file.source.kind, via: 'vector' });
  return bad.length
    ? fail(
        `${checks.length} vectors agree with ${file.source.kind}`,
        `${bad.length} differ: ${bad
          .slice(0, 5)
          .map((b) => `${b.vector} (${b.problem})`)
          .join('; ')}`,
        `${file.id}: the implementation disagrees with the independent vectors`,
        { file: file.id, first: bad.slice(0, 5) },
      )
    : pass();
}

const out = (r: any) => ('output' in r ? r.output : null);
const err = (r: any) => ('error' in r ? r.error.code : null);

export const section: SectionDef = {
  name: 'core/vectors',
  required: false,
  cases: [
    {
      id: 'VEC-04',
      spec_ref: 'RFC 8785; Phase 1 §5',
      title:
        "canonical JSON vectors (RFC 8785 examples, Appendix B numbers, hand-derived) through the SUT's JCS, including integers beyond 2^53 that cannot be signed",
      requires: { ops: ['vector'] },
      async run(ctx) {
        const f = loadVectors('canonical_json/jcs.json');
        return runFamily(
          ctx,
          'canonical_json',
          f,
          f.cases.map((v: any) => ({
            name: v.name,
            op: 'jcs',
            input: { text: v.input },
            judge: (r: any) => (out(r)?.value === v.expect.value ? null : JSON.stringify(out(r) ?? err(r))),
          })),
        );
      },
    },
    {
      id: 'VEC-01',
      spec_ref: 'M01 §2; RFC 8032 §7.1',
      title: 'identity vectors: seed → public key → NodeID as RFC 8032 states',
      requires: { ops: ['vector'] },
      async run(ctx) {
        const f = loadVectors('identity/nodeids.json');
        return runFamily(
          ctx,
          'identity',
          f,
          f.cases.map((v: any) => ({
            name: v.name,
            op: 'derive',
            input: v.input,
            judge: (r: any) =>
              out(r)?.public_key_hex === v.expect.public_key_hex && out(r)?.node_id === v.expect.node_id
                ? null
                : JSON.stringify(out(r) ?? err(r)),
          })),
        );
      },
    },
    {
      id: 'VEC-02',
      spec_ref: 'Phase 1 §5 signing; RFC 8032; Wycheproof ed25519',
      title:
        'signature vectors: RFC 8032 signatures reproduced; every Wycheproof ed25519 verdict (valid / invalid) matched',
      requires: { ops: ['vector'] },
      async run(ctx) {
        const f = loadVectors('signatures/ed25519.json');
        return runFamily(
          ctx,
          'signatures',
          f,
          f.cases.map((v: any) => ({
            name: v.name,
            op: v.op,
            input: v.input,
            judge: (r: any) =>
              v.op === 'sign'
                ? out(r)?.signature_hex === v.expect.signature_hex &&
                  out(r)?.public_key_hex === v.expect.public_key_hex
                  ? null
                  : JSON.stringify(out(r) ?? err(r))
                : out(r)?.valid === v.expect.valid
                  ? null
                  : `valid=${out(r)?.valid ?? err(r)}, expected ${v.expect.valid}`,
          })),
        );
      },
    },
    {
      id: 'VEC-03',
      spec_ref: 'M32 A3.1, A3.3',
      title: 'protocol vectors: version parse/reject, precedence, compatibility and negotiation tables',
      requires: { ops: ['vector'] },
      async run(ctx) {
        const vf = loadVectors('protocol/versions.json');
        const nf = loadVectors('protocol/negotiation.json');
        const checks: Check[] = vf.cases.map((v: any) => {
          if (typeof v.input === 'string')
            return {
              name: v.name,
              op: 'parse',
              input: { version: v.input },
              judge: (r: any) =>
                v.expect.result === 'ok'
                  ? out(r)?.value === v.expect.value
                    ? null
                    : JSON.stringify(out(r) ?? err(r))
                  : err(r) === v.expect.error
                    ? null
                    : `accepted ${JSON.stringify(out(r))}`,
            };
          const compat = typeof v.expect.value === 'boolean';
          return {
            name: v.name,
            op: 'compare',
            input: v.input,
            judge: (r: any) =>
              (compat ? out(r)?.compatible : out(r)?.value) === v.expect.value
                ? null
                : JSON.stringify(out(r) ?? err(r)),
          };
        });
        for (const v of nf.cases)
          for (const [local, peer] of [
            [v.input.local, v.input.peer],
            [v.input.peer, v.input.local],
          ])
            checks.push({
              name: `${v.name}${local === v.input.local ? '' : '_swapped'}`,
              op: 'negotiate',
              input: { local, peer },
              judge: (r: any) =>
                v.expect.result === 'ok'
                  ? out(r)?.value === v.expect.value
                    ? null
                    : JSON.stringify(out(r) ?? err(r))
                  : err(r) === v.expect.error
                    ? null
                    : JSON.stringify(out(r) ?? err(r)),
            });
        return runFamily(ctx, 'protocol', { ...vf, id: 'protocol/versions+negotiation' }, checks);
      },
    },
  ],
};
