/**
 * M29 figures: frame codec throughput (wall clock), the largest time-on-air error against the
 * digest's table (goal 0), and the median panic delivery time over the simulated channel at 10 %
 * loss (virtual time: 3 nodes, 40 seeded runs).
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { timeOnAirMs } from '../../engine/lora/airtime.js';
import { decodeFrame, encodeFrame } from '../../engine/lora/frame.js';
import { runPanicScenario } from '../../engine/lora/sim/scenario.js';
import type { BenchFilter } from './run.js';

export const names = [
  'm29.frame_codec_frames_per_s',
  'm29.airtime_error_ms_max',
  'm29.panic_delivery_ms_p50',
];

export async function figures(want: BenchFilter): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  if (want('m29.frame_codec_frames_per_s')) {
    let n = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < 1000) {
      for (let i = 0; i < 1000; i++) {
        const f = encodeFrame({
          sender_hash: '5bd4e337',
          sequence: (n + i) & 0xffff,
          flags: 2,
          unix_seconds: 1767225600 + i,
        });
        if (decodeFrame(f).sequence !== ((n + i) & 0xffff)) throw new Error('codec mismatch');
      }
      n += 1000;
    }
    out['m29.frame_codec_frames_per_s'] = Math.round(n / ((performance.now() - t0) / 1000));
  }
  if (want('m29.airtime_error_ms_max')) {
    const here = dirname(fileURLToPath(import.meta.url));
    const v = JSON.parse(readFileSync(resolve(here, '../../conformance/vectors/lora/airtime.json'), 'utf8'));
    let max = 0;
    for (const c of v.cases)
      max = Math.max(
        max,
        Math.abs(
          timeOnAirMs(c.payload_bytes, { sf: c.sf, bw_khz: c.bw_khz, cr: c.cr, preamble: c.preamble }) -
            c.toa_ms,
        ),
      );
    out['m29.airtime_error_ms_max'] = Math.round(max * 1e6) / 1e6;
  }
  if (want('m29.panic_delivery_ms_p50')) {
    const all: number[] = [];
    for (let seed = 1; seed <= 40; seed++)
      all.push(...(await runPanicScenario({ seed, lossRate: 0.1 })).deliveryMs);
    all.sort((a, b) => a - b);
    out['m29.panic_delivery_ms_p50'] = Math.round(all[Math.floor(all.length / 2)]! * 1000) / 1000;
  }
  return out;
}
