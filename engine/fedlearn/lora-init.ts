/**
 * Deterministic LoRA init (digest §7): A ~ U(±1/√d_in) drawn from xoshiro128**(seed) in sorted tensor
 * order, row-major; B = 0. Bit-exact in the worker and the aggregator (integer PRNG, one F32 rounding).
 */
import { expectedShapes, type ModelCard, type Tensors } from './delta.js';
import { xoshiro128ss } from './rng.js';

export function loraInit(card: ModelCard, targets: readonly string[], rank: number, seed: number): Tensors {
  const r = xoshiro128ss(seed);
  const out: Tensors = new Map();
  for (const [name, shape] of expectedShapes(card, targets, rank)) {
    const data = new Float32Array(shape[0]! * shape[1]!);
    if (name.endsWith('.lora_A')) {
      const bound = 1 / Math.sqrt(shape[1]!);
      for (let i = 0; i < data.length; i++) data[i] = (2 * r.float() - 1) * bound;
    }
    out.set(name, { shape, data });
  }
  return out;
}
