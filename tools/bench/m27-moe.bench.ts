/**
 * M27 figures (issue #15):
 * - `moe.route_p95_ratio_vs_budget`: route.query p95 (through the bus of a real node, hashed
 *   embedder, rule-based scorer) with 500 registered model experts, divided by the 50 ms budget.
 * - `moe.learned_vs_rule_auc_gain`: on a synthetic feedback set where the better experts are known
 *   (hidden quality by kind and recency, seeded PRNG), the learned scorer's ranking AUC on a held-out
 *   half minus the rule-based scorer's AUC on the same half.
 * - `moe.route_p95_ort_ratio_vs_budget`: the same route.query p95 with the `OrtEmbedder`
 *   (onnxruntime-web WASM, the generated tiny encoder of tools/model/tiny-encoder.ts — far smaller
 *   than multilingual-e5-small, so this bounds the routing overhead, not a real encoder's cost)
 *   divided by the 250 ms budget of digest §9.18.
 */
import 'fake-indexeddb/auto';
import type { BenchFilter } from './run.js';
import { createNode } from '../../engine/index.js';
import { configureOrt } from '../../engine/llm/ort.js';
import { MOE_INSTANCES } from '../../engine/moe/index.js';
import { OrtEmbedder } from '../../engine/moe/ort_embedder.js';
import { makeTinyEncoder } from '../model/tiny-encoder.js';
import {
  auc,
  features,
  KINDS,
  learnedScore,
  ruleScore,
  trainLogistic,
  type TrainingSample,
} from '../../engine/moe/scorer.js';

export const names = [
  'moe.route_p95_ratio_vs_budget',
  'moe.learned_vs_rule_auc_gain',
  'moe.route_p95_ort_ratio_vs_budget',
];

const VOCAB = [
  'cooking',
  'baking',
  'gardening',
  'bees',
  'bikes',
  'cars',
  'tax',
  'law',
  'history',
  'sankt-martins',
  'knitting',
  'linux',
  'python',
  'rust',
  'german',
  'dutch',
  'chess',
  'music',
  'choir',
  'football',
];

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function routeP95(ort = false): Promise<number> {
  const n = await createNode({ config: { moe: { requests_per_user_per_hour: 100_000 } } as never });
  await n.enable('moe');
  let emb: OrtEmbedder | null = null;
  if (ort) {
    configureOrt({ numThreads: 1 });
    const enc = makeTinyEncoder(7, 32);
    emb = await OrtEmbedder.load(enc.bytes, enc.tokenizerJson);
    MOE_INSTANCES.get(n.id)!.svc.useEmbedder(emb);
  }
  const r = rng(27);
  for (let i = 0; i < 500; i++) {
    const topics = [0, 1, 2].map(() => `${VOCAB[Math.floor(r() * VOCAB.length)]}-${Math.floor(r() * 10)}`);
    await n.call('experimental.moe.expert.register', { kind: 'model', model_id: `bench-${i}`, topics });
  }
  const times: number[] = [];
  for (let i = 0; i < 220; i++) {
    const t = VOCAB[i % VOCAB.length]!;
    const t0 = performance.now();
    await n.call('experimental.moe.route.query', {
      request_summary: `question about ${t} and more ${VOCAB[(i * 7) % VOCAB.length]}`,
      tags: [`${t}-${i % 10}`],
    });
    if (i >= 20) times.push(performance.now() - t0); // 20 warm-up calls
  }
  await n.close();
  await emb?.close();
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length * 0.95)]! / (ort ? 250 : 50);
}

function aucGain(): number {
  const r = rng(1127);
  const samples: TrainingSample[] = [];
  for (let i = 0; i < 1200; i++) {
    const kind = KINDS[Math.floor(r() * 3)]!; // human, model, service
    const p = { tag: Math.floor(r() * 3) / 2, sim: r(), rel: 0.5, rec: r() };
    // hidden truth: services answer these well, humans are good when recently active, tags matter a little
    const q = (kind === 'service' ? 1.2 : kind === 'human' ? 1.5 * p.rec - 0.5 : -0.4) + 0.4 * p.tag;
    const label = (r() < 1 / (1 + Math.exp(-3 * q)) ? 1 : 0) as 0 | 1;
    samples.push({ feedback_id: `f${String(i).padStart(5, '0')}`, features: features(p, kind, 0), label });
  }
  const train = samples.slice(0, 600);
  const test = samples.slice(600);
  const model = trainLogistic(train, 0);
  const labels = test.map((s) => s.label);
  const learned = test.map((s) => learnedScore(model, s.features, 0));
  const rule = test.map((s) =>
    ruleScore(
      { tag: s.features[0]!, sim: s.features[1]!, rel: s.features[2]!, rec: s.features[3]! },
      true,
      0,
    ),
  );
  return auc(learned, labels) - auc(rule, labels);
}

export async function figures(want: BenchFilter): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  if (want('moe.route_p95_ratio_vs_budget')) out['moe.route_p95_ratio_vs_budget'] = await routeP95();
  if (want('moe.learned_vs_rule_auc_gain')) out['moe.learned_vs_rule_auc_gain'] = aucGain();
  if (want('moe.route_p95_ort_ratio_vs_budget'))
    out['moe.route_p95_ort_ratio_vs_budget'] = await routeP95(true);
  return out;
}
