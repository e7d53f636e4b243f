/** Local inference on the bus: a loaded tiny ONNX model is offered as llm.chat / llm.models.list, locally and to a peer. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnnxLocalLlm, type LocalLlm } from '../../engine/llm/local.js';
import { configureOrt } from '../../engine/llm/ort.js';
import type { HearthNode } from '../../engine/index.js';
import { dirSource } from '../../tools/model/node-source.js';
import { writeTinyModel } from '../../tools/model/tiny-model.js';
import { linkedPair, seedOf } from './helpers.js';

configureOrt({ numThreads: 1 });
let dir: string;
let llm: OnnxLocalLlm;
let A: HearthNode;
let B: HearthNode;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hn-llm-bus-'));
  const m = writeTinyModel(join(dir, 'tiny'));
  llm = await OnnxLocalLlm.loadWhole(dirSource(m.dir), { executionProviders: ['wasm'] });
  [A, B] = await linkedPair({ seed: seedOf(81) }, { seed: seedOf(82) });
});
afterAll(async () => {
  await A?.close();
  await B?.close();
  await llm?.close();
  rmSync(dir, { recursive: true, force: true });
});

const chat = (model: string, content: string, extra = {}) => ({
  params: { model },
  input: { messages: [{ role: 'user', content }], max_tokens: 6, temperature: 0, ...extra },
});

async function run(n: HearthNode, req: unknown, peer?: HearthNode) {
  const frames: { event: string; data: any }[] = [];
  for await (const f of n.stream('llm.chat', req, peer ? { peer: peer.id } : {})) frames.push(f);
  return frames;
}

describe('llm.* on the bus', () => {
  it('is registered only while a model is served', async () => {
    expect(A.bus.has('llm.chat')).toBe(false);
    const off = A.serveModel(llm, 'tiny');
    expect(A.bus.has('llm.chat')).toBe(true);
    expect(await A.call('llm.models.list', {})).toMatchObject({ models: [{ id: 'tiny', engine: 'onnx' }] });
    off();
    expect(A.bus.has('llm.chat')).toBe(false);
    expect(A.bus.has('llm.models.list')).toBe(false);
  });

  it('streams the same greedy tokens locally and from a peer; bad input gets the spec codes', async () => {
    const off = A.serveModel(llm, 'tiny');
    const local = await run(A, chat('tiny', 'hello there'));
    const done = local.at(-1)!;
    expect(done.event).toBe('done');
    expect(done.data.tokens_out).toBeGreaterThan(0);
    expect(['end', 'max_tokens', 'stop_sequence']).toContain(done.data.stop_reason);
    const tokens = local.filter((f) => f.event === 'token').map((f) => f.data.text);
    // the reference: the model itself, greedy
    const it = llm.generate([{ role: 'user', content: 'hello there' }], { max_tokens: 6, temperature: 0 });
    const ref: string[] = [];
    for (let s = await it.next(); !s.done; s = await it.next()) if (s.value.text) ref.push(s.value.text);
    expect(tokens).toEqual(ref);
    // from the peer (member trust)
    const remote = await run(B, chat('tiny', 'hello there'), A);
    expect(remote.filter((f) => f.event === 'token').map((f) => f.data.text)).toEqual(ref);
    expect((await B.call('llm.models.list', {}, { peer: A.id })).models[0].id).toBe('tiny');
    await expect(run(A, chat('nope', 'x'))).rejects.toMatchObject({ code: 'not_found' });
    await expect(
      run(A, { params: { model: 'tiny' }, input: { messages: [{ role: 'system', content: 'x' }] } }),
    ).rejects.toMatchObject({ code: 'bad_request' });
    await expect(run(A, { params: { model: 'tiny' }, input: { messages: 'x' } })).rejects.toMatchObject({
      code: 'schema_mismatch',
    });
    // a raw `prompt` instead of `messages` (no chat template; M26's fallback of a prompt run)
    const raw = await run(A, {
      params: { model: 'tiny' },
      input: { prompt: 'hello there', max_tokens: 6, temperature: 0 },
    });
    const rawRef: number[] = [];
    for await (const t of llm.generate('hello there', { max_tokens: 6, temperature: 0 }))
      rawRef.push(t.token_id);
    const rawIds = raw.filter((f) => f.event === 'token').flatMap((f) => f.data.token_ids as number[]);
    expect([...rawIds, ...(raw.at(-1)!.data.held_token_ids ?? [])]).toEqual(rawRef);
    expect(raw.at(-1)!.data.tokens_out).toBe(rawRef.length);
    // both, or neither → bad_request
    await expect(
      run(A, {
        params: { model: 'tiny' },
        input: { prompt: 'x', messages: [{ role: 'user', content: 'x' }] },
      }),
    ).rejects.toMatchObject({ code: 'bad_request' });
    await expect(run(A, { params: { model: 'tiny' }, input: {} })).rejects.toMatchObject({
      code: 'bad_request',
    });
    await expect(run(A, chat('tiny', 'x', { session_id: 7 }))).rejects.toMatchObject({
      code: 'schema_mismatch',
    });
    await expect(run(A, chat('tiny', 'x', { session_id: '' }))).rejects.toMatchObject({
      code: 'schema_mismatch',
    });
    // the prompt never reaches the log
    expect(JSON.stringify(A.logs.entries())).not.toContain('hello there');
    off();
  });

  it('passes input.session_id down to the model (M28 session-scoped adapters)', async () => {
    const seen: (string | undefined)[] = [];
    const spy: LocalLlm = {
      info: () => llm.info(),
      close: () => Promise.resolve(),
      generate: (input, opts) => (seen.push(opts?.session_id), llm.generate(input, opts)),
    };
    const off = A.serveModel(spy, 'tiny');
    const a = await run(A, chat('tiny', 'hello there', { session_id: 'chat-1' }));
    const b = await run(A, chat('tiny', 'hello there'));
    expect(seen).toEqual(['chat-1', undefined]);
    expect(a.filter((f) => f.event === 'token')).toEqual(b.filter((f) => f.event === 'token'));
    off();
  });
});
