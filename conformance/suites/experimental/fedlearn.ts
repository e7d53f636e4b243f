/**
 * experimental/fedlearn (M28), black-box over the capability bus plus the module's language-neutral
 * vectors (vectors/fedlearn, derived independently in Python by derive.py): the aggregation vectors run
 * through the SUT's aggregator (harness op `vector`) against the recorded results; the manifest, init and
 * delta files are cross-checked here against the suite's own reading of the digest (JCS/SHA-256,
 * splitmix32 → xoshiro128**, the §6 header rule) — the SUT runs those in core/vectors VEC-15. Joining and submitting need a consent gesture in the SUT's UI, so rounds are not
 * driven from here; the negative cases are.
 * Self-contained: one file, one `section`.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jcs, sha256Hex, utf8 } from '../../lib/crypto.js';
import {
  all,
  expectError,
  fail,
  pass,
  flagOffCase,
  type CaseCtx,
  type CaseDef,
  type SectionDef,
} from '../../runner/case.js';

const P = 'experimental.fedlearn.';
const CAPS = [
  'round.announce',
  'round.list',
  'round.join',
  'round.submit',
  'round.status',
  'round.finalize',
  'adapter.fetch',
  'adapter.apply',
].map((c) => P + c);
const VEC = resolve(dirname(fileURLToPath(import.meta.url)), '../../vectors/fedlearn');
const vec = (f: string) => JSON.parse(readFileSync(resolve(VEC, f), 'utf8'));
const REF = 'M28 digest';
const ULID = '01JD0000000000000000000000';

// ---- the suite's own references
function xoshiro(seed: number) {
  let st = seed >>> 0;
  const s = new Uint32Array(4);
  for (let i = 0; i < 4; i++) {
    st = (st + 0x9e3779b9) >>> 0;
    let z = st;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    s[i] = (z ^ (z >>> 16)) >>> 0;
  }
  const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;
  return () => {
    const r = Math.imul(rotl(Math.imul(s[1]!, 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return r;
  };
}
/** §6 structural rule: u64 LE length, header = JCS padded with spaces to 8, offsets contiguous in name order. */
function headerCanonical(b: Uint8Array): boolean {
  if (b.length < 8) return false;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = dv.getUint32(0, true);
  if (dv.getUint32(4, true) !== 0 || n === 0 || n % 8 !== 0 || n > b.length - 8) return false;
  let h: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const raw = new TextDecoder().decode(b.subarray(8, 8 + n));
  try {
    h = JSON.parse(raw);
  } catch {
    return false;
  }
  const text = jcs(h);
  if (raw !== text.padEnd(Math.ceil(text.length / 8) * 8, ' ')) return false;
  let off = 0;
  for (const k of Object.keys(h)
    .filter((x) => x !== '__metadata__')
    .sort()) {
    const t = h[k]!;
    if (t.dtype !== 'F32' || t.data_offsets[0] !== off) return false;
    off = t.data_offsets[1];
    if (off - t.data_offsets[0] !== 4 * t.shape.reduce((a, x) => a * x, 1)) return false;
  }
  return off === b.length - 8 - n;
}

async function expectError_(ctx: CaseCtx, cap: string, input: unknown, code: string) {
  return expectError(await ctx.call(P + cap, input), code, { capability: P + cap, input });
}

