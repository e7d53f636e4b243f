/**
 * The app shell and PWA (Playwright, Debian Chromium): boot, identity across reloads, slots per
 * tab, offline reload from the service worker, persisted module switches, the phone layout.
 */
import { chromium, expect, test, type Page } from '@playwright/test';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRelay } from '../../relay/server.js';
import { CHROMIUM_ARGS } from '../../playwright.config.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NODE_ID_RE = /^ed25519:[A-Za-z0-9_-]{43}$/;

/** Wait for the node to boot; fail with the boot error when it did not. */
async function ready(page: Page): Promise<void> {
  await page.waitForFunction(() => window.hearthnetReady === true || !!window.hearthnetBootError, null, {
    timeout: 20_000,
  });
  const err = await page.evaluate(() => window.hearthnetBootError ?? null);
  expect(err, `boot error: ${JSON.stringify(err)}`).toBeNull();
}

const nodeId = (page: Page) => page.evaluate(() => window.hearthnet!.id);
const slotOf = async (page: Page) =>
  Number((await page.getByTestId('slot').textContent())!.replace(/\D/g, ''));

/** Fail the test on any uncaught page error. */
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  return errors;
}

test('the shell boots and shows the node identity', async ({ page }) => {
  const errors = watchErrors(page);
  const requested: string[] = [];
  page.on('request', (r) => requested.push(new URL(r.url()).pathname));
  await page.goto('/');
  await ready(page);
  // heavy runtimes (ONNX Runtime, WebLLM, their .wasm) stay off the first-paint path
  expect(requested.filter((p) => /\.wasm$|onnxruntime|\/ort[.-]|web-llm|\.onnx$/i.test(p))).toEqual([]);
  const id = await nodeId(page);
  expect(id).toMatch(NODE_ID_RE);
  await expect(page.getByTestId('node-id')).toHaveText(id);
  const shortId = await page.evaluate(() => window.hearthnet!.shortId);
  await expect(page.getByTestId('short-id')).toHaveText(shortId);
  // join link and its QR code
  const communityId = await page.evaluate(() => window.hearthnet!.communityId);
  await expect(page.getByTestId('join-link')).toHaveText(new URL(`/#join=${communityId}`, page.url()).href);
  await expect(page.getByTestId('join-qr').locator('svg')).toBeVisible();
  // panels
  await expect(page.getByTestId('peers-empty')).toBeVisible();
  await expect(page.getByTestId('module-panels-empty')).toBeVisible();
  // event log: stored events, newest first, then live ones on top
  await expect(page.getByTestId('event-list')).toContainText('community.created');
  const lamports = async () =>
    (await page.getByTestId('event-row').locator('.lamport').allTextContents()).map((t) =>
      Number(t.slice(1)),
    );
  const shown = await lamports();
  expect(shown).toEqual([...shown].sort((x, y) => y - x));
  const ev = await page.evaluate(() => window.hearthnet!.events.append('app.test.pinged', { n: 1 }));
  await expect(page.getByTestId('event-row').first()).toContainText('app.test.pinged');
  await expect(page.getByTestId('event-row').first()).toContainText(`#${ev.lamport}`);
  await expect(page.getByTestId('event-row').first()).toContainText('this node');
  await expect(page.getByTestId('event-count')).toHaveText(String(shown.length + 1));
  // PWA basics
  const manifest = await page.evaluate(async () => {
    const href = document.querySelector<HTMLLinkElement>('link[rel="manifest"]')!.href;
    return (await fetch(href)).json();
  });
  expect(manifest.name).toBe('HearthNet');
  expect(manifest.icons.map((i: { sizes: string }) => i.sizes)).toEqual(
    expect.arrayContaining(['192x192', '512x512']),
  );
  expect(manifest.icons.some((i: { purpose?: string }) => i.purpose === 'maskable')).toBe(true);
  expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
  expect(errors).toEqual([]);
});

test('the NodeID survives a reload', async ({ page }) => {
  await page.goto('/');
  await ready(page);
  const before = await nodeId(page);
  const slot = await slotOf(page);
  await page.reload();
  await ready(page);
  expect(await nodeId(page)).toBe(before);
  expect(await slotOf(page)).toBe(slot);
  await expect(page.getByTestId('node-id')).toHaveText(before);
});

test('two tabs get different slots and NodeIDs; a forced slot that is taken shows an error', async ({
  context,
}) => {
  const tab1 = await context.newPage();
  await tab1.goto('/');
  await ready(tab1);
  const tab2 = await context.newPage();
  await tab2.goto('/');
  await ready(tab2);
  expect(await slotOf(tab1)).toBe(0);
  expect(await slotOf(tab2)).toBe(1);
  expect(await nodeId(tab1)).not.toBe(await nodeId(tab2));

  const tab3 = await context.newPage();
  await tab3.goto('/?slot=0');
  await expect(tab3.getByTestId('boot-error')).toBeVisible();
  await expect(tab3.getByTestId('error')).toHaveAttribute('data-code', 'slot_taken');
  await expect(tab3.getByTestId('boot-error')).toContainText('slot 0 is in use');
  expect(await tab3.evaluate(() => window.hearthnet)).toBeUndefined();

  // a free slot can be forced
  await tab3.goto('/?slot=5');
  await ready(tab3);
  expect(await slotOf(tab3)).toBe(5);
});

