/**
 * `npm run bench -- m26`: M26 distributed inference in Node — real nodes linked in memory, real X08 sessions,
 * ORT-web WASM (one thread). ALL NODES SHARE ONE PROCESS AND ONE CPU THREAD here, so a pipeline cannot run
 * stages in parallel: the ratios measure the hop/conversion overhead, not LAN speed-up.
 *   m26.tokens_per_s_ratio_vs_local       — decode tokens/s, 2-host pipeline (fp16 wire) ÷ the whole model in
 *                                           this process; generated model "m26-bench-25m": 8 layers, hidden 512,
 *                                           8 heads / 4 KV heads × 64, MLP 1536, vocab 259 (≈ 25.5 M parameters)
 *   m26.tokens_per_s_ratio_vs_local_demo  — the same on the tiny demo-size model (4 layers, hidden 64)
 *   m26.aggregate_ratio_4_sequences       — 4 concurrent runs through the pipeline ÷ 4 concurrent local runs
 *                                           (total tokens/s; demo model)
 *   m26.failover_recovery_ms_p50          — link to the serving host closed → next token streamed (median of 3)
 *   m26.wire_overhead_ratio               — link bytes per decoded token per hop (one tensor one way) ÷
 *                                           (hidden × 2 B fp16); link framing, X08 headers, END/ACK included
 */
import { rmSync } from 'node:fs';
import type { StreamFrame } from '../../engine/bus/types.js';
import { CAP } from '../../engine/distributed_inference/types.js';
import {
  admit,
  link,
  m26Node,
  makeFixture,
  syncAds,
  type Fixture,
  type M26Node,
} from '../../tests/unit/m26-helpers.js';
import type { BenchFilter } from './run.js';

export const names = [
  'm26.tokens_per_s_ratio_vs_local',
  'm26.tokens_per_s_ratio_vs_local_demo',
  'm26.aggregate_ratio_4_sequences',
  'm26.failover_recovery_ms_p50',
  'm26.wire_overhead_ratio',
];

const PROMPT = 'Describe a community mesh network in one paragraph.';

async function mesh(f: Fixture, ranges: [number, number][], count?: (b: number) => void) {
  const orch = await m26Node(f, {
    serve: false,
    config: { distributed_llm: { failover_timeout_seconds: 10 } },
  });
  const hosts: M26Node[] = [];
  for (const r of ranges) {
    const h = await m26Node(f, { founder: orch.node });
    await admit(orch.node, h.node, 'trusted');
    await link(orch.node, h.node, count);
    await h.mod.serve({ model_id: f.manifest.model_id, layer_range: r });
    hosts.push(h);
  }
  await syncAds(orch, hosts, ranges.length);
  return {
    orch,
    hosts,
    close: async () => {
      for (const n of [orch, ...hosts]) await n.node.close();
    },
  };
}

const input = (f: Fixture, n: number) => ({
  model_id: f.manifest.model_id,
  weights_sha256: f.manifest.weights_sha256,
  prompt: PROMPT,
  max_tokens: n,
});

/** Decode tokens/s after the first token of one pipeline run (the tokenizer's EOS may end it early). */
async function pipelineRate(orch: M26Node, f: Fixture, n: number): Promise<{ rate: number; tokens: number }> {
  let first = 0;
  let k = 0;
  for await (const fr of orch.node.stream(CAP.run, input(f, n)) as AsyncIterable<StreamFrame>) {
    if (fr.event !== 'token') continue;
    if (k === 0) first = performance.now();
    k++;
  }
  return { rate: k > 1 ? ((k - 1) * 1000) / (performance.now() - first) : 0, tokens: k };
}

