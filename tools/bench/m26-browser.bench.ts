/**
 * The M26 CI budgets of the tensor digest's B10.10 in localhost Chromium (synthetic model: the demo model, 4 layers,
 * hidden 64): three headless Chromium browsers (Debian `/usr/bin/chromium`, one `chromium.launch` each) on the built
 * PWA served by an in-process relay — Q asks, A serves layers 0–1 and B 2–3 (loaded before anything is timed), fp16
 * wire (the default). After a warm-up (one ask through the view, then WARM_RUNS runs: the hosts' WASM and JIT warm
 * up; their figures are printed), RUNS runs of a 32-token prompt (byte tokenizer: 32 ASCII characters), 64 tokens
 * each, timed in Q's page; each figure is the median over the runs:
 *   m26.plan_to_first_byte_ratio_vs_budget — `pipeline.plan` called → the run's first frame (`shard_status`, sent
 *                                            once every shard's X08 session is open, before the prefill), median ÷ 500 ms
 *   m26.first_token_ratio_vs_budget        — the run's own `first_token_ms` (from the call, plan included), median
 *                                            ÷ 800 ms
 *   m26.hop_overhead_p95_ratio_vs_budget   — the orchestrator's per-hop round trip p95 (`pipeline.status` after the
 *                                            run: each shard's last 64 hops, decode-sized tensors), the worst shard,
 *                                            median over the runs ÷ 25 ms. The budget's overhead is round trip − host
 *                                            compute; the whole round trip is counted (an upper bound of it)
 * and, beside them, `m26.browser_hop_ms_p95`, `m26.browser_first_token_ms`, `m26.browser_plan_to_first_byte_ms` and
 * `m26.browser_host_forward_ms_p95` (the slower host's own forward time p95, its health window: the compute inside a
 * hop).
 * ≤ 1 meets a budget. The app is built into a scratch folder (never `app/dist`). Never logs prompts or tokens.
 */
import { serveBuiltApp, type BuiltApp } from './built-app.js';
import type { BenchFilter } from './run.js';
import { P, knownAds, m26Browsers, serveRange, type M26Browsers } from '../../tests/e2e/m26-peers.js';
import { ensureDemoModel } from '../model/demo-model.js';

export const names = [
  'm26.plan_to_first_byte_ratio_vs_budget',
  'm26.first_token_ratio_vs_budget',
  'm26.hop_overhead_p95_ratio_vs_budget',
  'm26.browser_plan_to_first_byte_ms',
  'm26.browser_first_token_ms',
  'm26.browser_hop_ms_p95',
  'm26.browser_host_forward_ms_p95',
];

const RUNS = 10;
/** timed runs discarded after the view's warm-up ask: WASM tier-up and JIT in the hosts' inference workers */
const WARM_RUNS = 3;
// 32 ASCII characters = 32 tokens of the byte tokenizer; the demo model's greedy answer runs past 64 tokens
const PROMPT = 'Describe a community mesh radio.';
const MAX_TOKENS = 64;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface RunTimes {
  firstFrameMs: number;
  firstTokenMs: number;
  hopP95: number;
  tokens: number;
}

/** One timed run in Q's page: plan, then run that plan; the frames' contents never leave the page. */
function timedRun(q: M26Browsers['q']): Promise<RunTimes> {
  return q.evaluate(
    async ({ p, prompt, max }) => {
      const node = window.hearthnet!;
      const model = (await node.call(`${p}shard.list`, { scope: 'known' })).shards[0] as {
        model_id: string;
        weights_sha256: string;
      };
      const t0 = performance.now();
      const plan = await node.call(`${p}pipeline.plan`, {
        model_id: model.model_id,
        weights_sha256: model.weights_sha256,
      });
      let firstFrameMs = -1;
      let firstTokenMs = -1;
      let tokens = 0;
      for await (const f of node.stream(`${p}pipeline.run`, {
        pipeline_id: plan.pipeline_id,
        prompt,
        max_tokens: max,
        temperature: 0,
      }) as AsyncIterable<{ event: string; data: any }>) {
        if (firstFrameMs < 0) firstFrameMs = performance.now() - t0;
        if (f.event === 'token') tokens++;
        if (f.event === 'done') firstTokenMs = f.data.first_token_ms;
      }
      // the run's record: each shard's round-trip p95 over its last 64 hops
      const st = await node.call(`${p}pipeline.status`, { pipeline_id: plan.pipeline_id });
      const shards = Object.values(st.pipelines[0].shards) as { p95_latency_ms: number }[];
      return { firstFrameMs, firstTokenMs, hopP95: Math.max(...shards.map((s) => s.p95_latency_ms)), tokens };
    },
    { p: P, prompt: PROMPT, max: MAX_TOKENS },
  );
}

