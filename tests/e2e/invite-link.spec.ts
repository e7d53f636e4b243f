/**
 * Invite link end to end (issue #18, attack 7): on a relay of its own, a founder's invite-only
 * community; "Invite a person" (identity panel) makes a join link carrying the invitee's room pass;
 * a second Chromium opens that link, joins, and both see each other; a third Chromium that opens the
 * plain room URL (no pass) links to nobody, and the relay's roster for a passless peer of that room
 * names no member.
 */
import { chromium, expect, test, type Browser, type Page } from '@playwright/test';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { generateKeyPair } from '../../engine/identity/identity.js';
import { RelayClient } from '../../engine/net/relay-client.js';
import { createHome } from '../../relay/home.js';
import { createRelay, type Relay } from '../../relay/server.js';
import { PEER_ARGS } from './peer-browser.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface Peer {
  browser: Browser;
  page: Page;
  id: string;
}

const ready = (page: Page) =>
  page.waitForFunction(() => window.hearthnetReady === true || !!window.hearthnetBootError, null, {
    timeout: 30_000,
  });

async function open(url: string, browsers: Browser[]): Promise<Peer> {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: PEER_ARGS,
  });
  browsers.push(browser);
  const page = await (await browser.newContext()).newPage();
  await page.goto(url);
  await ready(page);
  expect(await page.evaluate(() => window.hearthnetBootError ?? null)).toBeNull();
  return { browser, page, id: await page.evaluate(() => window.hearthnet!.id as string) };
}

const openLinks = (p: Peer) =>
  p.page.evaluate(() =>
    window
      .hearthnet!.peers()
      .filter((x) => x.state === 'open')
      .map((x) => x.id as string),
  );

test.describe('invite link', () => {
  let relay: Relay;
  const browsers: Browser[] = [];
  test.beforeAll(async () => {
    relay = await createRelay({
      port: 0,
      staticDir: path.join(ROOT, 'app/dist'),
      home: createHome(),
      log: () => undefined,
    });
  });
  test.afterAll(async () => {
    for (const b of browsers) await b.close().catch((e) => console.warn('browser close', e));
    await relay?.close();
  });

  test('an invitee joins through the link; a passless stranger learns no member', async () => {
    test.setTimeout(120_000);
    // the founder: the first node on a fresh relay founds its community and makes it invite-only in the
    // identity panel (a signed community.policy.updated and the node's config; the page restarts)
    const A = await open(relay.url, browsers);
    expect(await A.page.evaluate(() => window.hearthnet!.communityId)).toBe(A.id);
    await expect(A.page.getByTestId('admission')).toContainText('Anyone');
    await Promise.all([
      A.page.waitForEvent('load', { timeout: 20_000 }),
      A.page.getByTestId('admission-toggle').click(),
    ]);
    await ready(A.page);
    await expect(A.page.getByTestId('admission')).toContainText('Invite only');
    await expect(A.page.getByTestId('relay-state')).toContainText('joined', { timeout: 20_000 });

    // the invitee's browser starts first, on a plain join link of the community (so it does not join
    // the relay's home community by itself): its NodeID is what the founder invites
    const B = await open(`${relay.url}#join=${A.id}`, browsers);
    await expect(B.page.getByTestId('join-banner')).toBeVisible();
    await A.page.getByTestId('invitee-id').fill(B.id);
    await A.page.getByTestId('invite-create').click();
    const link = await A.page.getByTestId('invite-link').getAttribute('href');
    expect(link).toMatch(new RegExp(`#join=${A.id}&pass=`));
    await B.page.goto(link!); // the same page, a new join link: the banner now carries the pass
    await expect(B.page.getByTestId('join-pass')).toBeVisible();
    await Promise.all([
      B.page.waitForEvent('load', { timeout: 20_000 }),
      B.page.getByRole('button', { name: 'Join' }).click(),
    ]);
    await ready(B.page);
    expect(await B.page.evaluate(() => window.hearthnet!.communityId)).toBe(A.id);
    await expect.poll(() => openLinks(A), { timeout: 45_000, intervals: [500, 1000] }).toEqual([B.id]);
    await expect.poll(() => openLinks(B), { timeout: 20_000, intervals: [500, 1000] }).toEqual([A.id]);

    // a stranger opens the plain URL (the room of the relay's home community) without a pass
    const C = await open(relay.url, browsers);
    expect(await C.page.evaluate(() => window.hearthnet!.communityId)).toBe(A.id);
    await expect(C.page.getByTestId('relay-state')).toContainText('joined', { timeout: 20_000 });
    const probe = new RelayClient({
      url: relay.wsUrl,
      keyPair: generateKeyPair(),
      room: A.id as never,
      WebSocket,
    });
    try {
      probe.start();
      await probe.waitReady(10_000);
      const roster = probe.peers().map((p) => p.node_id);
      expect(roster).not.toContain(A.id);
      expect(roster).not.toContain(B.id);
    } finally {
      probe.close();
    }
    await C.page.waitForTimeout(3000);
    expect(await openLinks(C)).toEqual([]);
    for (const p of [A, B]) expect(await openLinks(p)).not.toContain(C.id);
  });
});
