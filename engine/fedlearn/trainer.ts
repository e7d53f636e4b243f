/**
 * M28 local training (digest §7 "Local training"): next-token LoRA training of A and B only (B only in
 * FFA-LoRA mode) on the node's own texts, tokenised as bytes, with Adam(lr), windows drawn by the CSPRNG,
 * early stop on a plateau (EMA improvement < 1 % over 50 steps), progress (loss, steps/s, time left)
 * and cancel. Returns Δ = trained − init, unclipped: clipping, noise and signing happen in the service.
 * The texts stay in this function: nothing of them is logged, returned or thrown.
 */
import * as tf from '@tensorflow/tfjs';
import { randomBytes } from '../core/encoding.js';
import { HnError } from '../core/errors.js';
import type { Tensors } from './delta.js';
import type { RoundManifest } from './manifest.js';
import type { Trainer, TrainResult } from './service-types.js';
import { TfDecoder, type LoraForward, type LoraSet } from './tf-decoder.js';

export interface TrainProgress {
  step: number;
  total: number;
  loss: number;
  steps_per_s: number;
  seconds_left: number;
}

export interface TrainOptions {
  /** context length of a training window (default 32, at most the model's) */
  ctx?: number;
  onProgress?: (p: TrainProgress) => void;
  /** polled between steps; true → `pipeline_cancelled` */
  cancelled?: () => boolean;
  /** awaited before each step (a worker yields to its event loop here so a cancel message is read) */
  tick?: () => Promise<void>;
  /** uniform [0,1) source for window sampling; default the CSPRNG (tests may pass a seeded one) */
  uniform?: () => number;
  /** monotonic clock in ms for steps/s (default Date.now) */
  clock?: () => number;
}

export type TrainSpec = Pick<
  RoundManifest,
  | 'lora_rank'
  | 'lora_alpha'
  | 'lora_dropout'
  | 'train_steps'
  | 'learning_rate'
  | 'batch_size'
  | 'lora_target_modules'
> & { freeze_a?: boolean };

export interface LocalTrainResult extends TrainResult {
  steps: number;
  stopped_early: boolean;
}

const PLATEAU_WINDOW = 50;
const PLATEAU_MIN_GAIN = 0.01;

