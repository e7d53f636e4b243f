/**
 * M27: the ONNX embedder in the inference worker (workers/inference/embed.ts) behind the `Embedder`
 * interface. The worker side is exposed through comlink over a real MessageChannel (as the inference
 * worker exposes it); the page-side `WorkerEmbedder` gives bit-identical vectors to an `OrtEmbedder`
 * loaded directly from the same generated encoder; bad handles and bad texts are refused.
 */
import * as Comlink from 'comlink';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { configureOrt } from '../../engine/llm/ort.js';
import { OrtEmbedder } from '../../engine/moe/ort_embedder.js';
import { embedApi, WorkerEmbedder, type EmbedApi } from '../../workers/inference/embed.js';
import { makeTinyEncoder } from '../../tools/model/tiny-encoder.js';

configureOrt({ numThreads: 1 });
const enc = makeTinyEncoder(11, 32);
const channel = new MessageChannel();
let direct: OrtEmbedder;
let viaWorker: WorkerEmbedder;
let remote: Comlink.Remote<EmbedApi>;
beforeAll(async () => {
  Comlink.expose(embedApi(), channel.port1);
  remote = Comlink.wrap<EmbedApi>(channel.port2);
  direct = await OrtEmbedder.load(enc.bytes, enc.tokenizerJson, {}, { name: 'tiny' });
  viaWorker = await WorkerEmbedder.load(
    remote as unknown as EmbedApi,
    enc.bytes,
    enc.tokenizerJson,
    {},
    {
      name: 'tiny',
    },
  );
});
afterAll(async () => {
  await direct?.close();
  await viaWorker?.close();
  channel.port1.close();
  channel.port2.close();
});

it('worker path: same id, dim, threshold and bit-identical vectors as OrtEmbedder', async () => {
  expect([viaWorker.id, viaWorker.dim, viaWorker.threshold]).toEqual([
    direct.id,
    direct.dim,
    direct.threshold,
  ]);
  expect(viaWorker.dim).toBeGreaterThan(0);
  const texts = ['When does the lantern procession start?', 'Sankt Martin', '', 'Ölwechsel beim Traktor'];
  const [a, b] = [await direct.embed(texts), await viaWorker.embed(texts)];
  expect(b).toHaveLength(texts.length);
  for (let i = 0; i < texts.length; i++) {
    expect(b[i]).toBeInstanceOf(Float64Array);
    expect(Buffer.from(b[i]!.buffer).equals(Buffer.from(a[i]!.buffer))).toBe(true);
  }
  // distinct texts give distinct vectors (the comparison above is not vacuous)
  expect(Buffer.from(b[0]!.buffer).equals(Buffer.from(b[1]!.buffer))).toBe(false);
});

it('bad input: unknown handle and non-string texts are refused; the loaded encoder still works', async () => {
  await expect(remote.embed('emb-999', ['x'])).rejects.toThrow(/no loaded embedder/);
  await expect(remote.embed('emb-1', [42 as unknown as string])).rejects.toThrow(/array of strings/);
  await expect(remote.embedLoad(new Uint8Array([1, 2, 3]), enc.tokenizerJson)).rejects.toThrow(
    /could not be loaded/,
  );
  const [v] = await viaWorker.embed(['Sankt Martin']);
  const [w] = await direct.embed(['Sankt Martin']);
  expect(Buffer.from(v!.buffer).equals(Buffer.from(w!.buffer))).toBe(true);
});
