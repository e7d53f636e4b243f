/**
 * M27 model experts answer through `llm.chat@1.0` on the bus: a real tiny ONNX model served on node
 * M (onnxruntime-web, WASM) is registered as `model:tiny@M`; the asker A routes to it, asks it, and
 * gets it as the fallback when a human handoff times out. Answers equal the model's own greedy
 * generation; bad input gets its code; the question never reaches an event or a log.
 */
import 'fake-indexeddb/auto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNode, type HearthNode } from '../../engine/index.js';
import { manualClock } from '../../engine/core/vocab.js';
import { OnnxLocalLlm } from '../../engine/llm/local.js';
import { configureOrt } from '../../engine/llm/ort.js';
import { MOE_INSTANCES } from '../../engine/moe/index.js';
import { dirSource } from '../../tools/model/node-source.js';
import { writeTinyModel } from '../../tools/model/tiny-model.js';
import { link, seedOf } from './helpers.js';

configureOrt({ numThreads: 1 });
const T0 = Date.UTC(2026, 11, 7, 12, 0, 0);
const H = 3_600_000;
const QUESTION = 'Wann beginnt der Sankt-Martins-Zug? geheim-model-4711';
const clock = manualClock(T0);
let dir: string;
let llm: OnnxLocalLlm;
let A: HearthNode; // asker
let M: HearthNode; // model host
let C: HearthNode; // a human
let withdraw: () => void;

async function mk(seed: number, founder?: HearthNode) {
  const n = await createNode({
    seed: seedOf(seed),
    clock,
    now: () => clock.now(),
    config: { ...(founder ? { community: { community_id: founder.id } } : {}), moe: {} as never },
  });
  await n.enable('moe');
  return n;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hn-moe-model-'));
  llm = await OnnxLocalLlm.loadWhole(dirSource(writeTinyModel(join(dir, 'tiny')).dir), {
    executionProviders: ['wasm'],
  });
  A = await mk(61);
  M = await mk(62, A);
  C = await mk(63, A);
  await link(A, M);
  await link(A, C);
  withdraw = M.serveModel(llm, 'tiny');
  await M.call('experimental.moe.expert.register', {
    kind: 'model',
    model_id: 'tiny',
    topics: ['niederrhein-history'],
    name: 'Tiny',
  });
  await C.call('experimental.moe.expert.register', {
    kind: 'human',
    topics: ['niederrhein-history', 'sankt-martins'],
    availability: { tz: 'Europe/Berlin', always: true, slots: [] },
    consent_to_route: true,
  });
  for (let i = 0; i < 200; i++) {
    if ((await A.call('experimental.moe.expert.list', {})).experts.length === 2) break;
    await new Promise((r) => setTimeout(r, 50));
  }
}, 60_000);
afterAll(async () => {
  for (const n of [A, M, C]) await n?.close();
  await llm?.close();
  rmSync(dir, { recursive: true, force: true });
});

const ask = (input: Record<string, unknown>) => MOE_INSTANCES.get(A.id)!.askModel(input);
async function reference(q: string, max = 6): Promise<string> {
  const it = llm.generate([{ role: 'user', content: q }], { max_tokens: max, temperature: 0 });
  let t = '';
  for (let s = await it.next(); !s.done; s = await it.next()) t += s.value.text;
  return t;
}
const code = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e) => e.code as string,
  );

describe('M27 model experts answer through llm.chat', () => {
  it('route → model candidate with invoke llm.chat → the host answers over the bus, deterministically', async () => {
    const r = await A.call('experimental.moe.route.query', {
      request_summary: QUESTION,
      tags: ['niederrhein-history'],
    });
    const cand = r.candidates.find((c: { expert_id: string }) => c.expert_id === `model:tiny@${M.id}`);
    expect(cand).toMatchObject({
      kind: 'model',
      invoke: { capability: 'llm.chat', params: { model: 'tiny' } },
    });
    const a = await ask({ expert_id: cand.expert_id, question: QUESTION, max_tokens: 6, temperature: 0 });
    const ref = await reference(QUESTION);
    expect(ref.length).toBeGreaterThan(0);
    expect(a).toMatchObject({ expert_id: cand.expert_id, model: 'tiny', host: M.id, text: ref });
    expect(a.tokens_out).toBeGreaterThan(0);
    expect(['end', 'max_tokens', 'stop_sequence']).toContain(a.stop_reason);
    const again = await ask({ expert_id: cand.expert_id, question: QUESTION, max_tokens: 6, temperature: 0 });
    expect(again.text).toBe(a.text);
  }, 60_000);

  it('a timed-out human handoff falls back to the model, which answers through llm.chat', async () => {
    const r = await A.call('experimental.moe.route.query', {
      request_summary: QUESTION,
      tags: ['sankt-martins', 'niederrhein-history'],
      include_humans: true,
    });
    expect(r.candidates[0].expert_id).toBe(`human:${C.id}`);
    const h = await A.call('experimental.moe.route.handoff', {
      mode: 'initiate',
      expert_id: `human:${C.id}`,
      route_id: r.route_id,
      context_summary: 'context for the human',
    });
    clock.advance(24 * H + 1);
    await expect.poll(async () => (await A.events.list({ type: 'moe.handoff.timed_out' })).length).toBe(1);
    const e = await A.call('experimental.moe.route.handoff', {
      mode: 'status',
      handoff_id: h.handoff_id,
    }).catch((x) => x);
    expect(e).toMatchObject({ code: 'human_handoff_timed_out' });
    const fb = e.details.fallback_candidate;
    expect(fb).toMatchObject({ kind: 'model', expert_id: `model:tiny@${M.id}` });
    const a = await ask({ expert_id: fb.expert_id, question: QUESTION, max_tokens: 6, temperature: 0 });
    expect(a.text).toBe(await reference(QUESTION));
  }, 60_000);

  it('bad input and unavailable models get their codes; the question is never logged or in an event', async () => {
    const model = `model:tiny@${M.id}`;
    const mine = async () => (await A.events.list({})).filter((e) => e.author === A.id).length;
    const before = await mine();
    expect(await code(ask(null as never))).toBe('bad_request');
    expect(await code(ask({ expert_id: model, question: '   ' }))).toBe('bad_request');
    expect(await code(ask({ expert_id: model, question: 'x'.repeat(4001) }))).toBe('bad_request');
    expect(await code(ask({ expert_id: model, question: 'q', max_tokens: 0 }))).toBe('bad_request');
    expect(await code(ask({ expert_id: model, question: 'q', temperature: 3 }))).toBe('bad_request');
    expect(await code(ask({ expert_id: `model:nope@${M.id}`, question: 'q' }))).toBe('expert_unknown');
    expect(await code(ask({ expert_id: `human:${C.id}`, question: 'q' }))).toBe('bad_request');
    // the host stops serving the model: llm.chat is gone there
    withdraw();
    expect(await code(ask({ expert_id: model, question: 'q', max_tokens: 2 }))).not.toBe('ok');
    withdraw = M.serveModel(llm, 'tiny');
    expect(await mine()).toBe(before); // asking a model appends nothing
    for (const n of [A, M]) {
      expect(JSON.stringify(await n.events.list({}))).not.toContain('geheim-model-4711');
      expect(JSON.stringify(n.logs.entries())).not.toContain('geheim-model-4711');
    }
  }, 60_000);
});
