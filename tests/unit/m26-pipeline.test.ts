/**
 * M26 in Node (digest B9/B10): real nodes linked in memory, real X08 sessions, the tiny decoder split per layer
 * with the real splitter, ORT-web WASM. Outputs are compared with the monolithic model (the B9 oracle).
 */
import { rmSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { StreamFrame } from '../../engine/bus/types.js';
import { CAP } from '../../engine/distributed_inference/types.js';
import {
  admit,
  link,
  m26Node,
  makeFixture,
  reference,
  syncAds,
  type Fault,
  type Fixture,
  type M26Node,
} from './m26-helpers.js';

const PROMPT = 'The hearth is warm tonight.';
let f: Fixture;
const open: M26Node[] = [];
beforeAll(async () => {
  f = await makeFixture();
}, 120_000);
afterAll(async () => {
  await f.whole.close();
  await f.orch.close();
  rmSync(f.dir, { recursive: true, force: true });
});
afterEach(async () => {
  for (const n of open.splice(0).reverse()) await n.node.close();
});

async function mesh(
  ranges: ([number, number] | null)[],
  o: { faults?: (() => Fault)[]; local?: boolean; config?: Record<string, unknown> } = {},
) {
  const orch = await m26Node(f, { serve: false, ...(o.local ? { local: true } : {}), ...(o.config ? { config: o.config } : {}) });
  open.push(orch);
  const hosts: M26Node[] = [];
  for (const [i] of ranges.entries()) {
    const h = await m26Node(f, { founder: orch.node, ...(o.faults?.[i] ? { fault: o.faults[i] } : {}), ...(o.config ? { config: o.config } : {}) });
    open.push(h);
    await admit(orch.node, h.node, 'trusted');
    await link(orch.node, h.node);
    hosts.push(h);
  }
  for (const [i, r] of ranges.entries())
    if (r) await hosts[i]!.mod.serve({ model_id: f.manifest.model_id, layer_range: r });
  await syncAds(orch, hosts, ranges.filter(Boolean).length);
  return { orch, hosts };
}

async function collect(it: AsyncIterable<StreamFrame>, onToken?: (i: number) => void | Promise<void>) {
  const frames: StreamFrame[] = [];
  for await (const fr of it) {
    frames.push(fr);
    if (fr.event === 'token') await onToken?.(fr.data.index as number);
  }
  return frames;
}
const tokensOf = (frames: StreamFrame[]) => frames.filter((x) => x.event === 'token').map((x) => x.data.token_id as number);
const doneOf = (frames: StreamFrame[]) => frames.find((x) => x.event === 'done')!.data;
const runInput = (extra: Record<string, unknown> = {}) => ({
  model_id: f.manifest.model_id,
  weights_sha256: f.manifest.weights_sha256,
  prompt: PROMPT,
  max_tokens: 24,
  ...extra,
});

describe('M26 pipeline over real nodes', () => {
  it('2 hosts (0-1, 2-3): greedy output identical to the monolithic model, fp32 and fp16 wire', async () => {
    const ref = await reference(f, PROMPT, 24);
    expect(ref.length).toBeGreaterThan(8);
    const { orch } = await mesh([
      [0, 1],
      [2, 3],
    ]);
    for (const wire of ['fp32', 'fp16']) {
      const frames = await collect(orch.node.stream(CAP.run, runInput({ wire_dtype: wire })));
      expect(tokensOf(frames)).toEqual(ref);
      const done = doneOf(frames);
      expect(done).toMatchObject({ via: 'pipeline', failovers: 0, tokens_out: ref.length });
      const st = frames.find((x) => x.event === 'shard_status')!.data;
      expect(st.shards.map((s: { shard_id: string }) => s.shard_id)).toEqual([
        `${f.manifest.model_id}:0-1:fp32`,
        `${f.manifest.model_id}:2-3:fp32`,
      ]);
    }
  }, 120_000);
});
