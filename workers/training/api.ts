/** The training worker's comlink API (digest §9 "Training worker"); see worker.ts. */
import type { ModelCard } from '../../engine/fedlearn/delta.js';
import type { RoundManifest } from '../../engine/fedlearn/manifest.js';
import type { TrainProgress, TrainSpec } from '../../engine/fedlearn/trainer.js';

/** Where the worker reads the node's training texts itself (IndexedDB), so no text crosses to the page. */
export interface DatasetRef {
  db: string; // the module database, `<node db>:fedlearn`
  store: string; // 'training_data'
  topic: string;
}

export interface WireTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface TrainingApi {
  /**
   * Load the canonical base weight file and pick a backend (webgpu → wasm → cpu), then run the oracle
   * on that backend (oracle.ts): the TF.js logits of a fixed canary input must match onnxruntime's
   * logits of `onnx` (default: the graph tools/model writes for these weights) within 1e-4, or
   * `base_model_mismatch` and nothing is loaded. `oracle_max_abs_diff` is the measured max |Δ|.
   */
  init(
    baseWeights: Uint8Array,
    onnx?: Uint8Array,
  ): Promise<{ backend: string; base_model_sha: string; oracle_max_abs_diff: number }>;
  /** Load the community's demo model (rebuilt from its seed, nothing fetched), pick a backend, run the oracle. */
  initDemo(): Promise<{
    backend: string;
    base_model_sha: string;
    base_model_id: string;
    card: ModelCard;
    oracle_max_abs_diff: number;
  }>;
  /**
   * A local practice run of the Training view: LoRA from the deterministic init (`seed`), trained on
   * the texts (structured-cloned from the page to this worker, on this device only); only counts and
   * the last loss come back, progress through `onProgress`.
   */
  trainLocal(
    spec: TrainSpec & { seed: number },
    texts: string[],
    onProgress: (p: TrainProgress) => void,
  ): Promise<{ steps: number; train_loss: number; stopped_early: boolean; cancelled: boolean }>;
  /**
   * Train A/B from `init` on the dataset (read from IndexedDB here, or texts handed over by the page
   * of this device); Δ = trained − init (unclipped).
   */
  train(
    m: RoundManifest,
    init: WireTensor[],
    data: DatasetRef | { texts: string[] },
    onProgress: (p: TrainProgress) => void,
  ): Promise<{ tensors: WireTensor[]; num_samples: number; train_loss: number; steps: number }>;
  /** Held-out loss with an adapter (full A, B) or the base model when null. */
  evalLoss(
    adapter: { tensors: WireTensor[]; rank: number; alpha: number } | null,
    data: DatasetRef | { texts: string[] },
  ): Promise<number>;
  /** Seconds per training step of `m` (2 measured steps), for the resource estimate. */
  benchmark(m: RoundManifest, init: WireTensor[]): Promise<number>;
  cancel(): void;
}
