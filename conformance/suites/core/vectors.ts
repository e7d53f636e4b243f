/**
 * core/vectors: the language-neutral vector families of conformance/vectors/ run against the
 * implementation through the harness op `vector` (the SUT's own functions compute; the files'
 * expected values come from RFC 8032, Wycheproof, hand-written tables and the Python generator of
 * x08/ and tokens/, never from the suite or the engine). canonical_json runs over the wire instead (CJ-02, every target). Every case records
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
    {
      id: 'VEC-05',
      spec_ref: 'X08 §4 frame layout, §4.2 rejection rules',
      title:
        "X08 frame vectors (Python struct, hand-derived): each valid frame encodes to its bytes and decodes back; each invalid one is refused with its NACK reason, through the SUT's codec",
      requires: { ops: ['vector'] },
      async run(ctx) {
        const f = loadVectors('x08/frames.json');
        const same = (a: unknown, b: unknown) => JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
        const checks: Check[] = [
          ...f.valid.flatMap((v: any) => [
            {
              name: `${v.name}/encode`,
              op: 'encode',
              input: { frame: v.frame },
              judge: (r: any) => (out(r)?.hex === v.hex ? null : JSON.stringify(out(r) ?? err(r))),
            },
            {
              name: `${v.name}/decode`,
              op: 'decode',
              input: { hex: v.hex },
              judge: (r: any) => (same(out(r)?.frame, v.frame) ? null : JSON.stringify(out(r) ?? err(r))),
            },
          ]),
          ...f.invalid.map((v: any) => ({
            name: v.name,
            op: 'decode',
            input: { hex: v.hex },
            judge: (r: any) =>
              err(r) === v.reason ? null : `expected ${v.reason}, got ${JSON.stringify(out(r) ?? err(r))}`,
          })),
        ];
        return runFamily(ctx, 'x08', { ...f, id: 'x08/frames' }, checks);
      },
    },
    {
      id: 'VEC-06',
      spec_ref: 'core §7.1, §7.2, §7.5 (M16 tokens)',
      title:
        "token vectors (Python Ed25519 and a §7.2 verifier written from the text): the SUT's encoder reproduces the tokens byte for byte and its verifier gives each case's local and wire code (first failure wins)",
      requires: { ops: ['vector'] },
      async run(ctx) {
        const f = loadVectors('tokens/tokens.json');
        const checks: Check[] = [
          ...[
            ['encode', f.encode],
            ['session_token', f.session_token],
          ].map(([name, v]: any) => ({
            name,
            op: 'encode',
            input: { issuer_seed: f.keys.issuer_seed, payload: v.payload },
            judge: (r: any) => (out(r)?.token === v.token ? null : JSON.stringify(out(r) ?? err(r))),
          })),
          ...f.verify.map((v: any) => ({
            name: v.name,
            op: 'verify',
            input: {
              token: v.token,
              now: v.now,
              community_id: f.community_id,
              members: v.members,
              revoked_jtis: v.revoked_jtis,
              calls_used: v.calls_used ?? 0,
            },
            judge: (r: any) =>
              out(r)?.local === v.expect.local && out(r)?.wire === v.expect.wire
                ? null
                : `expected ${v.expect.local}/${v.expect.wire}, got ${JSON.stringify(out(r) ?? err(r))}`,
          })),
        ];
        return runFamily(ctx, 'tokens', { ...f, id: 'tokens/tokens' }, checks);
      },
    },
  ],
};

/** key order never matters when comparing decoded frames */
function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v as object)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  return v;
}
