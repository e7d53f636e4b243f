/**
 * The M28 training worker (comlink `expose`, digest §9): TensorFlow.js with the first backend that
 * starts — webgpu (@tensorflow/tfjs-backend-webgpu, only when the browser hands out a WebGPU
 * adapter), then wasm (its .wasm files are bundled assets of this app, never fetched from a CDN), then
 * cpu. It reads the consented texts from IndexedDB itself, so training text never crosses to the
 * page, the bus or a log; it returns only Δ, counts and the last loss.
 */
import * as Comlink from 'comlink';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
// registers the `webgpu` backend; it is picked only when the browser hands out a WebGPU adapter
import '@tensorflow/tfjs-backend-webgpu';
import wasmUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import simdUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import threadedUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import ortWasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.jsep.wasm?url';
import { openDB } from 'idb';
import { HnError } from '../../engine/core/errors.js';
import { decodeBaseWeights, decoderCard, encodeBaseWeights } from '../../engine/fedlearn/base.js';
import { loraInit } from '../../engine/fedlearn/lora-init.js';
import { DEFAULT_TINY, makeWeights } from '../../tools/model/tiny-weights.js';
import type { Tensors } from '../../engine/fedlearn/delta.js';
import type { TfDecoder } from '../../engine/fedlearn/tf-decoder.js';
import { configureOrt, setWasmPaths as setOrtWasmPaths } from '../../engine/llm/ort.js';
import { evalLoss, trainLora } from '../../engine/fedlearn/trainer.js';
import type { DatasetRef, TrainingApi, WireTensor } from './api.js';
import { checkedDecoder } from './oracle.js';

setWasmPaths({
  'tfjs-backend-wasm.wasm': wasmUrl,
  'tfjs-backend-wasm-simd.wasm': simdUrl,
  'tfjs-backend-wasm-threaded-simd.wasm': threadedUrl,
});

// single-threaded WASM (SIMD where available): the threaded build's pthread workers are blob scripts
// that fail once bundled (ReferenceError inside WasmBackendModuleThreadedSimd) and hang the backend
// start; one training step is small enough that threads buy little here
tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
// onnxruntime-web computes the oracle's reference logits (oracle.ts); its .wasm is a bundled asset
setOrtWasmPaths({ wasm: new URL(ortWasmUrl, self.location.href).href });
configureOrt({ numThreads: 1 });

let dec: TfDecoder | null = null;
let sha = '';
let baseId = '';
let cancelled = false;

/** A macrotask turn between steps: the wasm backend's reads resolve as microtasks, so without it a
 * `cancel` message would wait for the whole run. */
const tick = () => new Promise<void>((r) => setTimeout(r, 0));

const toMap = (w: WireTensor[]): Tensors => new Map(w.map((t) => [t.name, { shape: t.shape, data: t.data }]));
const toWire = (t: Tensors): WireTensor[] =>
  [...t].map(([name, v]) => ({ name, shape: v.shape, data: v.data }));

async function texts(d: DatasetRef | { texts: string[] }): Promise<string[]> {
  if ('texts' in d) return d.texts;
  const db = await openDB(d.db);
  try {
    const all = (await db.getAll(d.store)) as { topic: string; text: string }[];
    return all.filter((r) => r.topic === d.topic).map((r) => r.text);
  } finally {
    db.close();
  }
}

async function pickBackend(): Promise<string> {
  const gpu = (navigator as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  const order = [
    ...(tf.findBackendFactory('webgpu') && gpu && (await gpu.requestAdapter()) ? ['webgpu'] : []),
    'wasm',
    'cpu',
  ];
  for (const b of order) if (await tf.setBackend(b).catch(() => false)) return b;
  throw new HnError('insufficient_resources', 'no TensorFlow.js backend could start');
}

function need(): TfDecoder {
  if (!dec) throw new HnError('bad_request', 'training worker not initialised');
  return dec;
}
function checkBase(m: { base_model_sha: string }) {
  if (m.base_model_sha !== sha)
    throw new HnError('base_model_mismatch', 'the loaded base differs from the round');
}

const api: TrainingApi = {
  async init(bytes, onnx) {
    const b = decodeBaseWeights(bytes);
    const backend = await pickBackend();
    // the oracle on this backend before anything is trained: refused (base_model_mismatch) otherwise,
    // and then no decoder stays loaded, so train/evalLoss/benchmark answer bad_request
    dec?.dispose();
    dec = null;
    sha = '';
    const r = await checkedDecoder(b.base_model_id, b.dims, b.weights, onnx);
    dec = r.dec;
    sha = b.sha;
    baseId = b.base_model_id;
    return { backend, base_model_sha: sha, oracle_max_abs_diff: r.oracle_max_abs_diff };
  },
  async initDemo() {
    // the community's demo model (models/demo: seed 42, 259-token byte vocabulary), rebuilt from its
    // seed here: the same float32 values its ONNX graph holds, no download
    const c = { ...DEFAULT_TINY, model_id: 'hn-demo-tiny-llama', vocab_size: 259 };
    const { bytes } = encodeBaseWeights(c.model_id, c, makeWeights(c) as never);
    const r = await api.init(bytes);
    return { ...r, base_model_id: baseId, card: decoderCard(baseId, need().dims) };
  },
  async trainLocal(spec, texts, onProgress) {
    const d = need();
    cancelled = false;
    const init = loraInit(decoderCard(baseId, d.dims), spec.lora_target_modules, spec.lora_rank, spec.seed);
    let last = { step: 0, loss: NaN };
    try {
      const r = await trainLora(d, spec, init, texts, {
        onProgress: (p) => {
          last = p;
          onProgress(p);
        },
        cancelled: () => cancelled,
        tick,
      });
      return { steps: r.steps, train_loss: r.train_loss, stopped_early: r.stopped_early, cancelled: false };
    } catch (e) {
      // comlink carries an Error's message, not its HnError code: a cancel is an answer, not a failure
      if ((e as HnError).code !== 'pipeline_cancelled') throw e;
      return { steps: last.step, train_loss: last.loss, stopped_early: false, cancelled: true };
    }
  },
  async train(m, init, data, onProgress) {
    checkBase(m);
    cancelled = false;
    const r = await trainLora(need(), m, toMap(init), await texts(data), {
      onProgress,
      cancelled: () => cancelled,
      tick,
    });
    return {
      tensors: toWire(r.tensors),
      num_samples: r.num_samples,
      train_loss: r.train_loss,
      steps: r.steps,
    };
  },
  async evalLoss(adapter, data) {
    return evalLoss(
      need(),
      adapter ? { tensors: toMap(adapter.tensors), rank: adapter.rank, alpha: adapter.alpha } : null,
      await texts(data),
    );
  },
  async benchmark(m, init) {
    checkBase(m);
    const filler = ['the quick brown fox jumps over the lazy dog. '.repeat(8)];
    const t0 = performance.now();
    await trainLora(need(), { ...m, train_steps: 2 }, toMap(init), filler);
    return (performance.now() - t0) / 2000;
  },
  cancel() {
    cancelled = true;
  },
};

Comlink.expose(api);