export async function figures(want: BenchFilter): Promise<Record<string, number>> {
  if (!names.some(want)) return {};
  if (PROMPT.length !== 32) throw new Error('the bench prompt must be 32 characters');
  await ensureDemoModel();
  let app: BuiltApp | null = null;
  let mesh: M26Browsers | null = null;
  try {
    app = await serveBuiltApp({ models: true });
    mesh = await m26Browsers(app.url, ['a', 'b'], 'fp16');
    await serveRange(mesh.hosts.a!, 0, 1);
    await serveRange(mesh.hosts.b!, 2, 3);
    await knownAds(mesh.q, 2);
    // warm-up through the view, as a person would ask: Q loads its head and tail, the hosts run their first forwards
    const q = mesh.q;
    await q.getByTestId('dl-prompt').fill(PROMPT);
    await q.getByTestId('dl-max').fill(String(MAX_TOKENS));
    await q.getByTestId('dl-ask').click();
    await q.getByTestId('dl-done').waitFor({ timeout: 120_000 });
    const cold: RunTimes[] = [];
    for (let i = 0; i < WARM_RUNS; i++) cold.push(await timedRun(q));
    process.stderr.write(
      `m26 browser warm-up: first token ${cold.map((r) => r.firstTokenMs.toFixed(0)).join(' ')} ms | hop p95 ${cold
        .map((r) => r.hopP95.toFixed(1))
        .join(' ')} ms\n`,
    );
    const runs: RunTimes[] = [];
    for (let i = 0; i < RUNS; i++) {
      const r = await timedRun(mesh.q);
      if (r.firstFrameMs < 0 || r.firstTokenMs < 0 || r.tokens < MAX_TOKENS)
        throw new Error(`m26 browser run ${i} ended early (${r.tokens} tokens)`);
      runs.push(r);
    }
    // each host's own forward time p95 (its health window: the last forwards it ran), the compute inside a hop
    const hostMs = await Promise.all(
      Object.values(mesh.hosts).map((h) =>
        h.evaluate(
          async (p) =>
            (await window.hearthnet!.call(`${p}shard.list`, {})).shards[0].p95_latency_ms as number,
          P,
        ),
      ),
    );
    const planMs = median(runs.map((r) => r.firstFrameMs));
    const firstMs = median(runs.map((r) => r.firstTokenMs));
    const hopMs = median(runs.map((r) => r.hopP95));
    process.stderr.write(
      `m26 browser: plan→first frame ${runs.map((r) => r.firstFrameMs.toFixed(0)).join(' ')} ms | first token ${runs
        .map((r) => r.firstTokenMs.toFixed(0))
        .join(
          ' ',
        )} ms | hop p95 ${runs.map((r) => r.hopP95.toFixed(1)).join(' ')} ms | hosts' forward p95 ${hostMs.join(
        ' ',
      )} ms\n`,
    );
    const out: Record<string, number> = {
      'm26.plan_to_first_byte_ratio_vs_budget': planMs / 500,
      'm26.first_token_ratio_vs_budget': firstMs / 800,
      'm26.hop_overhead_p95_ratio_vs_budget': hopMs / 25,
      'm26.browser_plan_to_first_byte_ms': planMs,
      'm26.browser_first_token_ms': firstMs,
      'm26.browser_hop_ms_p95': hopMs,
      'm26.browser_host_forward_ms_p95': Math.max(...hostMs),
    };
    for (const k of Object.keys(out)) out[k] = Math.round(out[k]! * 1000) / 1000;
    return Object.fromEntries(Object.entries(out).filter(([k]) => want(k)));
  } finally {
    await mesh?.close();
    await app?.close();
  }
}
