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

const same = (a: unknown, b: unknown) =>
  a !== undefined && JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
/** provenance of a module vector file (it lives in SOURCES.json, not in the file) */
const sourceOf = (path: string): { kind: string } => loadVectors('SOURCES.json').files[path];
const out = (r: any) => ('output' in r ? r.output : null);
const err = (r: any) => ('error' in r ? r.error.code : null);
/** what the SUT answered, for a judge's message */
const got = (r: any) => JSON.stringify(out(r) ?? err(r));
/** a judge: the vector must be refused with `code` */
const refusedWith =
  (code: string) =>
  (r: any): string | null =>
    err(r) === code ? null : `expected ${code}, got ${got(r)}`;

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
            judge: (r: any) => (out(r)?.value === v.expect.value ? null : got(r)),
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
                : got(r),
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
                  : got(r)
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
                    : got(r)
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
              (compat ? out(r)?.compatible : out(r)?.value) === v.expect.value ? null : got(r),
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
                    : got(r)
                  : err(r) === v.expect.error
                    ? null
                    : got(r),
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
        const checks: Check[] = [
          ...f.valid.flatMap((v: any) => [
            {
              name: `${v.name}/encode`,
              op: 'encode',
              input: { frame: v.frame },
              judge: (r: any) => (out(r)?.hex === v.hex ? null : got(r)),
            },
            {
              name: `${v.name}/decode`,
              op: 'decode',
              input: { hex: v.hex },
              judge: (r: any) => (same(out(r)?.frame, v.frame) ? null : got(r)),
            },
          ]),
          ...f.invalid.map((v: any) => ({
            name: v.name,
            op: 'decode',
            input: { hex: v.hex },
            judge: refusedWith(v.reason),
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
            judge: (r: any) => (out(r)?.token === v.token ? null : got(r)),
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
                : `expected ${v.expect.local}/${v.expect.wire}, got ${got(r)}`,
          })),
        ];
        return runFamily(ctx, 'tokens', { ...f, id: 'tokens/tokens' }, checks);
      },
    },
    {
      id: 'VEC-07',
      spec_ref: 'M29 lora-beacons digest §2 beacon_id, §4 frame layout, §6 time on air',
      title:
        "LoRa vectors (hand-derived from the digest): sender_hash, beacon frames encode/decode with beacon_id, malformed frames and unsendable fields refused, time on air per Semtech's formula, through the SUT's M29 codec",
      requires: { ops: ['vector'] },
      async run(ctx) {
        const f = loadVectors('lora/frames.json');
        const a = loadVectors('lora/airtime.json');
        const tol = Number(a.tolerance_ms);
        const checks: Check[] = [
          ...f.sender_hash.map((v: any) => ({
            name: `sender_hash ${v.node_id}`,
            op: 'sender_hash',
            input: { node_id: v.node_id },
            judge: (r: any) => (out(r)?.sender_hash === v.sender_hash ? null : got(r)),
          })),
          ...f.valid.flatMap((v: any) => [
            {
              name: `${v.name}/encode`,
              op: 'encode',
              input: { fields: v.fields },
              judge: (r: any) => (out(r)?.hex === v.hex && out(r)?.beacon_id === v.beacon_id ? null : got(r)),
            },
            {
              name: `${v.name}/decode`,
              op: 'decode',
              input: { hex: v.hex },
              judge: (r: any) =>
                same(out(r)?.fields, v.fields) && out(r)?.beacon_id === v.beacon_id ? null : got(r),
            },
          ]),
          ...f.tolerant.map((v: any) => ({
            name: v.name,
            op: 'decode',
            input: { hex: v.hex },
            judge: (r: any) => (same(out(r)?.fields, v.fields) ? null : got(r)),
          })),
          ...f.malformed.map((v: any) => ({
            name: v.name,
            op: 'decode',
            input: { hex: v.hex },
            judge: refusedWith(v.error),
          })),
          ...f.encode_rejects.map((v: any) => ({
            name: v.name,
            op: 'encode',
            input: { fields: v.fields },
            judge: refusedWith(v.error),
          })),
          ...a.cases.map((v: any) => ({
            name: `toa ${v.payload_bytes}B SF${v.sf} BW${v.bw_khz} CR4/${v.cr} P${v.preamble}`,
            op: 'airtime',
            input: {
              payload_bytes: v.payload_bytes,
              sf: v.sf,
              bw_khz: v.bw_khz,
              cr: v.cr,
              preamble: v.preamble,
            },
            judge: (r: any) =>
              typeof out(r)?.toa_ms === 'number' && Math.abs(out(r).toa_ms - v.toa_ms) <= tol
                ? null
                : `expected ${v.toa_ms} ms, got ${got(r)}`,
          })),
        ];
        return runFamily(
          ctx,
          'lora',
          { id: 'lora/frames+airtime', source: sourceOf('lora/frames.json') },
          checks,
        );
      },
    },
    {
      id: 'VEC-08',
      spec_ref: 'civdef digest §3 cert_id; RFC 9162 §2.1 (MTH, PATH, PROOF)',
      title:
        "civdef vectors (Python derive.py from the digest and RFC 9162): cert_id and its JCS preimage, Merkle roots, inclusion paths and consistency proofs, through the SUT's civdef functions",
      requires: { ops: ['vector'] },
      async run(ctx) {
        const c = loadVectors('civdef/cert_ids.json');
        const m = loadVectors('civdef/merkle.json');
        const checks: Check[] = [
          ...c.cases.map((v: any) => ({
            name: `cert_id ${v.name}`,
            op: 'cert_id',
            input: { body: v.body },
            judge: (r: any) =>
              out(r)?.cert_id === v.cert_id && out(r)?.preimage_jcs === v.preimage_jcs ? null : got(r),
          })),
          {
            name: 'merkle empty tree',
            op: 'merkle',
            input: { leaves_utf8: [] },
            judge: (r: any) => (out(r)?.root === m.empty_root ? null : got(r)),
          },
          ...m.trees.flatMap((t: any) => [
            {
              name: `merkle root n=${t.size}`,
              op: 'merkle',
              input: { leaves_utf8: t.leaves_utf8 },
              judge: (r: any) => (out(r)?.root === t.root ? null : got(r)),
            },
            ...t.inclusion.map((p: any) => ({
              name: `merkle PATH(${p.index}, n=${t.size})`,
              op: 'merkle',
              input: { leaves_utf8: t.leaves_utf8, index: p.index },
              judge: (r: any) => (same(out(r)?.path, p.path) ? null : got(r)),
            })),
            ...t.consistency.map((p: any) => ({
              name: `merkle PROOF(${p.from_size}, n=${t.size})`,
              op: 'merkle',
              input: { leaves_utf8: t.leaves_utf8, from_size: p.from_size },
              judge: (r: any) => (same(out(r)?.proof, p.proof) ? null : got(r)),
            })),
          ]),
        ];
        return runFamily(
          ctx,
          'civdef',
          { id: 'civdef/cert_ids+merkle', source: sourceOf('civdef/merkle.json') },
          checks,
        );
      },
    },
    {
      id: 'VEC-09',
      spec_ref: 'M27 moe digest §5 topic normalisation',
      title:
        "MoE topic normalisation vectors (hand-derived from the rule text): each topic normalises as the table says, and the invalid ones are refused with bad_request, through the SUT's topic validator",
      requires: { ops: ['vector'] },
      async run(ctx) {
        const f = loadVectors('moe/normalisation.json');
        const checks: Check[] = [
          ...f.valid.map((v: any) => ({
            name: JSON.stringify(v.in),
            op: 'normalise_topic',
            input: { topic: v.in },
            judge: (r: any) => (out(r)?.topic === v.out ? null : got(r)),
          })),
          ...f.invalid.map((t: string) => ({
            name: `invalid ${JSON.stringify(t)}`,
            op: 'normalise_topic',
            input: { topic: t },
            // the file: empty after normalisation, or longer than 64 characters → bad_request
            judge: refusedWith('bad_request'),
          })),
        ];
        return runFamily(
          ctx,
          'moe',
          { id: 'moe/normalisation', source: sourceOf('moe/normalisation.json') },
          checks,
        );
      },
    },
    {
      id: 'VEC-11',
      spec_ref: 'M26 distributed inference digest B6 (planner)',
      title:
        "M26 planner vectors (hand-derived from the B6 rules): the ordered shard cover, or the first uncovered layer, through the SUT's planner",
      requires: { ops: ['vector'] },
      async run(ctx) {
        const f = loadVectors('distributed_inference/planner.json');
        const checks: Check[] = f.vectors.map((v: any) => ({
          name: v.name,
          op: 'plan',
          input: { total_layers: v.total_layers, candidates: v.candidates },
          judge: (r: any) =>
            Array.isArray(v.expected)
              ? same(out(r)?.shards, v.expected)
                ? null
                : got(r)
              : out(r)?.reason === v.expected.reason &&
                  out(r)?.first_uncovered_layer === v.expected.first_uncovered_layer
                ? null
                : got(r),
        }));
        return runFamily(
          ctx,
          'distributed_inference',
          { id: 'distributed_inference/planner', source: sourceOf('distributed_inference/planner.json') },
          checks,
        );
      },
    },
    {
      id: 'VEC-12',
      spec_ref: 'M28 fedlearn digest §7 aggregation',
      title:
        "M28 aggregation vectors (Python derive.py: NodeID order, Float64, one F32 rounding): fedavg, trimmed mean and median, through the SUT's aggregator",
      requires: { ops: ['vector'] },
      async run(ctx) {
        const f = loadVectors('fedlearn/aggregation.json');
        const checks: Check[] = f.cases.map((c: any) => ({
          name: `${c.method} β=${c.trim_fraction}`,
          op: 'aggregate',
          input: { submissions: f.submissions, method: c.method, trim_fraction: c.trim_fraction },
          judge: (r: any) => (same(out(r)?.values_f32, c.expected_f32) ? null : got(r)),
        }));
        return runFamily(ctx, 'fedlearn', { ...f, id: 'fedlearn/aggregation' }, checks);
      },
    },
    {
      id: 'VEC-13',
      spec_ref: 'M29 lora-beacons digest §6 duty-cycle accounting, §8 Meshtastic serial API',
      title:
        "LoRa duty-cycle and Meshtastic vectors (hand-derived from the digest, mesh.proto and the protobuf wire format): budget, used airtime, fits and next_tx_allowed_at through the SUT's async DutyCycle over a key/value log; ToRadio frames, the adapter's beacon TX frame and its FromRadio receive path",
      requires: { ops: ['vector'] },
      async run(ctx) {
        const d = loadVectors('lora/duty_cycle.json');
        const m = loadVectors('lora/meshtastic.json');
        const checks: Check[] = [
          ...d.cases.map((v: any) => ({
            name: v.name,
            op: 'duty_cycle',
            input: { percent: v.percent, entries: v.entries, now: v.now, frame_ms: v.frame_ms },
            judge: (r: any) => {
              const o = out(r);
              return o &&
                o.budget_ms === v.budget_ms &&
                typeof o.used_ms === 'number' &&
                Math.abs(o.used_ms - v.used_ms) < 1e-6 &&
                o.fits === v.fits &&
                o.next_tx_allowed_at === v.next_tx_allowed_at
                ? null
                : `expected budget ${v.budget_ms}, used ${v.used_ms}, fits ${v.fits}, next ${v.next_tx_allowed_at}; got ${got(r)}`;
            },
          })),
          ...m.to_radio.map((v: any) => ({
            name: `to_radio ${v.name}`,
            op: 'meshtastic_to_radio',
            input: { message: v.message },
            judge: (r: any) => (out(r)?.hex === v.hex ? null : got(r)),
          })),
          // the beacon TX vector is what the adapter itself writes for a beacon (broadcast, private app)
          ...m.to_radio
            .filter((v: any) => v.message.packet?.decoded?.portnum === 256)
            .map((v: any) => ({
              name: `adapter tx ${v.name}`,
              op: 'meshtastic_tx',
              input: {
                payload_hex: v.message.packet.decoded.payload_hex,
                packet_id: v.message.packet.id,
                channel: v.message.packet.channel,
              },
              judge: (r: any) => (out(r)?.hex === v.hex ? null : got(r)),
            })),
          ...m.from_radio.map((v: any) => ({
            name: `from_radio ${v.name}`,
            op: 'meshtastic_rx',
            input: { hex: v.hex },
            judge: (r: any) =>
              same(out(r)?.events, [
                {
                  kind: 'frame',
                  payload: v.expect.payload_hex,
                  rssi: v.expect.rssi,
                  snr: v.expect.snr,
                  device_id: v.expect.device_id,
                },
              ])
                ? null
                : got(r),
          })),
        ];
        return runFamily(
          ctx,
          'lora',
          { id: 'lora/duty_cycle+meshtastic', source: sourceOf('lora/duty_cycle.json') },
          checks,
        );
      },
    },
    {
      id: 'VEC-14',
      spec_ref: 'M27 moe digest §5 rule-based scorer',
      title:
        "MoE scorer vectors (hand arithmetic from the §5 formula): a fresh expert's score for each query (tag share, similarity, reliability ½, recency 1, score_bias, clamp), through the SUT's embedder and scorer",
      requires: { ops: ['vector'] },
      async run(ctx) {
        const f = loadVectors('moe/scorer.json');
        const checks: Check[] = f.cases.map((v: any) => ({
          name: v.id,
          op: 'score',
          input: { topics: v.topics, summary: v.summary, tags: v.tags, score_bias: v.score_bias },
          judge: (r: any) =>
            typeof out(r)?.score === 'number' && Math.abs(out(r).score - v.expected) <= f.tolerance
              ? null
              : `expected ${v.expected} (${v.arith}), got ${got(r)}`,
        }));
        return runFamily(ctx, 'moe', { id: 'moe/scorer', source: sourceOf('moe/scorer.json') }, checks);
      },
    },
    {
      id: 'VEC-15',
      spec_ref: 'M28 fedlearn digest §4 manifest_sha, §6 delta checks 8–12, §7 LoRA init',
      title:
        "M28 manifest, init and delta vectors (Python derive.py): manifest JCS bytes and manifest_sha, the PRNG's first words and A₀/B₀ bit for bit, and each submitted delta accepted or refused with its code, through the SUT's fedlearn functions",
      requires: { ops: ['vector'] },
      async run(ctx) {
        const mf = loadVectors('fedlearn/manifest.json');
        const init = loadVectors('fedlearn/init.json');
        const dv = loadVectors('fedlearn/delta_validation.json');
        const checks: Check[] = [
          ...mf.cases.map((v: any) => ({
            name: `manifest ${v.name}`,
            op: 'manifest',
            input: { manifest: v.manifest },
            judge: (r: any) =>
              out(r)?.jcs === v.jcs && out(r)?.manifest_sha === v.manifest_sha ? null : got(r),
          })),
          ...init.cases.map((v: any) => ({
            name: `init seed ${v.seed} rank ${v.rank}`,
            op: 'init',
            input: { card: init.card, rank: v.rank, seed: v.seed },
            judge: (r: any) =>
              same(out(r)?.first_u32, v.first_u32) &&
              same(out(r)?.names, Object.keys(v.tensors).sort()) &&
              same(out(r)?.tensors, v.tensors)
                ? null
                : `first words ${JSON.stringify(out(r)?.first_u32 ?? err(r))}, or A₀/B₀ differ`,
          })),
          ...dv.cases.map((v: any) => ({
            name: `delta ${v.name}`,
            op: 'validate_delta',
            input: { bytes_b64: v.bytes_b64, expectation: dv.expectation },
            judge: (r: any) =>
              v.expect === 'ok'
                ? out(r)?.ok === true
                  ? null
                  : `expected accepted, got ${got(r)}`
                : refusedWith(v.expect)(r),
          })),
        ];
        return runFamily(ctx, 'fedlearn', { ...mf, id: 'fedlearn/manifest+init+delta_validation' }, checks);
      },
    },
    {
      id: 'VEC-10',
      spec_ref: 'seed §2.5; M30 evidence digest §3.2, §3.3',
      title:
        "evidence ClaimID vectors (Python evidence_vectors.py): each draft's JCS preimage and ClaimID, and each bad draft refused with bad_request, through the SUT's claim normaliser",
      requires: { ops: ['vector'] },
      async run(ctx) {
        const f = loadVectors('evidence/claim_ids.json');
        const checks: Check[] = f.cases.map((v: any) => ({
          name: v.name,
          op: 'claim_id',
          input: v.input,
          judge: (r: any) =>
            v.expect.result === 'ok'
              ? out(r)?.claim_id === v.expect.claim_id && out(r)?.preimage_jcs === v.expect.preimage_jcs
                ? null
                : got(r)
              : refusedWith(v.expect.code)(r),
        }));
        return runFamily(
          ctx,
          'evidence',
          { id: 'evidence/claim_ids', source: sourceOf('evidence/claim_ids.json') },
          checks,
        );
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
