/**
 * M29 acceptance §11.14: three separate headless Chromium browsers (one `chromium.launch` each) on ONE
 * simulated ether with 10 % loss. This test process (the Node runner) owns the SimRadioChannel, one
 * Meshtastic SimStick per browser and the virtual clock (digest §10); each page reaches its stick
 * through `context.exposeBinding('__hearthnetLoraSim')` and the runner advances every page's virtual
 * clock with `__hearthnetLoraSimTick`. In the pages run the real app, LoRa module, service, Meshtastic
 * adapter byte protocol, serial bridge and frame codec; only the radio hardware is simulated.
 * Browser A presses PANIC in the Radio view (through the confirmation); with the virtual clock frozen
 * 3 s after the click, B and C must show the panic.
 */
import { chromium, expect, test, type Browser, type BrowserContext, type Page } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { fromHex, toHex } from '../../engine/core/encoding.js';
import { VirtualClock } from '../../engine/lora/clock.js';
import { FLAG_PANIC } from '../../engine/lora/frame.js';
import { SimRadioChannel } from '../../engine/lora/sim/channel.js';
import { SIM_BINDING, SIM_TICK } from '../../engine/lora/sim/page_bridge.js';
import { SimStick } from '../../engine/lora/sim/stick.js';
import { CHROMIUM_ARGS } from '../../playwright.config.js';

const STEP_MS = 25;

interface Radio {
  name: string;
  browser: Browser;
  context: BrowserContext;
  page: Page;
  stick: SimStick;
  /** bytes the stick sent that the page has not been given yet */
  queue: Uint8Array[];
}