const cases: CaseDef[] = [
  flagOffCase({
    id: 'fedlearn.flag',
    spec_ref: `${REF} status (gating); seed §8`,
    title: 'module off → all eight experimental.fedlearn.* capabilities answer experimental_disabled',
    module: 'fedlearn',
    capabilities: CAPS,
  }),
  {
    id: 'fedlearn.unknown',
    spec_ref: `${REF} §3 (round.join check 2, round.status, adapter.fetch)`,
    title: 'unknown round → not_found (join, status); unknown adapter SHA → adapter_not_found (fetch, apply)',
    async run(ctx) {
      const sha = 'sha256:' + '0'.repeat(64);
      return all(
        () =>
          expectError_(
            ctx,
            'round.join',
            { round_id: ULID, consent: true, consent_text_sha256: '0'.repeat(64) },
            'not_found',
          ),
        () => expectError_(ctx, 'round.status', { round_id: ULID }, 'not_found'),
        () => expectError_(ctx, 'adapter.fetch', { sha }, 'adapter_not_found'),
        () => expectError_(ctx, 'adapter.apply', { sha, scope: 'node', confirm: true }, 'adapter_not_found'),
      );
    },
  },
  {
    id: 'fedlearn.apply.bad_scope',
    spec_ref: `${REF} §3 adapter.apply`,
    title: 'adapter.apply with a scope other than session|node, or session without session_id → bad_request',
    async run(ctx) {
      const sha = 'sha256:' + '0'.repeat(64);
      return all(
        () => expectError_(ctx, 'adapter.apply', { sha, scope: 'everyone' }, 'bad_request'),
        () => expectError_(ctx, 'adapter.apply', { sha, scope: 'session' }, 'bad_request'),
      );
    },
  },
  {
    id: 'fedlearn.list.shape',
    spec_ref: `${REF} §3 round.list`,
    title: 'round.list answers {rounds: [...]} and never more than limit',
    async run(ctx) {
      const r = await ctx.call(P + 'round.list', { limit: 1 });
      if ('error' in r) return fail('{rounds:[]}', r.error, 'round.list failed');
      const rounds = (r.output as { rounds?: unknown }).rounds;
      if (!Array.isArray(rounds) || rounds.length > 1) return fail('array of ≤ 1', rounds, 'rounds');
      return pass();
    },
  },
  {
    id: 'fedlearn.vector.manifest',
    spec_ref: `${REF} §4 RoundManifest, §10.1`,
    title: 'vectors/fedlearn/manifest.json: JCS text and manifest_sha agree with the suite’s JCS/SHA-256',
    async run() {
      for (const c of vec('manifest.json').cases) {
        if (jcs(c.manifest) !== c.jcs) return fail(c.jcs, jcs(c.manifest), `${c.name} JCS`);
        if (sha256Hex(utf8(c.jcs)) !== c.manifest_sha)
          return fail(c.manifest_sha, sha256Hex(utf8(c.jcs)), `${c.name} sha`);
      }
      return pass();
    },
  },
  {
    id: 'fedlearn.vector.init',
    spec_ref: `${REF} §7 LoRA init`,
    title: 'vectors/fedlearn/init.json: PRNG words and A₀ (U(±1/√d_in), sorted order) agree with the suite',
    async run() {
      const v = vec('init.json');
      for (const c of v.cases) {
        const u = xoshiro(c.seed);
        const words = [u(), u(), u(), u()];
        if (JSON.stringify(words) !== JSON.stringify(c.first_u32))
          return fail(c.first_u32, words, `seed ${c.seed} words`);
        const r = xoshiro(c.seed);
        for (const name of Object.keys(c.tensors).sort()) {
          const t = c.tensors[name];
          const dIn = v.card.modules[name.split('.')[2]!][0];
          const want: number[] = name.endsWith('lora_A')
            ? Array.from({ length: t.values.length }, () =>
                Math.fround((2 * ((r() >>> 8) * 2 ** -24) - 1) / Math.sqrt(dIn)),
              )
            : t.values.map(() => 0);
          if (JSON.stringify(want) !== JSON.stringify(t.values)) return fail(t.values, want, name);
        }
      }
      return pass();
    },
  },
  {
    id: 'fedlearn.vector.aggregation',
    spec_ref: `${REF} §7 aggregation, §10.4, §10.6`,
    title:
      'vectors/fedlearn/aggregation.json (Python derive.py): the SUT’s aggregator, through harness op vector, gives each recorded fedavg / trimmed_mean / median result bit for bit, whatever the order the submissions arrive in',
    requires: { ops: ['vector'] },
    async run(ctx) {
      const v = vec('aggregation.json');
      let run = 0;
      const tally = () =>
        ctx.vectors('fedlearn', { run, passed: run - 1, source: v.source.kind, via: 'vector' });
      for (const c of v.cases) {
        run++;
        const r = await ctx.target.vector!(0, 'fedlearn', 'aggregate', {
          submissions: v.submissions,
          method: c.method,
          trim_fraction: c.trim_fraction,
        });
        const got = 'output' in r ? (r.output as { values_f32?: number[] }).values_f32 : r.error;
        if (JSON.stringify(got) !== JSON.stringify(c.expected_f32)) {
          tally();
          return fail(c.expected_f32, got, `${c.method} β=${c.trim_fraction}: the SUT's aggregate`);
        }
      }
      // the order of submissions must not matter (§7: NodeID order)
      const c0 = v.cases[0];
      run++;
      const r = await ctx.target.vector!(0, 'fedlearn', 'aggregate', {
        submissions: [...v.submissions].reverse(),
        method: c0.method,
        trim_fraction: c0.trim_fraction,
      });
      const got = 'output' in r ? (r.output as { values_f32?: number[] }).values_f32 : r.error;
      if (JSON.stringify(got) !== JSON.stringify(c0.expected_f32)) {
        tally();
        return fail(c0.expected_f32, got, `${c0.method} with the submissions in reverse order`);
      }
      ctx.vectors('fedlearn', { run, passed: run, source: v.source.kind, via: 'vector' });
      return pass();
    },
  },
  {
    id: 'fedlearn.vector.delta',
    spec_ref: `${REF} §6 delta format and checks 8–12, §10.7`,
    title:
      'vectors/fedlearn/delta_validation.json: SHA-256 of each case, and the structural cases the §6 header rule rejects',
    async run() {
      for (const c of vec('delta_validation.json').cases) {
        const b = Uint8Array.from(atob(c.bytes_b64), (ch) => ch.charCodeAt(0));
        if (sha256Hex(b) !== c.sha256) return fail(c.sha256, sha256Hex(b), `${c.name} sha`);
        const structural = ['f16', 'non_canonical_header', 'offset_hole', 'truncated'].includes(c.name);
        if (structural && headerCanonical(b)) return fail('rejected', 'accepted', c.name);
        if (c.expect === 'ok' && !headerCanonical(b)) return fail('accepted', 'rejected', c.name);
      }
      return pass();
    },
  },
];

export const section: SectionDef = {
  name: 'experimental/fedlearn',
  required: false,
  module: 'fedlearn',
  probe: { capability: 'experimental.fedlearn.round.list', input: {} },
  cases,
};
