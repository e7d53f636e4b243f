/** M28 service types: the base model, the trainer contract, settings and the host dependencies. */
import type { ModelCard, Tensors } from './delta.js';
import type { RoundManifest } from './manifest.js';
export type { DeviceLimits } from './resources.js';

/** A base model the node has: its card and the SHA of its canonical weight file. */
export interface BaseModel {
  card: ModelCard & { params?: number; d_model?: number; heads?: number; ctx?: number };
  sha: string;
}
/** What the training worker gives back (trainer.ts: TF.js). */
export interface TrainResult {
  tensors: Tensors; // Δ = trained − init, unclipped
  num_samples: number;
  train_loss: number;
}
export type Trainer = (
  m: RoundManifest,
  init: Tensors,
  data: { texts(topic: string): Promise<string[]> },
) => Promise<TrainResult>;

export interface ServiceSettings {
  max_round_minutes: number;
  takeover_grace_seconds: number;
  announce_min_level: string;
  submission_max_bytes: number;
  training_vram_budget_mb: number;
  training_disk_budget_mb: number;
  dp_noise_scale: number;
}

export interface ServiceDeps {
  self: string;
  sign(o: Record<string, unknown>): { signature: string };
  append(type: string, data: Record<string, unknown>): Promise<unknown>;
  now(): number;
  setTimeout(fn: () => void, ms: number): () => void;
  call(cap: string, input: unknown, peer: string): Promise<any>;
  levelOf(n: string): string | null;
  settings(): ServiceSettings;
  db: {
    get(store: string, key: string): Promise<any>;
    put(store: string, value: unknown): Promise<unknown>;
    getAll(store: string): Promise<any[]>;
  };
  log: { warn(msg: string, data?: Record<string, unknown>): void };
}
