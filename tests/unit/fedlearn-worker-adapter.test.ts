/**
 * The inference worker's `setAdapter` (workers/inference/adapter.ts) on a real whole ONNX model loaded by
 * onnxruntime-web: with an adapter the same handle computes other logits (those of the generator's model
 * from W + ΔW), `null` brings back the base logits exactly; refusals (not an adapter, a model without the
 * adapted weights, a model that is not a whole ONNX) leave the loaded model as it was.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decoderCard } from '../../engine/fedlearn/base.js';
import { ADAPTER_FORMAT, encodeSafetensors } from '../../engine/fedlearn/delta.js';
import { loraInit } from '../../engine/fedlearn/lora-init.js';
import { xoshiro128ss } from '../../engine/fedlearn/rng.js';
import { configureOrt } from '../../engine/llm/ort.js';
import { OnnxLocalLlm } from '../../engine/llm/local.js';
import { dirSource } from '../../tools/model/node-source.js';
import { writeTinyModel } from '../../tools/model/tiny-model.js';
import {
  adapterApi,
  closeSessions,
  llmFor,
  MAX_ADAPTED_SESSIONS,
  type AdaptableEntry,
} from '../../workers/inference/adapter.js';
import { maxAbsDiff } from './fedlearn-tf-helpers.js';

configureOrt({ numThreads: 1 });
const OVER = {
  num_hidden_layers: 2,
  hidden_size: 32,
  head_dim: 8,
  intermediate_size: 64,
  max_position_embeddings: 64,
};
const opts = { executionProviders: ['wasm' as const] };
let dir = '';
let entry: AdaptableEntry;
const engine = () => import('../../engine/llm/local.js');

function adapterBytes(layers: number): Uint8Array {
  const w = writeTinyModel(join(dir, 'x'), OVER);
  const card = decoderCard('m', { ...w.config, num_hidden_layers: layers });
  const tensors = loraInit(card, ['q_proj', 'v_proj'], 4, 3);
  const r = xoshiro128ss(4);
  for (const [n, t] of tensors)
    if (n.endsWith('lora_B')) for (let i = 0; i < t.data.length; i++) t.data[i] = r.float() - 0.5;
  return encodeSafetensors({ metadata: { format: ADAPTER_FORMAT, rank: '4', alpha: '8' }, tensors });
}
async function logits(sessionId?: string): Promise<Float32Array> {
  const ctx = (llmFor(entry, sessionId) as OnnxLocalLlm).openContext();
  try {
    return (await ctx.forward([104, 101, 108, 108, 111])).slice();
  } finally {
    ctx.close();
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hn-m28-adapter-'));
  writeTinyModel(join(dir, 'm'), OVER);
  const src = dirSource(join(dir, 'm'));
  const llm = await OnnxLocalLlm.loadWhole(src, opts);
  entry = { llm, onnx: llm, whole: { src, opts } };
}, 120_000);
afterAll(async () => {
  if (entry) await closeSessions(entry);
  await entry?.onnx?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('inference worker setAdapter', () => {
  it(
    'the adapter changes the logits of the same handle; null restores the base exactly',
    { timeout: 120_000 },
    async () => {
      const api = adapterApi(() => entry, engine);
      const base = await logits();
      const a = adapterBytes(OVER.num_hidden_layers);
      const r = await api.setAdapter('m1', a);
      expect(r.adapter_sha).toMatch(/^sha256:[0-9a-f]{64}$/);
      const adapted = await logits();
      expect(maxAbsDiff(base, adapted)).toBeGreaterThan(1e-2);
      const back = await api.setAdapter('m1', null);
      expect(back.adapter_sha).toBeNull();
      expect(maxAbsDiff(base, await logits())).toBe(0);
    },
  );

  it('refusals leave the loaded model in place', { timeout: 120_000 }, async () => {
    const api = adapterApi(() => entry, engine);
    const before = entry.onnx;
    const code = (p: Promise<unknown>) =>
      p.then(
        () => 'ok',
        (e: { code?: string }) => e.code,
      );
    expect(await code(api.setAdapter('m1', new Uint8Array([1, 2, 3])))).toBe('delta_invalid');
    expect(await code(api.setAdapter('m1', adapterBytes(4)))).toBe('base_model_mismatch'); // layers 2, 3 absent
    const webllm = adapterApi(() => ({ llm: entry.llm }), engine);
    expect(await code(webllm.setAdapter('w1', adapterBytes(2)))).toBe('base_model_mismatch');
    expect(entry.onnx).toBe(before);
  });

  it(
    'session scope: that session only gets the adapter; null restores; at most MAX_ADAPTED_SESSIONS kept',
    { timeout: 180_000 },
    async () => {
      const api = adapterApi(() => entry, engine);
      const handleModel = entry.onnx;
      const base = await logits();
      const a = adapterBytes(OVER.num_hidden_layers);
      const r = await api.setAdapter('m1', a, 's1');
      expect(r).toMatchObject({
        handle: 'm1',
        session_id: 's1',
        adapter_sha: expect.stringMatching(/^sha256:/),
      });
      expect(entry.onnx).toBe(handleModel); // the handle (node scope, peers) is untouched
      expect(entry.adapter).toBeUndefined();
      expect(maxAbsDiff(base, await logits('s1'))).toBeGreaterThan(1e-2);
      expect(maxAbsDiff(base, await logits('s2'))).toBe(0); // another session: base
      expect(maxAbsDiff(base, await logits())).toBe(0); // no session (a peer's llm.chat): base
      const sessionLogits = await logits('s1');
      // null drops it: the session runs the base again
      expect((await api.setAdapter('m1', null, 's1')).adapter_sha).toBeNull();
      expect(entry.sessions?.size).toBe(0);
      expect(maxAbsDiff(base, await logits('s1'))).toBe(0);
      // bound: a third session evicts the oldest (s1), s2 and s3 keep theirs
      for (const id of ['s1', 's2', 's3']) await api.setAdapter('m1', a, id);
      expect(MAX_ADAPTED_SESSIONS).toBe(2);
      expect([...entry.sessions!.keys()]).toEqual(['s2', 's3']);
      expect(maxAbsDiff(base, await logits('s1'))).toBe(0);
      expect(maxAbsDiff(sessionLogits, await logits('s3'))).toBe(0);
      // re-applying refreshes a session's place: s2 is now the newest, s3 the one evicted next
      await api.setAdapter('m1', a, 's2');
      await api.setAdapter('m1', a, 's4');
      expect([...entry.sessions!.keys()]).toEqual(['s2', 's4']);
      // bad session ids and bad adapters change nothing
      const code = (p: Promise<unknown>) =>
        p.then(
          () => 'ok',
          (e: { code?: string }) => e.code,
        );
      expect(await code(api.setAdapter('m1', a, ''))).toBe('bad_request');
      expect(await code(api.setAdapter('m1', a, 7 as unknown as string))).toBe('bad_request');
      expect(await code(api.setAdapter('m1', new Uint8Array([1]), 's2'))).toBe('delta_invalid');
      expect([...entry.sessions!.keys()]).toEqual(['s2', 's4']);
      expect(maxAbsDiff(sessionLogits, await logits('s2'))).toBe(0);
      await closeSessions(entry);
      expect(entry.sessions?.size).toBe(0);
      expect(entry.onnx).toBe(handleModel);
    },
  );
});
