/**
 * `npm run bench -- m26`: M26 distributed inference in Node — the orchestrator's node on the main thread, every
 * shard host a node in its OWN WORKER THREAD (its own ORT-web WASM runtime, one thread each, like a tab on another
 * device), linked by MessagePorts carrying the real link frames and X08 sessions. The local baseline is the whole
 * model on the main thread. Both sides decode greedily with the same settings (temperature 0, top_p 1, seed 0,
 * prefill chunk 64), so they produce the same tokens. The single-sequence ratio is the median of 5 paired rounds'
 * pipeline ÷ local tokens/s (the order alternating each round); the other figures are medians of 3.
 * The machine is shared: only ratios measured side by side in one run mean anything.
 *   m26.tokens_per_s_ratio_vs_local       — single-sequence decode tokens/s, 2-host pipeline (fp16 wire) ÷ the
 *                                           whole model, on generated model "m26-bench-100m": 8 layers, hidden 1024,
 *                                           16 heads / 8 KV heads × 64, MLP 3072, vocab 259 (≈ 101 M parameters,
 *                                           fp32, ≈ 400 MB; hosts serve layers 0-3 and 4-7): the smallest of the
 *                                           three where a token's compute (≈ 20 ms here) is not of the order of a
 *                                           hop's fixed cost (≈ 0.7 ms per hand-off, 4 per token, with 3 threads on
 *                                           this 2-core machine) — issue #10: "large enough that a token's compute
 *                                           is not negligible next to a hop"; docs/decisions.md
 *   m26.tokens_per_s_ratio_vs_local_25m   — the same on generated model "m26-bench-25m": 8 layers, hidden 512,
 *                                           8 heads / 4 KV heads × 64, MLP 1536, vocab 259 (≈ 25.5 M parameters,
 *                                           ≈ 5 ms a token here)
 *   m26.tokens_per_s_ratio_vs_local_demo  — the same on the tiny demo-size model (4 layers, hidden 64)
 *   m26.aggregate_ratio_4_sequences       — 4 concurrent runs through the 2-host pipeline ÷ 4 concurrent runs of
 *                                           the whole model on one thread (total tokens/s; 25 M model; `_demo` too)
 *   m26.failover_recovery_ms_p50          — serving host's thread terminated → next token streamed (median of 3;
 *                                           demo model, 3 hosts with a replica of the killed range)
 *   m26.wire_overhead_ratio               — link bytes per decoded token per hop (one tensor one way: its
 *                                           TENSOR_DATA + TENSOR_END + the peer's ACK, link headers included: the
 *                                           X08 link frames), counted from the first to the last token ÷ (hidden ×
 *                                           2 B fp16); the link's control traffic in the same window (event sync,
 *                                           health polls: not the tensor's cost, and not per token) is printed
 *                                           beside it;
 *                                           25 M model (`_demo`: demo model, where 102 B of fixed headers weigh
 *                                           against 128 B of data)
 */
import { rmSync } from 'node:fs';
import type { StreamFrame } from '../../engine/bus/types.js';
import { CAP } from '../../engine/distributed_inference/types.js';
import { KIND_X08 } from '../../engine/net/frames.js';
import { m26Node, makeFixture, type Fixture, type M26Node } from '../../tests/unit/m26-helpers.js';
import { startHost, type WorkerHost } from './m26-host.js';
import { BIG, HUGE } from './m26-models.js';
import type { BenchFilter } from './run.js';

export const names = [
  'm26.tokens_per_s_ratio_vs_local',
  'm26.tokens_per_s_ratio_vs_local_demo',
  'm26.tokens_per_s_ratio_vs_local_25m',
  'm26.aggregate_ratio_4_sequences',
  'm26.aggregate_ratio_4_sequences_demo',
  'm26.failover_recovery_ms_p50',
  'm26.wire_overhead_ratio',
  'm26.wire_overhead_ratio_demo',
];

const PROMPT = 'Describe a community mesh network in one paragraph.';
/** the same decoding settings on both sides */
const GREEDY = { temperature: 0, top_p: 1, seed: 0, prefill_chunk_tokens: 64 } as const;

async function mesh(f: Fixture, ranges: [number, number][], count?: (msg: Uint8Array) => void) {
  const orch = await m26Node(f, {
    serve: false,
    config: { distributed_llm: { failover_timeout_seconds: 10 } },
  });
  const hosts: WorkerHost[] = [];
  for (const r of ranges) hosts.push(await startHost(orch.node, f.splitDir, f.manifest, r, count));
  for (const h of hosts) await orch.node.events.sync(h.id as never);
  const t0 = Date.now();
  while (orch.mod.parts().store.list().length < ranges.length) {
    if (Date.now() - t0 > 20_000) throw new Error('ads did not arrive');
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    orch,
    hosts,
    close: async () => {
      for (const h of hosts) await h.close();
      await orch.node.close();
    },
  };
}

