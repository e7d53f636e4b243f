/**
 * Join by plain URL: on a fresh relay three separate Chromium browsers open the relay's plain URL
 * and form one community (the first founds it, the relay makes it its home, the other two join it)
 * with direct WebRTC links; a fourth opens a join link of another community and does not mix.
 */
import { chromium, expect, test, type Browser, type Page } from '@playwright/test';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyPair } from '../../engine/identity/identity.js';
import { CHROMIUM_ARGS } from '../../playwright.config.js';
import { createHome } from '../../relay/home.js';
import { createRelay, type Relay } from '../../relay/server.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface Peer {
  browser: Browser;
  page: Page;
  id: string;
  community: string;
}

async function open(url: string): Promise<Peer> {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
  const page = await (await browser.newContext()).newPage();
  await page.goto(url);
  await page.waitForFunction(() => window.hearthnetReady === true || !!window.hearthnetBootError, null, {
    timeout: 30_000,
  });
  expect(await page.evaluate(() => window.hearthnetBootError ?? null)).toBeNull();
  const { id, community } = await page.evaluate(() => ({
    id: window.hearthnet!.id as string,
    community: window.hearthnet!.communityId as string,
  }));
  return { browser, page, id, community };
}

const openLinks = (p: Peer) =>
  p.page.evaluate(() =>
    Object.fromEntries(
      window
        .hearthnet!.peers()
        .filter((x) => x.state === 'open')
        .map((x) => [x.id as string, x.link as string]),
    ),
  );

test.describe('join by plain URL', () => {
  let relay: Relay;
  const peers: Peer[] = [];
  test.beforeAll(async () => {
    relay = await createRelay({
      port: 0,
      staticDir: path.join(ROOT, 'app/dist'),
      home: createHome(),
      log: () => undefined,
    });
  });
  test.afterAll(async () => {
    for (const p of peers) await p.browser.close().catch((e) => console.warn('browser close', e));
    await relay?.close();
  });

  test('three browsers on the plain URL form one community with direct links; a join link of another community stays apart', async () => {
    test.setTimeout(180_000);
    const A = await open(relay.url);
    peers.push(A);
    expect(A.community).toBe(A.id); // the first node founds a community…
    await expect
      .poll(async () => (await (await fetch(new URL('/config.json', relay.url))).json()).home_community, {
        timeout: 20_000,
      })
      .toBe(A.id); // …and the fresh relay makes it its home
    const [B, C] = await Promise.all([open(relay.url), open(relay.url)]);
    peers.push(B, C);
    expect([B.community, C.community]).toEqual([A.id, A.id]);
    for (const [p, others] of [
      [A, [B, C]],
      [B, [A, C]],
      [C, [A, B]],
    ] as const)
      await expect
        .poll(() => openLinks(p), { timeout: 45_000, intervals: [500, 1000] })
        .toEqual(Object.fromEntries(others.map((o) => [o.id, 'direct'])));

    // a fourth browser follows a join link of another community
    const other = generateKeyPair().nodeId;
    const D = await open(`${relay.url}#join=${other}`);
    peers.push(D);
    await expect(D.page.getByTestId('join-banner')).toBeVisible();
    await Promise.all([
      D.page.waitForEvent('load', { timeout: 20_000 }),
      D.page.getByRole('button', { name: 'Join' }).click(),
    ]);
    await D.page.waitForFunction(() => window.hearthnetReady === true, null, { timeout: 30_000 });
    expect(await D.page.evaluate(() => window.hearthnet!.communityId)).toBe(other);
    await expect(D.page.getByTestId('relay-state')).toContainText('joined');
    await D.page.waitForTimeout(3000);
    expect(await openLinks(D)).toEqual({});
    for (const p of [A, B, C]) expect(Object.keys(await openLinks(p))).not.toContain(D.id);
    // the first three still belong to the home community after a reload (a member stays)
    await B.page.reload();
    await B.page.waitForFunction(() => window.hearthnetReady === true, null, { timeout: 30_000 });
    expect(await B.page.evaluate(() => window.hearthnet!.communityId)).toBe(A.id);
  });
});
