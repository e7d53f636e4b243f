/**
 * Profiling aid for M26 (not a bench figure): times each stage of one decoded token on the 25 M bench model (M26_PROFILE_MODEL=100m: the 100 M one) in one
 * thread — local whole-model step, head embed, each shard's step, tail logits, wire conversions — so the pipeline's
 * per-token cost can be compared stage by stage with the local path. `npx tsx tools/bench/m26-profile.ts`
 */
import { rmSync } from 'node:fs';
import { makeFixture } from '../../tests/unit/m26-helpers.js';
import { installedFromManifest } from '../../engine/distributed_inference/onnx.js';
import { dirSource } from '../model/node-source.js';
import { toWire, fromWire } from '../../engine/distributed_inference/wire.js';
import { OnnxLocalLlm } from '../../engine/llm/local.js';
import { BIG, HUGE } from './m26-models.js';

/** M26_PROFILE_MODEL=100m profiles the 100 M model instead of the 25 M one. */
const MODEL = process.env.M26_PROFILE_MODEL === '100m' ? HUGE : BIG;

const N = Number(process.env.N ?? 40);
const f = await makeFixture({
  tiny: MODEL,
  ranges: [
    [0, 3],
    [4, 7],
  ],
  validate: false,
});
const inst = installedFromManifest(dirSource(f.splitDir), f.manifest, { executionProviders: ['wasm'] });
const a = await inst.load(0, 3);
const b = await inst.load(4, 7);
const whole = f.whole as OnnxLocalLlm;
const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const time = async (fn: () => Promise<unknown>) => {
  const t = performance.now();
  await fn();
  return performance.now() - t;
};
const prompt = Array.from({ length: 12 }, (_, i) => 65 + i);
// local whole model, step by step
const tl: number[] = [];
{
  let k = 0;
  let last = performance.now();
  for await (const _ of whole.generate('Describe a community mesh network in one paragraph.', {
    max_tokens: N,
    temperature: 0,
  })) {
    void _;
    const now = performance.now();
    if (k++ > 0) tl.push(now - last);
    last = now;
  }
}
const sa = a.openSession();
const sb = b.openSession();
const h0 = await f.orch.embed(prompt);
await sb.forward(await sa.forward(fromWire(toWire(h0, 'fp16'), a.compute_dtype)));
const st: Record<string, number[]> = {
  whole: [],
  head: [],
  toWire: [],
  fromWire: [],
  shardA: [],
  shardB: [],
  tail: [],
};
const wsess = (
  whole as unknown as {
    parts: { whole: { openSession(): { forwardAll(ids: number[]): Promise<Float32Array> } } };
  }
).parts.whole.openSession();
await wsess.forwardAll(prompt);
for (let i = 0; i < N; i++) {
  st.whole!.push(await time(() => wsess.forwardAll([70 + (i % 20)])));
  let h: Awaited<ReturnType<typeof f.orch.embed>> | undefined;
  st.head!.push(await time(async () => (h = await f.orch.embed([70 + (i % 20)]))));
  let w = toWire(h!, 'fp16');
  st.toWire!.push(await time(async () => (w = toWire(h!, 'fp16'))));
  let x = fromWire(w, a.compute_dtype);
  st.fromWire!.push(await time(async () => (x = fromWire(w, a.compute_dtype))));
  let y: typeof x | undefined;
  if (process.env.GAP) await new Promise((r) => setTimeout(r, Number(process.env.GAP)));
  st.shardA!.push(await time(async () => (y = await sa.forward(x))));
  let z: typeof x | undefined;
  st.shardB!.push(await time(async () => (z = await sb.forward(fromWire(toWire(y!, 'fp16'), 'float32')))));
  st.tail!.push(await time(async () => f.orch.logits(z!)));
}
console.log('local step ms (median)', med(tl).toFixed(2));
for (const [k, v] of Object.entries(st))
  console.log(k.padEnd(10), med(v).toFixed(3), Math.min(...v).toFixed(3));
sa.close();
sb.close();
await a.release();
await b.release();
await f.whole.close();
await f.orch.close();
rmSync(f.dir, { recursive: true, force: true });