const input = (f: Fixture, n: number) => ({
  model_id: f.manifest.model_id,
  weights_sha256: f.manifest.weights_sha256,
  prompt: PROMPT,
  max_tokens: n,
  wire_dtype: 'fp16',
  ...GREEDY,
});

/** Decode tokens/s after the first token of one pipeline run (the tokenizer's EOS may end it early). */
async function pipelineRate(orch: M26Node, f: Fixture, n: number): Promise<{ rate: number; tokens: number }> {
  let first = 0;
  let k = 0;
  try {
    for await (const fr of orch.node.stream(CAP.run, input(f, n)) as AsyncIterable<StreamFrame>) {
      if (fr.event !== 'token') continue;
      if (k === 0) first = performance.now();
      k++;
    }
  } catch (e) {
    const st = orch.mod.parts().store;
    console.error(
      'run failed; health seen:',
      st.list().map((a) => ({
        ad: `${a.shard_id}@${a.host.slice(8, 14)}`,
        h: st.healthOf(`${a.shard_id}@${a.host}`, 1e9),
      })),
    );
    throw e;
  }
  return { rate: k > 1 ? ((k - 1) * 1000) / (performance.now() - first) : 0, tokens: k };
}

async function localRate(f: Fixture, n: number): Promise<{ rate: number; tokens: number }> {
  let first = 0;
  let k = 0;
  for await (const _ of f.whole.generate(PROMPT, { max_tokens: n, ...GREEDY })) {
    void _;
    if (k === 0) first = performance.now();
    k++;
  }
  return { rate: k > 1 ? ((k - 1) * 1000) / (performance.now() - first) : 0, tokens: k };
}

/** paired pipeline/local rounds of the single-sequence ratio */
const RATE_ROUNDS = 5;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Single-sequence ratio, 4-sequence aggregate ratio and wire overhead of one model on one 2-host mesh. */
async function modelFigures(
  f: Fixture,
  ranges: [number, number][],
  n: number,
  suffix: string,
  want: BenchFilter,
  /** the single-sequence ratio's suffix when it differs from the other figures' */
  rateSuffix = suffix,
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  // link bytes in both directions on both links: the X08 frames (the tensors' TENSOR_DATA, TENSOR_END and ACKs, link
  // headers included) and all of it (event sync, health polls and the rest of the control traffic too)
  let bytes = 0;
  let allBytes = 0;
  const m = await mesh(f, ranges, (msg) => {
    allBytes += msg.length;
    if (msg[1] === KIND_X08) bytes += msg.length;
  });
  try {
    await pipelineRate(m.orch, f, 4); // warm-up
    await localRate(f, 4);
    // first: the aggregate's runs leave hosts' health at several sessions for a few seconds
    if (want(`m26.wire_overhead_ratio${suffix}`)) {
      // from the first token to the last one
      let k = 0;
      let first = 0;
      let last = 0;
      let firstAll = 0;
      let lastAll = 0;
      for await (const fr of m.orch.node.stream(CAP.run, input(f, n)) as AsyncIterable<StreamFrame>) {
        if (fr.event !== 'token') continue;
        k++;
        if (k === 1) [first, firstAll] = [bytes, allBytes];
        [last, lastAll] = [bytes, allBytes];
      }
      const hops = 2 * ranges.length; // a tensor each way per shard
      const per = (b: number) => b / ((k - 1) * hops) / (f.manifest.dims.hidden_size * 2);
      out[`m26.wire_overhead_ratio${suffix}`] = per(last - first);
      process.stderr.write(
        `m26 ${f.manifest.model_id}: wire overhead, X08 frames ${per(last - first).toFixed(4)}, all link traffic ${per(
          lastAll - firstAll,
        ).toFixed(4)}\n`,
      );
    }
    if (want(`m26.tokens_per_s_ratio_vs_local${rateSuffix}`)) {
      // paired rounds, the order alternating (the machine's load drifts): the figure is the median of the
      // rounds' pipeline ÷ local ratios, like the x08 bench's pair ratios
      const p: number[] = [];
      const l: number[] = [];
      for (let r = 0; r < RATE_ROUNDS; r++) {
        const first = r % 2 === 0 ? () => pipelineRate(m.orch, f, n) : () => localRate(f, n);
        const second = r % 2 === 0 ? () => localRate(f, n) : () => pipelineRate(m.orch, f, n);
        const x = await first();
        const y = await second();
        const [a, b] = r % 2 === 0 ? [x, y] : [y, x];
        if (a.tokens !== b.tokens) throw new Error(`pipeline gave ${a.tokens} tokens, local ${b.tokens}`);
        p.push(a.rate);
        l.push(b.rate);
      }
      out[`m26.tokens_per_s_ratio_vs_local${rateSuffix}`] = median(p.map((x, i) => x / l[i]!));
      process.stderr.write(
        `m26 ${f.manifest.model_id}: decode tokens/s pipeline ${p.map((x) => x.toFixed(1)).join(' ')} | local ${l
          .map((x) => x.toFixed(1))
          .join(' ')} | ratios ${p.map((x, i) => (x / l[i]!).toFixed(3)).join(' ')}\n`,
      );
    }

    if (want(`m26.aggregate_ratio_4_sequences${suffix}`)) {
      const ratios: number[] = [];
      for (let r = 0; r < 3; r++) {
        // the orchestrator's health cache (refreshed when older than 5 s) must not still show the last round's
        // sessions, or a host at its stream limit is no candidate
        await new Promise((res) => setTimeout(res, 6000));
        let t0 = performance.now();
        const runs = await Promise.all([0, 1, 2, 3].map(() => pipelineRate(m.orch, f, n)));
        const pipe = runs.reduce((a, x) => a + x.tokens, 0) / ((performance.now() - t0) / 1000);
        t0 = performance.now();
        const loc = await Promise.all([0, 1, 2, 3].map(() => localRate(f, n)));
        const local = loc.reduce((a, x) => a + x.tokens, 0) / ((performance.now() - t0) / 1000);
        ratios.push(pipe / local);
      }
      out[`m26.aggregate_ratio_4_sequences${suffix}`] = median(ratios);
    }
  } finally {
    await m.close();
  }
  return out;
}