test('offline: after one visit the shell reloads with the server gone and keeps its identity', async ({
  browser,
}) => {
  // a server of its own, so this test can really stop it
  const relay = await createRelay({
    host: '127.0.0.1',
    port: 0,
    staticDir: path.join(ROOT, 'app/dist'),
    log: () => {},
  });
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(relay.url);
    await ready(page);
    const before = await nodeId(page);
    await page.evaluate(async () => {
      await navigator.serviceWorker.ready;
    });
    await page.waitForFunction(() => !!navigator.serviceWorker.controller);
    await expect(page.getByTestId('offline-ready')).toHaveText('works offline');

    await relay.close();
    await context.setOffline(true);
    await page.reload();
    await ready(page);
    expect(await nodeId(page)).toBe(before);
    await expect(page.getByTestId('node-id')).toHaveText(before);
    await expect(page.getByTestId('online')).toHaveText('offline');
    // the data is still there too
    expect(await page.evaluate(() => window.hearthnet!.events.count())).toBeGreaterThan(0);
  } finally {
    await context.close();
    await relay.close().catch(() => {});
  }
});

test("the app is installable (Chromium's own check, in a non-incognito profile)", async ({ baseURL }) => {
  const profile = mkdtempSync(path.join(tmpdir(), 'hearthnet-install-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(baseURL!);
    await ready(page);
    await page.evaluate(async () => {
      await navigator.serviceWorker.ready;
    });
    await page.waitForFunction(() => !!navigator.serviceWorker.controller);
    const cdp = await context.newCDPSession(page);
    const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
    expect(installabilityErrors).toEqual([]);
    const { url, data } = await cdp.send('Page.getAppManifest');
    expect(url).toMatch(/manifest\.webmanifest$/);
    expect(JSON.parse(data!).name).toBe('HearthNet');
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
});

test('a module switch persists across reloads and its capabilities come and go', async ({ page }) => {
  await page.goto('/');
  await ready(page);
  await page.getByTestId('nav-settings').click(); // the switches live in Settings
  const sw = page.getByTestId('module-switch-moe');
  await expect(sw).not.toBeChecked();
  await expect(page.getByTestId('caps-moe')).toHaveCount(0);

  await sw.check();
  await expect(sw).toBeChecked();
  await expect(page.getByTestId('caps-moe')).toContainText('experimental.moe.route.query@1.0');
  const registered = () =>
    page.evaluate(() => window.hearthnet!.bus.list().filter((c) => c.module === 'moe').length);
  expect(await registered()).toBeGreaterThan(0);
  await expect(page.getByTestId('caps-moe').locator('li')).toHaveCount(await registered());

  await page.reload();
  await ready(page);
  await expect(page.getByTestId('module-switch-moe')).toBeChecked();
  await expect(page.getByTestId('caps-moe')).toContainText('experimental.moe.expert.register@1.0');

  await page.getByTestId('module-switch-moe').uncheck();
  await expect(page.getByTestId('caps-moe')).toHaveCount(0);
  expect(await registered()).toBe(0);
  await page.reload();
  await ready(page);
  await expect(page.getByTestId('module-switch-moe')).not.toBeChecked();
  expect(await registered()).toBe(0);
});

test('config import shows the field diff before saving and errors with their field', async ({ page }) => {
  await page.goto('/');
  await ready(page);
  await page.getByTestId('nav-settings').click();
  await page.getByText('or paste a config').click();
  await page.getByTestId('config-text').fill('[transport]\nmax_links = 999\n');
  await page.getByTestId('config-preview').click();
  await expect(page.getByTestId('error')).toHaveAttribute('data-code', 'invalid_field');
  await expect(page.getByTestId('error')).toContainText('transport.max_links');

  await page.getByTestId('config-text').fill('[transport]\nmax_links = 8\n');
  await page.getByTestId('config-preview').click();
  await expect(page.getByTestId('config-diff')).toContainText('transport.max_links');
  expect(await page.evaluate(() => window.hearthnet!.config.transport.max_links)).toBe(16);
  await page.getByTestId('config-save').click();
  await expect(page.getByTestId('config-saved')).toBeVisible();
  expect(await page.evaluate(() => window.hearthnet!.config.transport.max_links)).toBe(8);
});

test('the join link offers to join that community', async ({ browser, page }) => {
  await page.goto('/');
  await ready(page);
  const community = await page.evaluate(() => window.hearthnet!.communityId);
  const link = (await page.getByTestId('join-link').textContent())!;
  const other = await browser.newContext();
  try {
    const p2 = await other.newPage();
    await p2.goto(link);
    await ready(p2);
    const id2 = await nodeId(p2);
    await expect(p2.getByTestId('join-banner')).toBeVisible();
    await p2.getByRole('button', { name: 'Join' }).click();
    await p2.waitForURL((u) => !u.hash.includes('join='));
    await ready(p2);
    await expect(p2.getByTestId('community-id')).toHaveText(community);
    expect(await nodeId(p2)).toBe(id2);
    await expect(p2.getByTestId('join-banner')).toHaveCount(0);
    // both join the room at the relay and link up; each lists the other with link type and RTT
    const id1 = await nodeId(page);
    await expect(page.getByTestId('relay-state')).toContainText('joined');
    await expect(p2.getByTestId('relay-state')).toContainText('joined');
    const row1 = page
      .getByTestId('peer-row')
      .filter({ hasText: await p2.evaluate(() => window.hearthnet!.shortId) });
    const row2 = p2
      .getByTestId('peer-row')
      .filter({ hasText: await page.evaluate(() => window.hearthnet!.shortId) });
    await expect(row1).toContainText('open', { timeout: 20_000 });
    await expect(row2).toContainText('open', { timeout: 20_000 });
    await expect(row1).toContainText(/ms/, { timeout: 10_000 });
    await expect(row1).toContainText(/direct|relay/);
    expect(await p2.evaluate(() => window.hearthnet!.peers().map((p) => p.id))).toContain(id1);
  } finally {
    await other.close();
  }
});

test('navigation: Home first, a module view only while its module is on, Diagnostics and Settings', async ({
  page,
}) => {
  const errors = watchErrors(page);
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto('/');
  await ready(page);
  await expect(page.getByTestId('view-home')).toBeVisible();
  await expect(page.getByTestId('nav-module-evidence')).toHaveCount(0);
  // on a laptop the navigation is a side bar
  const bar = (await page.getByTestId('nav').boundingBox())!;
  expect(bar.x).toBe(0);
  expect(bar.height).toBeGreaterThan(bar.width);

  await page.getByTestId('nav-settings').click();
  await page.getByTestId('module-switch-evidence').check();
  await page.getByTestId('nav-module-evidence').click();
  await expect(page).toHaveURL(/#m\/evidence$/);
  // the view is the module definition's own component, loaded lazily
  await expect(page.getByTestId('module-view-evidence').getByTestId('ev-subject')).toBeVisible();
  // a reload keeps the view
  await page.reload();
  await ready(page);
  await expect(page.getByTestId('ev-subject')).toBeVisible();

  // Diagnostics: module states and the node's log (the switch above was logged), with a level filter
  await page.getByTestId('nav-diagnostics').click();
  await expect(page.getByTestId('module-state-evidence')).toHaveAttribute('data-state', 'on');
  await expect(page.getByTestId('module-state-moe')).toHaveAttribute('data-state', 'off');
  await expect(page.getByTestId('log-row').filter({ hasText: 'module started' }).first()).toBeVisible();
  await page.evaluate(() => window.hearthnet!.logs.write('warning', 'e2e', 'a warning for the filter'));
  await page.getByTestId('log-level').selectOption('warning');
  await expect(page.getByTestId('log-row').filter({ hasText: 'a warning for the filter' })).toHaveCount(1);
  await expect(page.getByTestId('log-row').filter({ hasText: 'module started' })).toHaveCount(0);

  // switched off, the module's view leaves the navigation and its address says it is off
  await page.evaluate(() => window.hearthnet!.disable('evidence'));
  await expect(page.getByTestId('nav-module-evidence')).toHaveCount(0);
  await page.goto('/#m/evidence');
  await ready(page);
  await expect(page.getByTestId('module-view-off')).toBeVisible();
  await expect(page.getByTestId('ev-subject')).toHaveCount(0);
  expect(errors).toEqual([]);
});

test.describe('phone', () => {
  test.use({
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    colorScheme: 'dark',
  });

  test('fits a phone screen (screenshot for the README)', async ({ page }) => {
    await page.goto('/');
    await ready(page);
    await page.evaluate(() => window.hearthnet!.enable('evidence'));
    await page.getByTestId('nav-settings').click();
    await expect(page.getByTestId('module-switch-evidence')).toBeChecked();
    const noOverflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(await noOverflow()).toBeLessThanOrEqual(0);
    for (const view of ['chat', 'module-evidence', 'diagnostics', 'home']) {
      await page.getByTestId(`nav-${view}`).click();
      await expect(page.getByTestId(`view-${view}`)).toBeVisible();
      expect(await noOverflow(), view).toBeLessThanOrEqual(0);
    }
    await expect(page.getByTestId('join-qr').locator('svg')).toBeVisible();
    // on a phone the navigation is a bar along the bottom of the screen
    const bar = (await page.getByTestId('nav').boundingBox())!;
    expect(bar.y + bar.height).toBeGreaterThanOrEqual(844 - 1);
    expect(bar.width).toBeGreaterThanOrEqual(389);
    mkdirSync(path.join(ROOT, 'docs'), { recursive: true });
    // the README's picture is refreshed on request only, so a test run leaves the tree clean
    const shot = process.env.UPDATE_SCREENSHOT
      ? path.join(ROOT, 'docs/screenshot-app.png')
      : test.info().outputPath('screenshot-app.png');
    await page.screenshot({ path: shot });
  });
});
