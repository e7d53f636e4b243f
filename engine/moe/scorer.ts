/**
 * M27 scorers (digest §5): the rule-based scorer (default) and a logistic regression over the
 * `moe-f1` features, trained deterministically (zero init, full-batch gradient descent, lr 0.1,
 * 500 iterations, L2 1e-3, samples sorted by feedback_id, standardised features).
 */
export type ExpertKind = 'human' | 'model' | 'service' | 'external';
export const KINDS: readonly ExpertKind[] = ['human', 'model', 'service', 'external'];
export const FEATURE_SET = 'moe-f1';

export interface ScoreParts {
  tag: number;
  sim: number;
  rel: number;
  rec: number;
}

/** Expected latency per kind (minutes) — humans are slow, everything else answers at once. */
export const EXPECTED_LATENCY_MINUTES: Record<ExpertKind, number> = {
  human: 60,
  model: 1,
  service: 1,
  external: 5,
};

/** 0: ≤1 min, 1: ≤10, 2: ≤60, 3: longer. */
export function latencyBucket(min: number): number {
  return min <= 1 ? 0 : min <= 10 ? 1 : min <= 60 ? 2 : 3;
}

export const clamp01 = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : x);

/** tag = |Tq ∩ Te| / |Tq| (0 without tags). */
export function tagScore(
  queryTags: readonly string[],
  expertTopics: ReadonlySet<string> | readonly string[],
): number {
  if (queryTags.length === 0) return 0;
  const set = expertTopics instanceof Set ? expertTopics : new Set(expertTopics as readonly string[]);
  let n = 0;
  for (const t of new Set(queryTags)) if (set.has(t)) n++;
  return n / new Set(queryTags).size;
}

/** rel = (helpful + 1) / (rated + 2). */
export const reliability = (helpful: number, rated: number) => (helpful + 1) / (rated + 2);
/** rec = 0.5^(days since last activity / 30). */
export const recency = (daysSince: number) => Math.pow(0.5, Math.max(0, daysSince) / 30);

export function ruleScore(p: ScoreParts, hasTags: boolean, scoreBias: number): number {
  const raw = hasTags
    ? 0.45 * p.tag + 0.3 * p.sim + 0.15 * p.rel + 0.1 * p.rec
    : 0.75 * p.sim + 0.15 * p.rel + 0.1 * p.rec;
  return clamp01(raw + 0.1 * scoreBias);
}

/** moe-f1 = [tag, sim, rel, rec, kind one-hot ×4, expected-latency bucket, score_bias]. */
export function features(p: ScoreParts, kind: ExpertKind, scoreBias: number): number[] {
  return [
    p.tag,
    p.sim,
    p.rel,
    p.rec,
    ...KINDS.map((k) => (k === kind ? 1 : 0)),
    latencyBucket(EXPECTED_LATENCY_MINUTES[kind]),
    scoreBias,
  ];
}

export interface LearnedModel {
  feature_set: typeof FEATURE_SET;
  weights: number[];
  bias: number;
  mean: number[];
  std: number[];
  samples: number;
  trained_at: number;
}

export interface TrainingSample {
  feedback_id: string;
  features: number[];
  label: 0 | 1;
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** Deterministic logistic regression (the same samples give bit-identical weights). */
export function trainLogistic(
  samples: readonly TrainingSample[],
  now: number,
  iterations = 500,
): LearnedModel {
  const s = [...samples].sort((a, b) =>
    a.feedback_id < b.feedback_id ? -1 : a.feedback_id > b.feedback_id ? 1 : 0,
  );
  const d = s[0]?.features.length ?? 10;
  const n = s.length;
  const mean = new Array<number>(d).fill(0);
  const std = new Array<number>(d).fill(0);
  for (const x of s) for (let j = 0; j < d; j++) mean[j]! += x.features[j]! / n;
  for (const x of s) for (let j = 0; j < d; j++) std[j]! += (x.features[j]! - mean[j]!) ** 2 / n;
  for (let j = 0; j < d; j++) std[j] = Math.sqrt(std[j]!) || 1;
  const X = s.map((x) => x.features.map((v, j) => (v - mean[j]!) / std[j]!));
  const w = new Array<number>(d).fill(0);
  let b = 0;
  const lr = 0.1;
  const l2 = 1e-3;
  for (let it = 0; it < iterations; it++) {
    const gw = new Array<number>(d).fill(0);
    let gb = 0;
    for (let i = 0; i < n; i++) {
      const xi = X[i]!;
      let z = b;
      for (let j = 0; j < d; j++) z += w[j]! * xi[j]!;
      const err = sigmoid(z) - s[i]!.label;
      for (let j = 0; j < d; j++) gw[j]! += err * xi[j]!;
      gb += err;
    }
    for (let j = 0; j < d; j++) w[j] = w[j]! - lr * (gw[j]! / n + l2 * w[j]!);
    b -= lr * (gb / n);
  }
  return { feature_set: FEATURE_SET, weights: w, bias: b, mean, std, samples: n, trained_at: now };
}

export function learnedScore(m: LearnedModel, f: readonly number[], scoreBias: number): number {
  let z = m.bias;
  for (let j = 0; j < m.weights.length; j++) z += m.weights[j]! * ((f[j]! - m.mean[j]!) / m.std[j]!);
  return clamp01(sigmoid(z) + 0.1 * scoreBias);
}

/** Ranking AUC: probability a positive outranks a negative (ties count ½). */
export function auc(scores: readonly number[], labels: readonly (0 | 1)[]): number {
  let pos = 0;
  let neg = 0;
  let wins = 0;
  for (let i = 0; i < scores.length; i++)
    for (let j = 0; j < scores.length; j++)
      if (labels[i] === 1 && labels[j] === 0)
        wins += scores[i]! > scores[j]! ? 1 : scores[i] === scores[j] ? 0.5 : 0;
  for (const l of labels)
    if (l === 1) pos++;
    else neg++;
  return pos && neg ? wins / (pos * neg) : 0.5;
}