function cryptoUniform(): () => number {
  return () => {
    const b = randomBytes(4);
    return (((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0) / 2 ** 32;
  };
}

/** Bytes of the texts (UTF-8, joined by newlines); `bad_request` (no content in the message) when too short. */
export function corpusBytes(texts: readonly string[], ctx: number): Uint8Array {
  const bytes = new TextEncoder().encode(texts.join('\n'));
  if (bytes.length < ctx + 1)
    throw new HnError('bad_request', 'not enough local training text for one window', {
      details: { bytes: bytes.length, needed: ctx + 1 },
    });
  return bytes;
}

function windowCtx(dec: TfDecoder, ctx?: number): number {
  const c = Math.min(ctx ?? 32, dec.dims.max_position_embeddings);
  if (!Number.isInteger(c) || c < 1) throw new HnError('bad_request', 'ctx must be a positive integer');
  return c;
}

/** Train LoRA A/B from `init` on the texts; Δ = trained − init. */
export async function trainLora(
  dec: TfDecoder,
  spec: TrainSpec,
  init: Tensors,
  texts: readonly string[],
  o: TrainOptions = {},
): Promise<LocalTrainResult> {
  const ctx = windowCtx(dec, o.ctx);
  const bytes = corpusBytes(texts, ctx);
  const uniform = o.uniform ?? cryptoUniform();
  const clock = o.clock ?? (() => Date.now());
  const starts = bytes.length - ctx; // window i covers bytes[i .. i+ctx]
  const vars: tf.Variable[] = [];
  const set: LoraSet = new Map();
  for (const [name, A] of init) {
    if (!name.endsWith('.lora_A')) continue;
    const key = name.slice(0, -'.lora_A'.length);
    const B = init.get(`${key}.lora_B`);
    if (!B) throw new HnError('bad_request', `init lacks ${key}.lora_B`);
    const a = tf.variable(tf.tensor2d(A.data, A.shape as [number, number]), !spec.freeze_a);
    const b = tf.variable(tf.tensor2d(B.data, B.shape as [number, number]), true);
    if (!spec.freeze_a) vars.push(a);
    vars.push(b);
    set.set(key, { A: a, B: b });
  }
  const lora: LoraForward = {
    set,
    scale: spec.lora_alpha / spec.lora_rank,
    dropout: spec.lora_dropout,
  };
  const opt = tf.train.adam(spec.learning_rate);
  const total = spec.train_steps;
  const batch = new Int32Array(spec.batch_size * (ctx + 1));
  const emaAt: number[] = [];
  let ema = NaN;
  let last = NaN;
  let step = 0;
  let stoppedEarly = false;
  const t0 = clock();
  try {
    while (step < total) {
      await o.tick?.();
      if (o.cancelled?.()) throw new HnError('pipeline_cancelled', 'training cancelled');
      for (let b = 0; b < spec.batch_size; b++) {
        const s = Math.min(starts - 1, Math.floor(uniform() * starts));
        for (let j = 0; j <= ctx; j++) batch[b * (ctx + 1) + j] = bytes[s + j]!;
      }
      const lossT = tf.tidy(() => {
        const w = tf.tensor2d(batch, [spec.batch_size, ctx + 1], 'int32');
        return opt.minimize(() => dec.loss(w, lora), true, vars)!;
      });
      last = (await lossT.data())[0]!;
      lossT.dispose();
      if (!Number.isFinite(last)) throw new HnError('internal_error', 'training diverged (non-finite loss)');
      step++;
      ema = Number.isNaN(ema) ? last : 0.9 * ema + 0.1 * last;
      emaAt.push(ema);
      const elapsed = Math.max(1e-3, (clock() - t0) / 1000);
      const sps = step / elapsed;
      o.onProgress?.({ step, total, loss: last, steps_per_s: sps, seconds_left: (total - step) / sps });
      if (step > PLATEAU_WINDOW) {
        const before = emaAt[step - 1 - PLATEAU_WINDOW]!;
        if ((before - ema) / before < PLATEAU_MIN_GAIN) {
          stoppedEarly = true;
          break;
        }
      }
    }
    const tensors: Tensors = new Map();
    for (const [name, t0i] of init) {
      const key = name.replace(/\.lora_[AB]$/, '');
      const v = name.endsWith('.lora_A') ? set.get(key)!.A : set.get(key)!.B;
      const now = (await v.data()) as Float32Array;
      const data = new Float32Array(now.length);
      for (let i = 0; i < data.length; i++) data[i] = now[i]! - t0i.data[i]!;
      tensors.set(name, { shape: [...t0i.shape], data });
    }
    return {
      tensors,
      num_samples: step * spec.batch_size,
      train_loss: last,
      steps: step,
      stopped_early: stoppedEarly,
    };
  } finally {
    opt.dispose();
    tf.dispose(vars);
  }
}

/**
 * Mean next-token loss over consecutive non-overlapping windows of the texts (deterministic), with
 * `adapter` (full A and B, e.g. an aggregated adapter) or the base model when null.
 */
export async function evalLoss(
  dec: TfDecoder,
  adapter: { tensors: Tensors; rank: number; alpha: number } | null,
  texts: readonly string[],
  o: { ctx?: number; maxWindows?: number } = {},
): Promise<number> {
  const ctx = windowCtx(dec, o.ctx);
  const bytes = corpusBytes(texts, ctx);
  const n = Math.min(o.maxWindows ?? 64, Math.floor((bytes.length - 1) / ctx));
  const w = new Int32Array(n * (ctx + 1));
  for (let b = 0; b < n; b++) for (let j = 0; j <= ctx; j++) w[b * (ctx + 1) + j] = bytes[b * ctx + j]!;
  const set = adapter ? TfDecoder.loraFromTensors(adapter.tensors) : null;
  try {
    const l = tf.tidy(() =>
      dec.loss(
        tf.tensor2d(w, [n, ctx + 1], 'int32'),
        set ? { set, scale: adapter!.alpha / adapter!.rank, dropout: 0 } : null,
      ),
    );
    const v = (await l.data())[0]!;
    l.dispose();
    return v;
  } finally {
    if (set) for (const p of set.values()) tf.dispose([p.A, p.B]);
  }
}

/** The service's Trainer backed by TF.js: reads the topic's texts itself (they never leave this call). */
export function tfjsTrainer(dec: TfDecoder, o: TrainOptions = {}): Trainer {
  return async (m, init, data) => {
    const texts = await data.texts(m.topic);
    const r = await trainLora(dec, m, init, texts, o);
    return { tensors: r.tensors, num_samples: r.num_samples, train_loss: r.train_loss };
  };
}
