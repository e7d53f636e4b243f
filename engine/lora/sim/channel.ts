/**
 * SimRadioChannel (digest §10): a deterministic model of the 868 MHz ether for tests, the bench and
 * the Playwright run. Airtime from the same airtime.ts; half-duplex radios; overlapping transmissions
 * collide unless one is ≥ 6 dB stronger (capture); log-distance path loss (n = 2.7, σ = 4 dB
 * shadowing); SNR = RSSI − (−174 + 10·log10 BW + 6); reception needs SNR ≥ the SF floor, matching
 * frequency/SF/BW/sync word, and survives an extra `lossRate`. Seeded PRNG, injectable clock.
 */
import { timeOnAirMs } from '../airtime.js';
import type { Clock } from '../clock.js';

export interface SimRadioParams {
  frequency_hz: number;
  sf: number;
  bw_khz: number;
  cr: number;
  preamble: number;
  sync_word: number;
  tx_power_dbm: number;
}

export interface SimRadio {
  id: string;
  /** metres */
  x: number;
  y: number;
  params(): SimRadioParams;
  receive(payload: Uint8Array, rssi: number, snr: number, from: string): void;
}

export const SNR_FLOOR_DB: Record<number, number> = {
  5: -2.5,
  6: -5,
  7: -7.5,
  8: -10,
  9: -12.5,
  10: -15,
  11: -17.5,
  12: -20,
};
export const CAPTURE_DB = 6;
export const PATH_LOSS_EXPONENT = 2.7;
export const SHADOWING_SIGMA_DB = 4;
/** free-space loss at 1 m, 868 MHz */
export const PL0_DB = 31.2;

export interface ChannelOptions {
  clock: Clock;
  seed?: number;
  lossRate?: number;
  /** disable shadowing (σ = 0) for exact-RSSI tests */
  shadowing?: boolean;
}

export interface ChannelStats {
  transmissions: number;
  delivered: number;
  collided: number;
  below_floor: number;
  lost: number;
  half_duplex: number;
  mismatched: number;
}

interface Tx {
  from: SimRadio;
  params: SimRadioParams;
  start: number;
  end: number;
  payload: Uint8Array;
  rssiAt: Map<string, number>;
}

/** mulberry32 */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sameChannel = (a: SimRadioParams, b: SimRadioParams) =>
  a.frequency_hz === b.frequency_hz && a.sf === b.sf && a.bw_khz === b.bw_khz && a.sync_word === b.sync_word;

export class SimRadioChannel {
  readonly clock: Clock;
  lossRate: number;
  private rand: () => number;
  private radios = new Map<string, SimRadio>();
  private active: Tx[] = [];
  private recent: Tx[] = [];
  readonly stats: ChannelStats = {
    transmissions: 0,
    delivered: 0,
    collided: 0,
    below_floor: 0,
    lost: 0,
    half_duplex: 0,
    mismatched: 0,
  };
  /** every transmission, for tests that watch the air */
  readonly log: { from: string; start: number; end: number; payload: Uint8Array }[] = [];
  private shadowing: boolean;

  constructor(o: ChannelOptions) {
    this.clock = o.clock;
    this.lossRate = o.lossRate ?? 0;
    this.rand = prng(o.seed ?? 1);
    this.shadowing = o.shadowing ?? true;
  }

  attach(r: SimRadio): () => void {
    this.radios.set(r.id, r);
    return () => this.radios.delete(r.id);
  }

  /** gaussian via Box-Muller */
  private gauss(): number {
    const u = Math.max(this.rand(), 1e-12);
    const v = this.rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  rssiBetween(a: SimRadio, b: SimRadio, txPower: number): number {
    const d = Math.max(1, Math.hypot(a.x - b.x, a.y - b.y));
    const shadow = this.shadowing ? SHADOWING_SIGMA_DB * this.gauss() : 0;
    return txPower - (PL0_DB + 10 * PATH_LOSS_EXPONENT * Math.log10(d) + shadow);
  }

  static noiseFloorDbm(bwKhz: number): number {
    return -174 + 10 * Math.log10(bwKhz * 1000) + 6;
  }

  isTransmitting(id: string, at = this.clock.now()): boolean {
    return this.active.some((t) => t.from.id === id && t.start <= at && at < t.end);
  }

  /** Put `payload` on air from radio `fromId`; `onAirBytes` lets an adapter add its header. Returns airtime ms. */
  transmit(
    fromId: string,
    payload: Uint8Array,
    onAirBytes = payload.length,
    done?: (airtimeMs: number) => void,
  ): number {
    const from = this.radios.get(fromId);
    if (!from) throw new Error(`radio ${fromId} is not attached`);
    const params = { ...from.params() };
    const airtime = timeOnAirMs(onAirBytes, {
      sf: params.sf,
      bw_khz: params.bw_khz,
      cr: params.cr,
      preamble: params.preamble,
    });
    const start = this.clock.now();
    const tx: Tx = { from, params, start, end: start + airtime, payload: payload.slice(), rssiAt: new Map() };
    for (const r of this.radios.values())
      if (r.id !== fromId) tx.rssiAt.set(r.id, this.rssiBetween(from, r, params.tx_power_dbm));
    this.active.push(tx);
    this.stats.transmissions++;
    this.log.push({ from: fromId, start, end: tx.end, payload: tx.payload });
    this.clock.setTimeout(() => {
      this.finish(tx);
      done?.(airtime);
    }, airtime);
    return airtime;
  }

  private finish(tx: Tx) {
    this.active = this.active.filter((t) => t !== tx);
    this.recent.push(tx);
    const horizon = this.clock.now() - 60_000;
    this.recent = this.recent.filter((t) => t.end > horizon);
    const overlapping = [...this.active, ...this.recent].filter(
      (t) => t !== tx && t.start < tx.end && tx.start < t.end,
    );
    for (const r of this.radios.values()) {
      if (r.id === tx.from.id) continue;
      const rp = r.params();
      if (!sameChannel(rp, tx.params)) {
        this.stats.mismatched++;
        continue;
      }
      if (overlapping.some((t) => t.from.id === r.id)) {
        this.stats.half_duplex++; // the receiver was itself transmitting
        continue;
      }
      const rssi = tx.rssiAt.get(r.id);
      if (rssi === undefined) continue; // attached after the transmission started
      const interferers = overlapping
        .filter((t) => sameChannel(t.params, rp))
        .map((t) => t.rssiAt.get(r.id) ?? -Infinity);
      if (interferers.some((i) => rssi < i + CAPTURE_DB)) {
        this.stats.collided++;
        continue;
      }
      const snr = rssi - SimRadioChannel.noiseFloorDbm(rp.bw_khz);
      if (snr < (SNR_FLOOR_DB[rp.sf] ?? -20)) {
        this.stats.below_floor++;
        continue;
      }
      if (this.rand() < this.lossRate) {
        this.stats.lost++;
        continue;
      }
      this.stats.delivered++;
      r.receive(tx.payload.slice(), Math.round(rssi), Math.round(snr * 4) / 4, tx.from.id);
    }
  }
}