const concat = (parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

async function ready(page: Page): Promise<void> {
  await page.waitForFunction(() => window.hearthnetReady === true || !!window.hearthnetBootError, null, {
    timeout: 30_000,
  });
  expect(await page.evaluate(() => window.hearthnetBootError ?? null)).toBeNull();
}

test('three browsers on one simulated ether (10 % loss): a panic from A shows on B and C within 3 s of virtual time', async () => {
  test.setTimeout(240_000);
  const baseURL = test.info().project.use.baseURL!;
  const clock = new VirtualClock();
  const channel = new SimRadioChannel({ clock, seed: 29, lossRate: 0.1 });
  const radios: Radio[] = [];
  let ticking = true;
  let paused = false;
  let inFlight: Promise<void> = Promise.resolve();

  /** one virtual step: the ether in Node, then each page gets its stick's bytes and the new time */
  const step = async (ms: number) => {
    await clock.advance(ms);
    const t = clock.now();
    await Promise.all(
      radios.map(async (r) => {
        const bytes = concat(r.queue.splice(0));
        const ok = await r.page
          .evaluate(
            ([name, hex, now]) => {
              const tick = (globalThis as Record<string, unknown>)[name as string] as
                ((h: string, n: number) => Promise<void>) | undefined;
              if (!tick) return false;
              return tick(hex as string, now as number).then(() => true);
            },
            [SIM_TICK, toHex(bytes), t] as const,
          )
          .catch(() => false);
        if (!ok && bytes.length) r.queue.unshift(bytes);
      }),
    );
  };
  const ticker = (async () => {
    while (ticking) {
      if (paused) {
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      inFlight = step(STEP_MS);
      await inFlight;
    }
  })();
  const pause = async () => {
    paused = true;
    await inFlight;
  };

  try {
    const names = ['A', 'B', 'C'];
    for (const [i, name] of names.entries()) {
      const browser = await chromium.launch({
        executablePath: '/usr/bin/chromium',
        headless: true,
        args: CHROMIUM_ARGS,
      });
      // B is phone-sized (the view is designed phone-first; its screenshot is taken below)
      const context = await browser.newContext(
        name === 'B' ? { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 } : {},
      );
      await context.grantPermissions(['notifications'], { origin: baseURL });
      // observe (not replace) the Notification API: the real constructor runs, the options are recorded
      await context.addInitScript(() => {
        const N = window.Notification;
        if (!N) return;
        const seen: { title: string; requireInteraction?: boolean; tag?: string }[] = [];
        (window as unknown as { __loraNotes: typeof seen }).__loraNotes = seen;
        class Observed extends N {
          constructor(title: string, o?: NotificationOptions) {
            super(title, o);
            seen.push({ title, requireInteraction: o?.requireInteraction, tag: o?.tag });
          }
        }
        Object.defineProperty(Observed, 'permission', { get: () => N.permission });
        (window as unknown as { Notification: typeof N }).Notification = Observed;
      });
      const stick = new SimStick({
        id: `stick-${name}`,
        personality: 'meshtastic',
        channel,
        x: i * 80,
        y: (i % 2) * 60,
      });
      const r: Radio = { name, browser, context, page: null as unknown as Page, stick, queue: [] };
      await context.exposeBinding(SIM_BINDING, (_src, op: string, hex?: string) => {
        if (op === 'now') return clock.now();
        if (op === 'open') {
          r.queue.length = 0;
          stick.connect((b) => r.queue.push(b.slice()));
          return '';
        }
        if (op === 'close') {
          stick.connect(null);
          return '';
        }
        if (op === 'write') {
          stick.write(fromHex(hex ?? ''));
          // what the stick answered at once goes back with the write, in order
          return toHex(concat(r.queue.splice(0)));
        }
        throw new Error(`unknown op ${op}`);
      });
      r.page = await context.newPage();
      radios.push(r);
      await r.page.goto(baseURL);
      await ready(r.page);
      await r.page.evaluate(() => window.hearthnet!.enable('lora'));
      await r.page.getByTestId('nav-module-lora').click(); // the Radio view, from the navigation bar
    }

    // everyone connects the stick from the Radio view (requestPort → the runner's stick)
    for (const r of radios) {
      await r.page.getByTestId('lora-connect').click({ timeout: 30_000 });
      await expect(r.page.getByTestId('lora-state')).toHaveText('ready', { timeout: 30_000 });
    }
    const hashes = await Promise.all(
      radios.map((r) =>
        r.page.evaluate(
          async () => (await window.hearthnet!.call('experimental.lora.status', {})).simulated as boolean,
        ),
      ),
    );
    expect(hashes).toEqual([true, true, true]);

    // A presses PANIC and confirms; the ether stands still while the click reaches the stick
    const a = radios[0]!;
    await a.page.getByTestId('lora-panic').click();
    await expect(a.page.getByTestId('lora-panic-confirm-box')).toBeVisible();
    await pause();
    const t0 = clock.now();
    const sentBefore = a.stick.txFrames.length;
    await a.page.getByTestId('lora-panic-confirm').click();
    await expect.poll(() => a.stick.txFrames.length, { timeout: 30_000 }).toBeGreaterThan(sentBefore);
    expect(channel.log.at(-1)!.start).toBe(t0);
    // 3 s of virtual time, then the clock stops for good
    while (clock.now() < t0 + 3000) {
      inFlight = step(Math.min(STEP_MS, t0 + 3000 - clock.now()));
      await inFlight;
    }
    ticking = false;
    await ticker;
    expect(clock.now()).toBe(t0 + 3000);

    for (const r of radios.slice(1)) {
      await expect(r.page.getByTestId('lora-panic-alert').first()).toBeVisible({ timeout: 20_000 });
      const heard = await r.page.evaluate(
        async (flag) =>
          (await window.hearthnet!.call('experimental.lora.recent_beacons', { flags_any: flag })).beacons as {
            timestamp: number;
            rssi: number;
            snr: number;
          }[],
        FLAG_PANIC,
      );
      expect(heard.length).toBeGreaterThan(0);
      const first = Math.min(...heard.map((b) => b.timestamp));
      expect(first - t0).toBeGreaterThan(0);
      expect(first - t0).toBeLessThanOrEqual(3000);
      expect(typeof heard[0]!.rssi).toBe('number');
      console.log(`lora e2e: ${r.name} heard the panic after ${first - t0} ms of virtual time`);
      const notes = await r.page.evaluate(
        () => (window as unknown as { __loraNotes?: { requireInteraction?: boolean }[] }).__loraNotes ?? [],
      );
      expect(notes.length).toBe(1);
      expect(notes[0]!.requireInteraction).toBe(true);
    }
    expect(channel.stats.transmissions).toBeGreaterThanOrEqual(1);
    // A itself shows no received panic; B's view lists A's sender as heard
    await expect(a.page.getByTestId('lora-panic-alert')).toHaveCount(0);
    await expect(radios[1]!.page.getByTestId('lora-peer-row')).toHaveCount(1);

    const b = radios[1]!;
    mkdirSync('test-results', { recursive: true });
    await b.page.getByTestId('lora-view').scrollIntoViewIfNeeded();
    await b.page.screenshot({ path: 'test-results/lora-radio-view-phone.png' });
    await b.page.getByTestId('lora-view').screenshot({ path: 'test-results/lora-radio-view-element.png' });
  } finally {
    ticking = false;
    paused = false;
    await ticker.catch(() => undefined);
    for (const r of radios) await r.browser.close().catch(() => undefined);
  }
});

test('no stick: Chromium drives Web Serial from the serial worker; a browser without Web Serial says so plainly', async ({
  browser,
}) => {
  test.setTimeout(120_000);
  const baseURL = test.info().project.use.baseURL!;
  const contexts: BrowserContext[] = [];
  try {
    const open = async (withoutSerial: boolean) => {
      const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
      contexts.push(context);
      // Firefox and Safari have no navigator.serial: the same page with it removed
      if (withoutSerial)
        await context.addInitScript(() => delete (Navigator.prototype as { serial?: unknown }).serial);
      const page = await context.newPage();
      await page.goto(baseURL);
      await ready(page);
      await page.evaluate(() => window.hearthnet!.enable('lora'));
      await page.getByTestId('nav-module-lora').click(); // the Radio view, from the navigation bar
      return page;
    };
    const chromiumPage = await open(false);
    await expect(chromiumPage.getByTestId('lora-view')).toHaveAttribute('data-serial-host', 'worker', {
      timeout: 30_000,
    });
    await expect(chromiumPage.getByTestId('lora-state')).toHaveText('unavailable');
    await expect(chromiumPage.getByTestId('lora-connect')).toBeVisible();
    await expect(chromiumPage.getByTestId('lora-unsupported')).toHaveCount(0);
    expect(
      await chromiumPage.evaluate(async () => {
        const s = await window.hearthnet!.call('experimental.lora.status', {});
        return [s.state, s.error_code, s.web_serial_supported, s.simulated];
      }),
    ).toEqual(['unavailable', 'lora_hardware_unavailable', true, false]);

    const plain = await open(true);
    await expect(plain.getByTestId('lora-unsupported')).toContainText(
      'Web Serial is unavailable in this browser',
      {
        timeout: 30_000,
      },
    );
    await expect(plain.getByTestId('lora-view')).toHaveAttribute('data-serial-host', 'none');
    await expect(plain.getByTestId('lora-connect')).toHaveCount(0);
    const code = await plain.evaluate(() =>
      window.hearthnet!.call('experimental.lora.beacon.send', {}).then(
        () => 'sent',
        (e: { code?: string }) => e.code,
      ),
    );
    expect(code).toBe('lora_hardware_unavailable');
  } finally {
    for (const c of contexts) await c.close();
  }
});