async function localRate(f: Fixture, n: number): Promise<number> {
  let first = 0;
  let k = 0;
  for await (const _ of f.whole.generate(PROMPT, { max_tokens: n })) {
    void _;
    if (k === 0) first = performance.now();
    k++;
  }
  return k > 1 ? ((k - 1) * 1000) / (performance.now() - first) : 0;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function ratio(f: Fixture, ranges: [number, number][], n: number): Promise<number> {
  const m = await mesh(f, ranges);
  try {
    await pipelineRate(m.orch, f, 4); // warm-up
    await localRate(f, 4);
    const p: number[] = [];
    const l: number[] = [];
    for (let r = 0; r < 3; r++) {
      p.push((await pipelineRate(m.orch, f, n)).rate);
      l.push(await localRate(f, n));
    }
    return median(p) / median(l);
  } finally {
    await m.close();
  }
}

export async function figures(want: BenchFilter): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const demo = await makeFixture({
    ranges: [
      [0, 1],
      [2, 3],
    ],
  });
  try {
    if (want('m26.tokens_per_s_ratio_vs_local_demo'))
      out['m26.tokens_per_s_ratio_vs_local_demo'] = await ratio(
        demo,
        [
          [0, 1],
          [2, 3],
        ],
        48,
      );

    if (want('m26.aggregate_ratio_4_sequences')) {
      const m = await mesh(demo, [
        [0, 1],
        [2, 3],
      ]);
      try {
        const N = 32;
        await pipelineRate(m.orch, demo, 4);
        let t0 = performance.now();
        const runs = await Promise.all([0, 1, 2, 3].map(() => pipelineRate(m.orch, demo, N)));
        const pipe = runs.reduce((a, r) => a + r.tokens, 0) / ((performance.now() - t0) / 1000);
        t0 = performance.now();
        let local = 0;
        await Promise.all(
          [0, 1, 2, 3].map(async () => {
            for await (const _ of demo.whole.generate(PROMPT, { max_tokens: N })) {
              void _;
              local++;
            }
          }),
        );
        out['m26.aggregate_ratio_4_sequences'] = pipe / (local / ((performance.now() - t0) / 1000));
      } finally {
        await m.close();
      }
    }

    if (want('m26.wire_overhead_ratio')) {
      let bytes = 0;
      let counting = false;
      const m = await mesh(
        demo,
        [
          [0, 1],
          [2, 3],
        ],
        (b) => {
          if (counting) bytes += b;
        },
      );
      try {
        let k = 0;
        for await (const fr of m.orch.node.stream(CAP.run, input(demo, 48)) as AsyncIterable<StreamFrame>) {
          if (fr.event !== 'token') continue;
          k++;
          if (k === 1) counting = true; // decode only: from the first token on
        }
        counting = false;
        const hops = 2 * 2; // 2 shards, a tensor each way
        out['m26.wire_overhead_ratio'] = bytes / ((k - 1) * hops) / (demo.manifest.dims.hidden_size * 2);
      } finally {
        await m.close();
      }
    }

    if (want('m26.failover_recovery_ms_p50')) {
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
              m.orch.node.session(victim as never)!.close('killed');
            }
          }
        } finally {
          await m.close();
        }
      }
      out['m26.failover_recovery_ms_p50'] = median(rec);
    }
  } finally {
    await demo.whole.close();
    await demo.orch.close();
    rmSync(demo.dir, { recursive: true, force: true });
  }

  if (want('m26.tokens_per_s_ratio_vs_local')) {
    const big = await makeFixture({
      tiny: {
        model_id: 'm26-bench-25m',
        num_hidden_layers: 8,
        hidden_size: 512,
        num_attention_heads: 8,
        num_key_value_heads: 4,
        head_dim: 64,
        intermediate_size: 1536,
        max_position_embeddings: 256,
      },
      ranges: [
        [0, 3],
        [4, 7],
      ],
      validate: false,
    });
    try {
      out['m26.tokens_per_s_ratio_vs_local'] = await ratio(
        big,
        [
          [0, 3],
          [4, 7],
        ],
        32,
      );
    } finally {
      await big.whole.close();
      await big.orch.close();
      rmSync(big.dir, { recursive: true, force: true });
    }
  }
  for (const k of Object.keys(out)) out[k] = Math.round(out[k]! * 1000) / 1000;
  return out;
}
