/**
 * `m31.publish_to_notify_ms_p50`: two headless Chromium browsers (Debian `/usr/bin/chromium`, one
 * `chromium.launch` each, notifications granted) on the built PWA served by an in-process relay, in one
 * community. A (Wehrleiter Issum, cert from a root key held by the bench) publishes `warning` alerts for
 * Issum through the bus; B (resident in Issum) has the Alerts view open. Time from A's publish call to
 * B's `registration.showNotification` resolving (the OS notification exists), both read from the same
 * machine clock; median of 7 alerts after one warm-up.
 */
import { chromium, type Browser, type Page } from '@playwright/test';
import { issueCert, iso } from '../../engine/civdef/role.js';
import { keyPairFromSeed, signObject } from '../../engine/identity/identity.js';
import { serveBuiltApp, type BuiltApp } from './built-app.js';
import type { BenchFilter } from './run.js';
import { CHROMIUM_ARGS } from '../../playwright.config.js';

export const names = ['m31.publish_to_notify_ms_p50'];
const ARGS = CHROMIUM_ARGS;
const ISSUM = 'DE.NRW.Kleve.Issum';
const ROOT = keyPairFromSeed(new Uint8Array(32).fill(232));
const RUNS = 7;

async function until(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
async function boot(page: Page): Promise<void> {
  await page.waitForFunction(() => window.hearthnetReady === true || !!window.hearthnetBootError, null, {
    timeout: 60_000,
  });
  const err = await page.evaluate(() => window.hearthnetBootError ?? null);
  if (err) throw new Error(`boot failed: ${err.code}`);
}

export async function figures(want: BenchFilter): Promise<Record<string, number>> {
  if (!want('m31.publish_to_notify_ms_p50')) return {};
  const browsers: Browser[] = [];
  let app: BuiltApp | null = null;
  try {
    app = await serveBuiltApp();
    const url = app.url;
    const open = async () => {
      const b = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ARGS });
      browsers.push(b);
      const ctx = await b.newContext();
      await ctx.grantPermissions(['notifications'], { origin: url });
      const p = await ctx.newPage();
      await p.goto(url);
      await boot(p);
      return p;
    };
    const [pa, pb] = [await open(), await open()];
    const community = await pa.evaluate(() => window.hearthnet!.communityId);
    for (const [p, c] of [
      [pa, null],
      [pb, community],
    ] as const) {
      await p.evaluate(
        ([cc, root, home]) =>
          window.hearthnet!.setConfig({
            ...(cc ? { community: { community_id: cc } } : {}),
            civdef: { enabled: true, trust_roots_extra: [root], home_region: home },
          } as never),
        [c, ROOT.nodeId, ISSUM] as const,
      );
      await p.reload();
      await boot(p);
    }
    const idA = await pa.evaluate(() => window.hearthnet!.id);
    const idB = await pb.evaluate(() => window.hearthnet!.id);
    await until(
      () => pa.evaluate((o) => window.hearthnet!.peers().some((x) => x.id === o && x.state === 'open'), idB),
      60_000,
      'A and B linked',
    );
    // B: the Alerts view (it shows the notifications); record when each showNotification resolved
    await pb.evaluate(() => (location.hash = '#m/civdef'));
    await pb.waitForSelector('[data-testid="civdef-audit-export"]', { timeout: 60_000 });
    await until(() => pb.evaluate(() => !!navigator.serviceWorker.controller), 60_000, 'service worker');
    await pb.evaluate(() => {
      const w = window as unknown as { __shown: Record<string, number> };
      w.__shown = {};
      const orig = ServiceWorkerRegistration.prototype.showNotification;
      ServiceWorkerRegistration.prototype.showNotification = async function (title, opts) {
        await orig.call(this, title, opts);
        if (opts?.tag) w.__shown[opts.tag] ??= Date.now();
      };
    });
    const now = Date.now();
    const cert = issueCert((o) => signObject(ROOT, o), {
      holder: idA as never,
      role: `${ISSUM}.Feuerwehr.Wehrleiter`,
      region: ISSUM,
      issuer: ROOT.nodeId,
      issuer_chain: [ROOT.nodeId],
      issued_at: iso(now - 3600_000),
      expires_at: iso(now + 30 * 86400_000),
      scopes: ['alert.publish', 'alert.cancel'],
    });
    await pa.evaluate((c) => window.hearthnet!.call('experimental.civdef.role.register', { cert: c }), cert);
    const lat: number[] = [];
    for (let i = 0; i <= RUNS; i++) {
      const t0 = Date.now();
      const r = await pa.evaluate(
        ([cid, n]) =>
          window.hearthnet!.call('experimental.civdef.alert.publish', {
            cert_id: cid,
            severity: 'warning',
            title: `Bench ${n}`,
            body: 'Messung publish → Benachrichtigung',
            target: { region: 'DE.NRW.Kleve.Issum', bbox: null, roles: [], channels: ['local', 'push'] },
            instructions: [],
          }),
        [cert.cert_id, i] as const,
      );
      const id = r.alert_id as string;
      await until(
        () => pb.evaluate((t) => (window as any).__shown[t] !== undefined, id),
        60_000,
        `notification ${i}`,
      );
      const t1 = await pb.evaluate((t) => (window as any).__shown[t] as number, id);
      if (i > 0) lat.push(t1 - t0); // the first one warms up both sides
    }
    const sorted = [...lat].sort((a, b) => a - b);
    process.stderr.write(`bench: m31 publish → notify ms: ${sorted.join(', ')}\n`);
    return { 'm31.publish_to_notify_ms_p50': sorted[Math.floor(sorted.length / 2)]! };
  } finally {
    for (const b of browsers) await b.close();
    await app?.close();
  }
}
