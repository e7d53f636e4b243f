/** core/identity: NodeIDs, canonical JSON and signatures as the SUT produces and checks them. */
import { fromB64u, NODE_ID_RE, verifyObj } from '../../lib/crypto.js';
import { loadVectors } from '../../lib/vectors.js';
import { all, expectError, fail, pass, type SectionDef } from '../../runner/case.js';
import { openSim } from '../../harness/simpeer/index.js';

export const section: SectionDef = {
  name: 'core/identity',
  required: true,
  cases: [
    {
      id: 'ID-01',
      spec_ref: 'M01 §2; X09 C0',
      title: 'NodeID is ed25519:+43 base64url chars of a 32-byte key and verifies the descriptor',
      async run(ctx) {
        const d = await ctx.describe();
        return all(
          () =>
            NODE_ID_RE.test(d.node_id)
              ? null
              : fail('^ed25519:[A-Za-z0-9_-]{43}$', d.node_id, 'malformed NodeID', {
                  capability: 'protocol.self.describe',
                  input: {},
                }),
          () =>
            fromB64u(d.node_id.slice(8)).length === 32
              ? null
              : fail('32 key bytes', d.node_id, 'key length', {}),
          () =>
            d.node_id === ctx.info.peers[0]
              ? null
              : fail(ctx.info.peers[0]!, d.node_id, 'descriptor node_id differs from the harness NodeID', {}),
          () =>
            verifyObj(d, d.node_id)
              ? null
              : fail(
                  'signature verifies',
                  d.signature,
                  'descriptor signature does not verify with its node_id',
                  {},
                ),
        );
      },
    },
    {
      id: 'CJ-02',
      spec_ref: 'Phase 1 §5 canonical JSON; RFC 8785',
      title:
        'the SUT canonicalises every RFC 8785 / hand-derived vector to the stated bytes (signed calls over the expected JCS are accepted, a wrong JCS is refused)',
      requires: { ops: ['raw_link'] },
      timeout_ms: 30_000,
      async run(ctx) {
        const file = loadVectors('canonical_json/jcs.json');
        const sim = await openSim(ctx, { name: 'cj02' });
        let passed = 0;
        try {
          // control: a signature over bytes that are NOT the canonical form must be refused, or
          // acceptance below would prove nothing
          const ctl = await sim.callRaw(
            'protocol.version.list',
            '{"v":{"b":1,"a":2}}',
            '{"v":{"b":1,"a":2}}',
          );
          const bad = expectError(ctl, 'invalid_signature', {
            capability: 'protocol.version.list',
            note: 'signature over unsorted keys (not JCS) must not verify',
          });
          if (bad) return bad;
          // signed bytes use the core profile (JCS + integers within ±(2^53−1)): vectors holding a larger
          // integer cannot be signed at all, so they run through the `vector` op (VEC-04) instead
          const unsafe = (x: unknown): boolean =>
            typeof x === 'number'
              ? Number.isInteger(x) && !Number.isSafeInteger(x)
              : !!x && typeof x === 'object' && Object.values(x).some(unsafe);
          // the SUT rate-limits calls per peer: vectors travel in groups of 8 as one array body
          const wire = file.cases.filter((v: any) => !unsafe(JSON.parse(v.input)));
          for (let i = 0; i < wire.length; i += 8) {
            const g = wire.slice(i, i + 8);
            const r = await sim.callRaw(
              'protocol.version.list',
              `{"v":[${g.map((v: any) => v.input).join(',')}]}`,
              `{"v":[${g.map((v: any) => v.expect.value).join(',')}]}`,
            );
            if ('error' in r) {
              ctx.vectors('canonical_json', {
                run: passed + g.length,
                passed,
                source: file.source.kind,
                via: 'wire',
              });
              return fail(
                `accepted: SUT canonical forms ${g.map((v: any) => v.expect.value).join(' ')}`,
                `error ${r.error.code}`,
                `one of the vectors ${g.map((v: any) => v.name).join(', ')}: the SUT's canonicalisation differs from the stated bytes`,
                { vectors: g.map((v: any) => v.name) },
              );
            }
            passed += g.length;
          }
          ctx.vectors('canonical_json', { run: passed, passed, source: file.source.kind, via: 'wire' });
          return pass();
        } finally {
          sim.close();
        }
      },
    },
    {
      id: 'SIG-01',
      spec_ref: 'Phase 1 §5 request signing',
      title: 'a signed call with one body byte changed after signing → invalid_signature',
      requires: { ops: ['raw_link'] },
      async run(ctx) {
        const sim = await openSim(ctx, { name: 'sig01' });
        try {
          const ok = await sim.call('protocol.version.list', { probe: 'a' });
          if ('error' in ok) return fail('accepted', ok.error, 'untampered call failed', {});
          const r = await sim.call(
            'protocol.version.list',
            { probe: 'a' },
            { tamper: (m) => ({ ...m, body: { probe: 'b' } }) },
          );
          return (
            expectError(r, 'invalid_signature', {
              capability: 'protocol.version.list',
              input: { probe: 'b' },
              tamper: 'body changed after signing',
            }) ?? pass()
          );
        } finally {
          sim.close();
        }
      },
    },
    {
      id: 'CJ-01',
      spec_ref: 'Phase 1 §5; RFC 8785 §3.2.2',
      title:
        'a signed call whose body carries JCS edge values as raw wire text (-0, 1E30, 4.50, non-BMP keys, U+2028) is accepted when signed over their hand-derived JCS',
      requires: { ops: ['raw_link'] },
      async run(ctx) {
        const sim = await openSim(ctx, { name: 'cj01' });
        try {
          // wire text, exactly as sent (never re-serialised by the suite)
          const wire =
            '{"\\u20ac":1,"\\ud83d\\ude00":"non-BMP key","a":1.50,"small":1E-7,"big":9007199254740991,"neg":-0,"z":[3,"x\\u2028"],"aa":{"b":true,"a":null}}';
          // hand-derived JCS of it: keys by UTF-16 code units, -0 → 0, 1.50 → 1.5, 1E-7 → 1e-7, U+2028 raw
          const canon =
            '{"a":1.5,"aa":{"a":null,"b":true},"big":9007199254740991,"neg":0,"small":1e-7,"z":[3,"x\u2028"],"\u20ac":1,"\ud83d\ude00":"non-BMP key"}';
          const r = await sim.callRaw('protocol.version.list', wire, canon);
          if ('error' in r)
            return fail(
              'accepted',
              `error ${r.error.code}`,
              'JCS edge values were not canonicalised like RFC 8785',
              { capability: 'protocol.version.list', wire_body: wire, expected_jcs: canon },
            );
          return pass();
        } finally {
          sim.close();
        }
      },
    },
  ],
};