async function failoverRecovery(demo: Fixture): Promise<number> {
  const rec: number[] = [];
  for (let r = 0; r < 3; r++) {
    const m = await mesh(demo, [
      [0, 1],
      [2, 3],
      [2, 3],
    ]);
    try {
      let victim: string | null = null;
      let killedAt = 0;
      for await (const fr of m.orch.node.stream(CAP.run, input(demo, 24)) as AsyncIterable<StreamFrame>) {
        if (fr.event === 'shard_status' && !victim)
          victim = fr.data.shards.find((s: { shard_id: string }) => s.shard_id.includes(':2-3')).host;
        if (fr.event === 'token' && killedAt && rec.length === r) rec.push(performance.now() - killedAt);
        if (fr.event === 'token' && fr.data.index === 5 && !killedAt) {
          killedAt = performance.now();
          await m.hosts.find((h) => h.id === victim)!.kill();
        }
      }
      if (rec.length !== r + 1) throw new Error('the run did not recover from the killed host');
    } finally {
      await m.close();
    }
  }
  return median(rec);
}

async function withFixture<T>(
  o: Parameters<typeof makeFixture>[0],
  fn: (f: Fixture) => Promise<T>,
): Promise<T> {
  const f = await makeFixture(o);
  try {
    return await fn(f);
  } finally {
    await f.whole.close();
    await f.orch.close();
    rmSync(f.dir, { recursive: true, force: true });
  }
}

export async function figures(want: BenchFilter): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const demoRanges: [number, number][] = [
    [0, 1],
    [2, 3],
  ];
  await withFixture({ ranges: demoRanges }, async (demo) => {
    Object.assign(out, await modelFigures(demo, demoRanges, 48, '_demo', want));
    if (want('m26.failover_recovery_ms_p50'))
      out['m26.failover_recovery_ms_p50'] = await failoverRecovery(demo);
  });
  const bigRanges: [number, number][] = [
    [0, 3],
    [4, 7],
  ];
  // 25 M: the single-sequence ratio as `_25m`, and the aggregate and wire figures
  if (
    [
      'm26.tokens_per_s_ratio_vs_local_25m',
      'm26.aggregate_ratio_4_sequences',
      'm26.wire_overhead_ratio',
    ].some(want)
  )
    await withFixture({ tiny: BIG, ranges: bigRanges, validate: false }, async (big) => {
      Object.assign(out, await modelFigures(big, bigRanges, 32, '', want, '_25m'));
    });
  // 100 M: the headline single-sequence ratio only
  const onlyRate: BenchFilter = (n) => n === 'm26.tokens_per_s_ratio_vs_local' && want(n);
  if (want('m26.tokens_per_s_ratio_vs_local'))
    await withFixture({ tiny: HUGE, ranges: bigRanges, validate: false }, async (huge) => {
      Object.assign(out, await modelFigures(huge, bigRanges, 32, '_100m', onlyRate, ''));
    });
  for (const k of Object.keys(out)) out[k] = Math.round(out[k]! * 1000) / 1000;
  return out;
}
