/**
 * `npm run bench -- inference`: local generation speed of the demo model (models/demo, built if
 * absent) with onnxruntime-web's WASM backend in Node, one thread.
 *   inference.local_tokens_per_s_wasm — greedy decode tokens per second after the first token
 *   (prefill excluded), median of 3 runs of 64 tokens from a chat prompt.
 */
import { OnnxLocalLlm } from '../../engine/llm/local.js';
import { configureOrt } from '../../engine/llm/ort.js';
import { dirSource } from '../model/node-source.js';
import type { BenchFilter } from './run.js';
import { ensureDemoModel } from '../model/demo-model.js';

export const names = ['inference.local_tokens_per_s_wasm'];

export async function figures(want: BenchFilter): Promise<Record<string, number>> {
  if (!want('inference.local_tokens_per_s_wasm')) return {};
  const { dir } = await ensureDemoModel();
  configureOrt({ numThreads: 1 });
  const llm = await OnnxLocalLlm.loadWhole(dirSource(dir), { executionProviders: ['wasm'] });
  try {
    const msgs = [{ role: 'user', content: 'Describe a community mesh network in one paragraph.' }];
    const N = 64;
    // warm-up
    for await (const _ of llm.generate(msgs, { max_tokens: 8, eos_token_ids: [] })) void _;
    const rates: number[] = [];
    for (let r = 0; r < 3; r++) {
      let first = 0;
      let n = 0;
      for await (const _ of llm.generate(msgs, { max_tokens: N, eos_token_ids: [] })) {
        void _;
        if (n === 0) first = performance.now();
        n++;
      }
      const dt = (performance.now() - first) / 1000;
      if (n !== N) throw new Error(`expected ${N} tokens, got ${n}`);
      rates.push((n - 1) / dt);
    }
    rates.sort((a, b) => a - b);
    return { 'inference.local_tokens_per_s_wasm': Math.round(rates[1]! * 10) / 10 };
  } finally {
    await llm.close();
  }
}
