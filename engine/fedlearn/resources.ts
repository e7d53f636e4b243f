/**
 * M28 resource estimate (digest §7 "Resource estimate"): P_lora = L·Σ r(d_in+d_out);
 * memory ≈ 1.5·(4·P_base + 16·P_lora + 4·batch·ctx·L·(16d + 2·heads·ctx)); disk ≈ 12·P_lora + 64 KiB;
 * `insufficient_resources` (the limit in details) for memory, the largest tensor, disk, or time.
 */
import { HnError } from '../core/errors.js';
import { loraParams, type ModelCard } from './delta.js';
import type { RoundManifest } from './manifest.js';

export interface DeviceLimits {
  memory_bytes?: number;
  max_tensor_bytes?: number;
  disk_bytes?: number;
  step_seconds?: number;
}

export type EstimateCard = ModelCard & { params?: number; d_model?: number; heads?: number; ctx?: number };

export function estimateResources(
  card: EstimateCard,
  m: RoundManifest,
  budgets: { training_vram_budget_mb: number; training_disk_budget_mb: number },
  device: DeviceLimits,
  now: number,
) {
  const P = loraParams(card, m.lora_target_modules, m.lora_rank);
  const d = card.d_model ?? 0;
  const ctx = card.ctx ?? 0;
  const mem =
    1.5 *
    (4 * (card.params ?? 0) +
      16 * P +
      4 * m.batch_size * ctx * card.layers * (16 * d + 2 * (card.heads ?? 0) * ctx));
  const disk = 12 * P + 64 * 1024;
  const memLimit = Math.min(budgets.training_vram_budget_mb * 2 ** 20, device.memory_bytes ?? Infinity);
  const diskLimit = Math.min(budgets.training_disk_budget_mb * 2 ** 20, device.disk_bytes ?? Infinity);
  const refuse = (what: string, need: number, limit: number) =>
    new HnError('insufficient_resources', `${what} estimate exceeds the limit`, {
      details: { resource: what, need, limit },
    });
  if (mem > memLimit) throw refuse('memory', mem, memLimit);
  let biggest = 0;
  for (const mod of m.lora_target_modules)
    biggest = Math.max(biggest, 4 * m.lora_rank * Math.max(...card.modules[mod]!));
  if (device.max_tensor_bytes !== undefined && biggest > device.max_tensor_bytes)
    throw refuse('tensor', biggest, device.max_tensor_bytes);
  if (disk > diskLimit) throw refuse('disk', disk, diskLimit);
  const seconds = (device.step_seconds ?? 0) * m.train_steps;
  const left = (Date.parse(m.deadline) - 30_000 - now) / 1000;
  if (seconds > left) throw refuse('time', seconds, left);
  return {
    mem_mb: Math.ceil(mem / 2 ** 20),
    disk_mb: Math.ceil(disk / 2 ** 20),
    seconds: Math.ceil(seconds),
  };
}
