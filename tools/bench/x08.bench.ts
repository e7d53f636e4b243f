/**
 * X08 codec throughput in Node: `x08.codec_mb_per_s` = tensor data bytes (10^6 per MB) per second through
 * encodeFrame + decodeFrame of a 4 MiB fp16 tensor cut into the default 256 KiB chunks (no compression,
 * no session, no channel: the framing cost alone).
 */
import type { BenchFilter } from './run.js';
import { FLAG_FINAL, FrameType, decodeFrame, encodeFrame } from '../../engine/transport/tensor/frame.js';

export const names = ['x08.codec_mb_per_s'];

function codecMbPerS(): number {
  const total = 4 << 20;
  const chunk = 262144;
  const data = new Uint8Array(total);
  for (let i = 0; i < total; i++) data[i] = (i * 2654435761) >>> 27;
  const shape = [1, 2048, 1024];
  let seq = 1;
  const once = (): number => {
    let moved = 0;
    for (let off = 0; off < total; off += chunk) {
      const end = Math.min(off + chunk, total);
      const bytes = encodeFrame({
        type: FrameType.TENSOR_DATA,
        seq: seq++,
        flags: end === total ? FLAG_FINAL : 0,
        tensorId: 1,
        dtype: 'fp16',
        shape,
        data: data.subarray(off, end),
      });
      const f = decodeFrame(bytes);
      if (f.type !== FrameType.TENSOR_DATA) throw new Error('decode mismatch');
      moved += f.data.length;
    }
    return moved;
  };
  for (let i = 0; i < 5; i++) once(); // warm-up
  const runs: number[] = [];
  for (let r = 0; r < 5; r++) {
    let bytes = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < 300) bytes += once();
    runs.push(bytes / 1e6 / ((performance.now() - t0) / 1000));
  }
  runs.sort((a, b) => a - b);
  return Math.round(runs[2]! * 10) / 10; // median
}

export async function figures(want: BenchFilter): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  if (want('x08.codec_mb_per_s')) out['x08.codec_mb_per_s'] = codecMbPerS();
  return out;
}
