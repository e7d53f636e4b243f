/**
 * The suite's own reference for M29 (independent of engine/lora): LoRa time on air, the 32-byte
 * beacon layout and the rolling duty-cycle window, written from the lora-beacons digest §4 and §6.
 */
export function loraToaMs(pl: number, sf: number, bwKhz: number, crDenom: number, preamble: number): number {
  const tsymUs = (2 ** sf * 1000) / bwKhz; // µs
  const de = tsymUs >= 16_000 ? 1 : 0;
  const bits = 8 * pl - 4 * sf + 28 + 16; // CRC on, explicit header
  const nPay = 8 + Math.max(Math.ceil(bits / (4 * (sf - 2 * de))) * crDenom, 0);
  const us = (preamble + 4.25 + nPay) * tsymUs;
  return Math.round(us) / 1000;
}

export function beaconBytes(f: {
  sender_hash: string;
  sequence: number;
  flags: number;
  unix_seconds: number;
}): Uint8Array {
  const hex =
    '01' +
    f.sender_hash +
    f.sequence.toString(16).padStart(4, '0') +
    f.flags.toString(16).padStart(2, '0') +
    '00' +
    f.unix_seconds.toString(16).padStart(8, '0');
  const out = new Uint8Array(32);
  for (let i = 0; i < hex.length / 2; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** earliest t ≥ now at which used + frame ≤ budget (entries expire 3600 s after t; future t counts as now) */
export function nextAllowed(
  entries: { t: number; airtime_ms: number }[],
  now: number,
  frame: number,
  budget: number | null,
): number {
  if (budget === null) return now;
  const live = entries
    .map((e) => ({ t: Math.min(e.t, now), a: e.airtime_ms }))
    .filter((e) => e.t > now - 3_600_000);
  live.sort((x, y) => x.t - y.t);
  let used = live.reduce((s, e) => s + e.a, 0);
  const fits = () => Math.round((used + frame) * 1000) <= Math.round(budget * 1000);
  if (fits()) return now;
  for (const e of live) {
    used -= e.a;
    if (fits()) return e.t + 3_600_000;
  }
  return Infinity;
}
