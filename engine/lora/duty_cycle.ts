/**
 * Duty-cycle accounting (digest §6): a persisted log of (t_ms, airtime_ms) entries; used airtime is
 * the sum over the last 3600 s; the budget is duty_cycle_percent · 36 000 ms; `next_tx_allowed_at`
 * is the earliest t at which used + the next frame fits. Panics and overrides are recorded too.
 * A stored timestamp in the future (clock skew) counts as "now".
 */
import { HnError } from '../core/errors.js';

export const DUTY_WINDOW_MS = 3_600_000;

export interface AirtimeEntry {
  t: number;
  airtime_ms: number;
  override?: boolean;
}

/** Where the log lives: the module's key/value store in the node, a Map in a bare test. */
export interface LoraKv {
  get<T>(key: string): Promise<T | undefined>;
  put(key: string, value: unknown): Promise<void>;
}

export const AIRTIME_KEY = 'lora_airtime';

export interface DutyCycleStatus {
  region: string;
  window_seconds: number;
  airtime_used_ms: number;
  airtime_budget_ms: number | null;
  next_tx_allowed_at: number;
  frame_airtime_ms: number;
  overrides_in_window: number;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

export class DutyCycle {
  private entries: AirtimeEntry[] = [];
  private constructor(
    private readonly kv: LoraKv,
    /** percent of the hour, or null for no limit (US915) */
    public readonly percent: number | null,
  ) {}

  static async open(kv: LoraKv, percent: number | null): Promise<DutyCycle> {
    if (percent !== null && !(percent > 0 && percent <= 100))
      throw new HnError('bad_request', 'duty cycle percent');
    const dc = new DutyCycle(kv, percent);
    const raw = await kv.get<unknown>(AIRTIME_KEY);
    if (Array.isArray(raw)) {
      for (const e of raw) {
        if (
          e &&
          typeof e === 'object' &&
          Number.isFinite((e as AirtimeEntry).t) &&
          Number.isFinite((e as AirtimeEntry).airtime_ms) &&
          (e as AirtimeEntry).airtime_ms >= 0
        )
          dc.entries.push({
            t: (e as AirtimeEntry).t,
            airtime_ms: (e as AirtimeEntry).airtime_ms,
            override: !!(e as AirtimeEntry).override,
          });
      }
    }
    dc.entries.sort((a, b) => a.t - b.t);
    return dc;
  }

  get budgetMs(): number | null {
    return this.percent === null ? null : round3(this.percent * 36_000);
  }

  /** entries in the window ending at `now`, with future timestamps clamped to now */
  private live(now: number): AirtimeEntry[] {
    return this.entries
      .map((e) => (e.t > now ? { ...e, t: now } : e))
      .filter((e) => e.t > now - DUTY_WINDOW_MS)
      .sort((a, b) => a.t - b.t);
  }

  usedMs(now: number): number {
    return round3(this.live(now).reduce((s, e) => s + e.airtime_ms, 0));
  }

  overridesInWindow(now: number): number {
    return this.live(now).filter((e) => e.override).length;
  }

  /** Earliest t ≥ now when a frame of `frameMs` fits; Infinity if it can never fit. */
  nextTxAllowedAt(now: number, frameMs: number): number {
    const budget = this.budgetMs;
    if (budget === null) return now;
    if (frameMs > budget) return Infinity;
    const live = this.live(now);
    let used = live.reduce((s, e) => s + e.airtime_ms, 0);
    if (round3(used + frameMs) <= budget) return now;
    for (const e of live) {
      used -= e.airtime_ms;
      if (round3(used + frameMs) <= budget) return e.t + DUTY_WINDOW_MS;
    }
    return Infinity; // unreachable: with every entry expired, used = 0 ≤ budget − frame
  }

  fits(now: number, frameMs: number): boolean {
    return this.nextTxAllowedAt(now, frameMs) <= now;
  }

  /** Record a transmission (persisted before returning); old entries are pruned. */
  async record(now: number, airtimeMs: number, override = false): Promise<void> {
    this.entries = this.live(now);
    this.entries.push({ t: now, airtime_ms: airtimeMs, ...(override ? { override: true } : {}) });
    await this.kv.put(AIRTIME_KEY, this.entries);
  }

  status(now: number, region: string, frameMs: number): DutyCycleStatus {
    const next = this.nextTxAllowedAt(now, frameMs);
    return {
      region,
      window_seconds: DUTY_WINDOW_MS / 1000,
      airtime_used_ms: this.usedMs(now),
      airtime_budget_ms: this.budgetMs,
      next_tx_allowed_at: Number.isFinite(next) ? next : Number.MAX_SAFE_INTEGER,
      frame_airtime_ms: frameMs,
      overrides_in_window: this.overridesInWindow(now),
    };
  }
}
