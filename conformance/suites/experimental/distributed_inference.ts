/**
 * experimental/distributed_inference (M26, digest B3/B6/B7): planner vectors (checked by the suite's own
 * planner, independent of any implementation, so the shared vector file is proven consistent), `shard.list`
 * shape, `shard.forward` on a canary input (deterministic, [1,S,E], finite) and the B3 error cases.
 * Runs when distributed_llm is on and built on the SUT; forward cases skip (with the reason) when the SUT
 * serves no shard or does not trust the harness identity (sessions are for trusted members only, B7).
 */
import vectors from '../../vectors/distributed_inference/planner.json' with { type: 'json' };
import {
  all,
  expectError,
  expectOk,
  fail,
  pass,
  skip,
  type CaseCtx,
  type SectionDef,
} from '../../runner/case.js';

const CAP = 'experimental.distributed_llm';

type Cand = [string, string, number, number, string, number, number];
interface Vector {
  name: string;
  total_layers: number;
  candidates: Cand[];
  expected: string[] | { reason: string; first_uncovered_layer: number };
}

/** Independent B6 planner (the suite's own): greedy by the B6 order, backtracking, depth ≤ 16. */
function plan(v: Vector, maxShards = 16): string[] | { reason: string; first_uncovered_layer: number } {
  const key = (c: Cand) => `${c[0]}@${c[1]}`;
  const order = (a: Cand, b: Cand) =>
    (a[4] === 'relayed' ? 1 : 0) - (b[4] === 'relayed' ? 1 : 0) ||
    a[5] - b[5] ||
    b[3] - a[3] ||
    a[6] - b[6] ||
    (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
  const L = v.total_layers;
  const starts = (cur: number) => v.candidates.filter((c) => c[2] === cur && c[3] < L).sort(order);
  const go = (cur: number, depth: number): Cand[] | null => {
    if (cur === L) return [];
    if (depth === maxShards) return null;
    for (const c of starts(cur)) {
      const rest = go(c[3] + 1, depth + 1);
      if (rest) return [c, ...rest];
    }
    return null;
  };
  const r = go(0, 0);
  if (r) return r.map(key);
  const dist = new Map<number, number>([[0, 0]]);
  const q = [0];
  while (q.length) {
    const c = q.shift()!;
    for (const s of starts(c))
      if (!dist.has(s[3] + 1)) {
        dist.set(s[3] + 1, dist.get(c)! + 1);
        q.push(s[3] + 1);
      }
  }
  if (dist.has(L))
    return {
      reason: 'max_shards',
      first_uncovered_layer: Math.max(...[...dist].filter(([, d]) => d <= maxShards).map(([c]) => c)),
    };
  return { reason: 'uncovered', first_uncovered_layer: Math.max(...dist.keys()) };
}

function b64(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}
function canary(S: number, E: number): { dtype: 'fp32'; shape: number[]; data: string } {
  const f = new Float32Array(S * E);
  for (let i = 0; i < f.length; i++) f[i] = Math.sin(i * 0.37) * 0.5;
  return { dtype: 'fp32', shape: [1, S, E], data: b64(new Uint8Array(f.buffer)) };
}
function decodeF32(data: string): Float32Array {
  const s = atob(data);
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return new Float32Array(b.buffer);
}

interface Served {
  shard_id: string;
  weights_sha256: string;
  hidden_size: number;
  total_layers: number;
  model_id: string;
}

/** The first shard the SUT serves, or a skip outcome. */
async function served(ctx: CaseCtx): Promise<{ s: Served } | { out: ReturnType<typeof skip> }> {
  const r = await ctx.call(`${CAP}.shard.list`, {});
  if ('error' in r) return { out: skip(`shard.list failed: ${r.error.code}`) };
  const s = (r.output?.shards ?? [])[0] as Served | undefined;
  if (!s) return { out: skip('the SUT serves no shard (serve one to run this case)') };
  return { s };
}

const untrusted = (r: { error?: { code: string } } | object) =>
  'error' in r && (r as { error: { code: string } }).error.code === 'unauthorized';

export const section: SectionDef = {
  name: 'experimental/distributed_inference',
  required: false,
  module: 'distributed_llm',
  probe: { capability: `${CAP}.shard.list`, input: {} },
  cases: [
    {
      id: 'M26-PLAN-01',
      spec_ref: 'M26 digest B6 (greedy cover with backtracking; B10.1)',
      title: 'planner vectors: ordering, backtracking, gap and shard-limit cases',
      async run() {
        for (const v of (vectors as unknown as { vectors: Vector[] }).vectors) {
          const got = plan(v);
          if (JSON.stringify(got) !== JSON.stringify(v.expected))
            return fail(JSON.stringify(v.expected), got, `vector "${v.name}"`, { vector: v.name });
        }
        return pass();
      },
    },
    {
      id: 'M26-LIST-01',
      spec_ref: 'M26 digest B3 shard.list',
      title: 'shard.list answers {host, at, shards[]}; a non-string model_id → bad_request',
      async run(ctx) {
        const r = await ctx.call(`${CAP}.shard.list`, {});
        const ok = expectOk(r, {});
        if ('bad' in ok) return ok.bad;
        const o = ok.out;
        return all(
          () =>
            typeof o?.host === 'string' && Number.isInteger(o?.at) && Array.isArray(o?.shards)
              ? null
              : fail('{host, at, shards[]}', o, 'shape'),
          async () =>
            expectError(await ctx.call(`${CAP}.shard.list`, { model_id: 7 }), 'bad_request', { model_id: 7 }),
        );
      },
    },
    {
      id: 'M26-FWD-01',
      spec_ref: 'M26 digest B3 shard.forward; B7 canary spot-check',
      title: 'shard.forward on a canary input: [1,S,E] out, finite, deterministic, past_len_after = S',
      async run(ctx) {
        const sv = await served(ctx);
        if ('out' in sv) return sv.out;
        const s = sv.s;
        const input = {
          shard_id: s.shard_id,
          weights_sha256: s.weights_sha256,
          tensor: canary(2, s.hidden_size),
        };
        const r1 = await ctx.call(`${CAP}.shard.forward`, input);
        if (untrusted(r1))
          return skip('the SUT does not trust the harness identity (shard.forward needs trusted)');
        const a = expectOk(r1, { shard_id: s.shard_id });
        if ('bad' in a) return a.bad;
        const b = expectOk(await ctx.call(`${CAP}.shard.forward`, input), { shard_id: s.shard_id });
        if ('bad' in b) return b.bad;
        const t = a.out.tensor;
        const vals = decodeF32(t.data);
        return all(
          () =>
            JSON.stringify(t.shape) === JSON.stringify([1, 2, s.hidden_size]) && t.dtype === 'fp32'
              ? null
              : fail(`fp32 [1,2,${s.hidden_size}]`, t.shape, 'shape'),
          () =>
            vals.every((x) => Number.isFinite(x)) ? null : fail('finite values', 'non-finite', 'values'),
          () => (b.out.tensor.data === t.data ? null : fail('identical outputs', 'different', 'determinism')),
          () =>
            a.out.past_len_after === 2 ? null : fail('past_len_after 2', a.out.past_len_after, 'KV length'),
        );
      },
    },
    {
      id: 'M26-ERR-01',
      spec_ref: 'M26 digest B3, B7 (reject malformed ids, ranges, hashes, tensors)',
      title: 'bad shard ids, ranges, hashes and tensors get their B3 errors; the host keeps serving',
      async run(ctx) {
        const sv = await served(ctx);
        if ('out' in sv) return sv.out;
        const s = sv.s;
        const fwd = (over: Record<string, unknown>) =>
          ctx.call(`${CAP}.shard.forward`, {
            shard_id: s.shard_id,
            weights_sha256: s.weights_sha256,
            tensor: canary(1, s.hidden_size),
            ...over,
          });
        const probe = await fwd({});
        if (untrusted(probe))
          return skip('the SUT does not trust the harness identity (shard.forward needs trusted)');
        const nan = canary(1, s.hidden_size);
        const f = decodeF32(nan.data);
        f[0] = NaN;
        nan.data = b64(new Uint8Array(f.buffer));
        return all(
          async () =>
            expectError(await fwd({ shard_id: 'no-colon' }), 'bad_request', { shard_id: 'no-colon' }),
          async () =>
            expectError(await fwd({ shard_id: `${s.model_id}:3-1` }), 'bad_request', { lo_gt_hi: true }),
          async () =>
            expectError(await fwd({ shard_id: `${s.model_id}:0-${s.total_layers}` }), 'bad_request', {
              range: 'outside',
            }),
          async () => expectError(await fwd({ weights_sha256: 'XYZ' }), 'bad_request', { hash: 'non-hex' }),
          async () =>
            expectError(await fwd({ weights_sha256: '0'.repeat(64) }), 'shard_unavailable', {
              hash: 'wrong',
            }),
          async () => expectError(await fwd({ tensor: nan }), 'bad_request', { tensor: 'NaN' }),
          async () =>
            expectError(
              await fwd({
                tensor: { dtype: 'fp32', shape: [1, 4096, s.hidden_size], data: 'A'.repeat(360_000) },
              }),
              'tensor_too_large',
              { tensor: 'oversize' },
            ),
          async () =>
            expectError(
              await ctx.call(`${CAP}.shard.connect`, {
                shard_id: s.shard_id,
                weights_sha256: s.weights_sha256,
                pipeline_id: 'not-a-ulid',
                max_seq_len: 8,
              }),
              'bad_request',
              { pipeline_id: 'not-a-ulid' },
            ),
          async () => {
            const ok = expectOk(await fwd({}), { after: 'errors' });
            return 'bad' in ok ? ok.bad : null;
          },
        );
      },
    },
  ],
};
