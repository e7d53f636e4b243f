/**
 * M29 time on air against the digest's table (to 0.001 ms) and duty-cycle accounting against the
 * hand-computed cases of conformance/vectors/lora/, with the log persisted in real IndexedDB
 * (fake-indexeddb) and surviving a reload.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { timeOnAirMs } from '../../engine/lora/airtime.js';
import { AIRTIME_KEY, DutyCycle, DUTY_WINDOW_MS } from '../../engine/lora/duty_cycle.js';
import { HnError } from '../../engine/core/errors.js';
import { kvOver, openDb } from './lora-helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const load = (f: string) =>
  JSON.parse(readFileSync(resolve(here, '../../conformance/vectors/lora', f), 'utf8'));
const AIR = load('airtime.json');
const DUTY = load('duty_cycle.json');

describe('M29 time on air (digest §6 table)', () => {
  it.each(AIR.cases as any[])(
    'PL $payload_bytes SF$sf BW$bw_khz CR4/$cr pre $preamble → $toa_ms ms',
    (c: any) => {
      const got = timeOnAirMs(c.payload_bytes, {
        sf: c.sf,
        bw_khz: c.bw_khz,
        cr: c.cr,
        preamble: c.preamble,
      });
      expect(Math.abs(got - c.toa_ms)).toBeLessThanOrEqual(AIR.tolerance_ms / 2);
      if (c.beacons_per_36s) expect(Math.floor(36000 / got)).toBe(c.beacons_per_36s);
    },
  );
  it('is monotone in payload and SF, and refuses impossible parameters', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 254 }),
        fc.integer({ min: 7, max: 11 }),
        fc.constantFrom(125, 250, 500),
        (pl, sf, bw) => {
          const p = { sf, bw_khz: bw, cr: 5, preamble: 8 };
          expect(timeOnAirMs(pl + 1, p)).toBeGreaterThanOrEqual(timeOnAirMs(pl, p));
          expect(timeOnAirMs(pl, { ...p, sf: sf + 1 })).toBeGreaterThan(timeOnAirMs(pl, p));
        },
      ),
    );
    for (const bad of [{ sf: 13 }, { sf: 4 }, { cr: 9 }, { bw_khz: 0 }])
      expect(() => timeOnAirMs(32, { sf: 9, bw_khz: 125, cr: 5, preamble: 8, ...bad })).toThrow(HnError);
    expect(() => timeOnAirMs(256, { sf: 9, bw_khz: 125, cr: 5, preamble: 8 })).toThrow(HnError);
  });
});

describe('M29 duty cycle (digest §6 accounting)', () => {
  it.each(DUTY.cases as any[])('$name', async (c: any) => {
    const { store } = await openDb();
    const kv = kvOver(store);
    await kv.put(AIRTIME_KEY, c.entries);
    const dc = await DutyCycle.open(kv, c.percent);
    expect(dc.budgetMs).toBe(c.budget_ms);
    expect(dc.usedMs(c.now)).toBeCloseTo(c.used_ms, 6);
    expect(dc.fits(c.now, c.frame_ms)).toBe(c.fits);
    expect(dc.nextTxAllowedAt(c.now, c.frame_ms)).toBe(c.next_tx_allowed_at);
    await store.close();
  });

  it('synthetic transmissions drain the budget, each recovers exactly 3600 s later, and the log survives a reload', async () => {
    const db = await openDb();
    const T0 = 1_767_225_600_000;
    const frame = 246.784;
    let dc = await DutyCycle.open(kvOver(db.store), 1);
    let t = T0;
    let sent = 0;
    while (dc.fits(t, frame)) {
      await dc.record(t, frame);
      sent++;
      t += 10_000;
    }
    expect(sent).toBe(145);
    const next = dc.nextTxAllowedAt(t, frame);
    expect(next).toBe(T0 + DUTY_WINDOW_MS);
    // reload: a fresh database handle, a fresh DutyCycle
    await db.store.close();
    const again = await openDb(db.name);
    dc = await DutyCycle.open(kvOver(again.store), 1);
    expect(dc.usedMs(t)).toBeCloseTo(145 * frame, 6);
    expect(dc.fits(next - 1, frame)).toBe(false);
    expect(dc.fits(next, frame)).toBe(true);
    // one entry recovers per 10 s after that
    expect(dc.usedMs(next)).toBeCloseTo(144 * frame, 6);
    expect(dc.usedMs(next + 10_000)).toBeCloseTo(143 * frame, 6);
    await again.store.close();
  });

  it('property: next_tx_allowed_at is the earliest time the next frame fits', async () => {
    const { store } = await openDb();
    const kv = kvOver(store);
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({ dt: fc.integer({ min: 0, max: 600_000 }), a: fc.integer({ min: 1, max: 9000 }) }),
          { maxLength: 30 },
        ),
        fc.integer({ min: 1, max: 4000 }),
        async (steps, frame) => {
          const T0 = 1_767_225_600_000;
          let t = T0;
          const entries = steps.map((s) => ({ t: (t += s.dt), airtime_ms: s.a }));
          await kv.put(AIRTIME_KEY, entries);
          const dc = await DutyCycle.open(kv, 1);
          const now = t;
          const next = dc.nextTxAllowedAt(now, frame);
          expect(next).toBeGreaterThanOrEqual(now);
          expect(dc.usedMs(next) + frame).toBeLessThanOrEqual(36000 + 1e-6);
          if (next > now) expect(dc.usedMs(next - 1) + frame).toBeGreaterThan(36000);
        },
      ),
      { numRuns: 150 },
    );
    await store.close();
  });

  it('ignores corrupt stored entries instead of crashing, and keeps valid ones', async () => {
    const { store } = await openDb();
    const kv = kvOver(store);
    await kv.put(AIRTIME_KEY, [null, 5, { t: 'x' }, { t: 1, airtime_ms: -3 }, { t: 100, airtime_ms: 50 }]);
    const dc = await DutyCycle.open(kv, 1);
    expect(dc.usedMs(200)).toBe(50);
    await store.close();
  });
});
