/**
 * M26 planner (digest B6): deterministic greedy cover of layers 0..L−1 with backtracking.
 *
 * cursor = 0; only shards with `lo == cursor` qualify (an earlier start would re-run layers). Options at a
 * cursor are ordered: shards already in the run (re-plans) → direct before relayed → lower queue_depth → larger
 * `hi` → lower p95 → lexicographic `shard_id@host`. Take the first, cursor = hi+1, recurse; a dead end tries the
 * next option; boundaries proven uncoverable are memoised (with the depth budget they failed under); more than
 * `max_shards` shards is a dead end; done at cursor == total_layers. Pure: no clock, no I/O.
 */
import { HnError } from '../core/errors.js';
import { DISTRIBUTED_LLM_MAX_SHARDS_PER_PIPELINE } from '../core/constants.js';

export type ShardPath = 'direct' | 'relayed' | 'memory';

export interface PlanCandidate {
  shard_id: string;
  host: string;
  layer_range: [number, number];
  path: ShardPath;
  queue_depth: number;
  p95_latency_ms: number;
}

export interface PlanOptions {
  max_shards?: number;
  /** `shard_id@host` keys already in the run: ranked first (re-plan). */
  prefer?: ReadonlySet<string>;
}

export type PlanResult =
  | { ok: true; shards: PlanCandidate[] }
  | { ok: false; reason: 'uncovered' | 'max_shards'; first_uncovered_layer: number };

export const keyOf = (c: { shard_id: string; host: string }): string => `${c.shard_id}@${c.host}`;

/** Total order of options at one cursor (B6). Direct includes in-memory links. */
export function compareCandidates(a: PlanCandidate, b: PlanCandidate, prefer?: ReadonlySet<string>): number {
  const pa = prefer?.has(keyOf(a)) ? 0 : 1;
  const pb = prefer?.has(keyOf(b)) ? 0 : 1;
  if (pa !== pb) return pa - pb;
  const ra = a.path === 'relayed' ? 1 : 0;
  const rb = b.path === 'relayed' ? 1 : 0;
  if (ra !== rb) return ra - rb;
  if (a.queue_depth !== b.queue_depth) return a.queue_depth - b.queue_depth;
  if (a.layer_range[1] !== b.layer_range[1]) return b.layer_range[1] - a.layer_range[1];
  if (a.p95_latency_ms !== b.p95_latency_ms) return a.p95_latency_ms - b.p95_latency_ms;
  const ka = keyOf(a);
  const kb = keyOf(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

export function planCover(
  candidates: readonly PlanCandidate[],
  totalLayers: number,
  opts: PlanOptions = {},
): PlanResult {
  if (!Number.isInteger(totalLayers) || totalLayers < 1)
    throw new HnError('bad_request', 'total_layers must be a positive integer');
  const maxShards = opts.max_shards ?? DISTRIBUTED_LLM_MAX_SHARDS_PER_PIPELINE;
  if (!Number.isInteger(maxShards) || maxShards < 1 || maxShards > DISTRIBUTED_LLM_MAX_SHARDS_PER_PIPELINE)
    throw new HnError('bad_request', `max_shards must be 1..${DISTRIBUTED_LLM_MAX_SHARDS_PER_PIPELINE}`);
  const byStart = new Map<number, PlanCandidate[]>();
  for (const c of candidates) {
    const [lo, hi] = c.layer_range;
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 0 || hi < lo || hi >= totalLayers) continue;
    let list = byStart.get(lo);
    if (!list) byStart.set(lo, (list = []));
    list.push(c);
  }
  for (const list of byStart.values()) list.sort((a, b) => compareCandidates(a, b, opts.prefer));

  // failedWith[cursor] = the largest remaining depth budget under which `cursor` was proven uncoverable
  const failedWith = new Map<number, number>();
  const chosen: PlanCandidate[] = [];
  const dfs = (cursor: number, budget: number): boolean => {
    if (cursor === totalLayers) return true;
    if (budget === 0) return false;
    const f = failedWith.get(cursor);
    if (f !== undefined && f >= budget) return false;
    for (const c of byStart.get(cursor) ?? []) {
      chosen.push(c);
      if (dfs(c.layer_range[1] + 1, budget - 1)) return true;
      chosen.pop();
    }
    failedWith.set(cursor, Math.max(f ?? 0, budget));
    return false;
  };
  if (dfs(0, maxShards)) return { ok: true, shards: [...chosen] };

  // name the first layer no chain of shards from layer 0 reaches (BFS: fewest shards to each boundary)
  const dist = new Map<number, number>([[0, 0]]);
  const queue = [0];
  while (queue.length) {
    const c = queue.shift()!;
    for (const s of byStart.get(c) ?? []) {
      const n = s.layer_range[1] + 1;
      if (!dist.has(n)) {
        dist.set(n, dist.get(c)! + 1);
        queue.push(n);
      }
    }
  }
  const within = [...dist].filter(([, d]) => d <= maxShards).map(([c]) => c);
  if (dist.has(totalLayers))
    return { ok: false, reason: 'max_shards', first_uncovered_layer: Math.max(...within) };
  return { ok: false, reason: 'uncovered', first_uncovered_layer: Math.max(...dist.keys()) };
}
