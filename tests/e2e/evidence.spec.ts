/**
 * M30 between browsers through the relay (Debian Chromium, one `chromium.launch` per peer), with the
 * issue's roles: A asserts a claim in the Evidence view; A (the founder, anchor) promotes B to trusted
 * there, because a plain member's attestation does not count; B reads the claim and attests in its view;
 * A sees `attested`. A third browser joining later receives the whole graph; the data survives a reload
 * of all three.
 */
import { chromium, expect, test, type Browser, type Page } from '@playwright/test';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRelay } from '../../relay/server.js';
import { PEER_ARGS } from './peer-browser.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const ARGS = PEER_ARGS;
const P = 'experimental.evidence.';

async function ready(page: Page): Promise<void> {
  await page.waitForFunction(() => window.hearthnetReady === true || !!window.hearthnetBootError, null, {
    timeout: 30_000,
  });
  expect(await page.evaluate(() => window.hearthnetBootError ?? null)).toBeNull();
}
async function joinCommunity(page: Page, community: string) {
  await page.evaluate((c) => window.hearthnet!.setConfig({ community: { community_id: c } }), community);
  await page.reload();
  await ready(page);
}
async function linked(a: Page, b: Page) {
  const bid = await b.evaluate(() => window.hearthnet!.id);
  await expect
    .poll(
      () => a.evaluate((o) => window.hearthnet!.peers().some((x) => x.id === o && x.state === 'open'), bid),
      { timeout: 45_000 },
    )
    .toBe(true);
}
async function openEvidence(page: Page) {
  await page.getByTestId('nav-module-evidence').click();
  await page.getByTestId('ev-subject').waitFor({ timeout: 30_000 });
}
/** Sync the page's log with its peers, then read a claim's level (null while unknown). */
async function levelOn(page: Page, claimId: string): Promise<string | null> {
  return page.evaluate(
    async ([cap, id]) => {
      const n = window.hearthnet!;
      await n.events.sync().catch(() => undefined);
      try {
        return (await n.call(cap!, { claim_id: id })).evidence_level as string;
      } catch {
        return null;
      }
    },
    [`${P}claim.get`, claimId],
  );
}

test('A asserts, the anchor promotes B, B attests, A sees attested; a late third gets the graph; all survive reload', async () => {
  test.setTimeout(240_000);
  // a relay of its own: on the suite's shared relay an earlier test's browser is already the home
  // community's founder, and A must found the community here (the anchor whose attestation counts)
  const relay = await createRelay({
    host: '127.0.0.1',
    port: 0,
    staticDir: path.join(ROOT, 'app/dist'),
    log: () => {},
  });
  const baseURL = relay.url;
  const browsers: Browser[] = [];
  try {
    const launch = async () => {
      const b = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ARGS });
      browsers.push(b);
      return (await b.newContext()).newPage();
    };
    const [pa, pb] = [await launch(), await launch()];
    await pa.goto(baseURL);
    await pb.goto(baseURL);
    await ready(pa);
    await ready(pb);
    const community = await pa.evaluate(() => window.hearthnet!.communityId);
    await joinCommunity(pb, community);
    await linked(pa, pb);
    for (const p of [pa, pb]) await p.evaluate(() => window.hearthnet!.enable('evidence'));
    const bid = await pb.evaluate(() => window.hearthnet!.id);

    // A asserts in the Evidence view
    await pa.reload();
    await ready(pa);
    await openEvidence(pa);
    await pa.getByTestId('ev-subject').fill('Well 3');
    await pa.getByTestId('ev-predicate').fill('water_quality');
    await pa.getByTestId('ev-object').fill('safe to drink');
    await pa.getByTestId('ev-assert').click();
    await expect(pa.getByTestId('ev-row')).toHaveCount(1);
    await expect(pa.getByTestId('ev-row')).toHaveAttribute('data-level', 'unverified');
    const claimId = await pa.evaluate(
      async (cap) =>
        (await window.hearthnet!.call(cap, { subject: 'Well 3' })).claims[0].record.claim_id as string,
      `${P}claim.query`,
    );
    await linked(pa, pb);
    // in an open community B is a plain member, whose attestation would not count: A (the anchor)
    // promotes B to trusted from the Evidence view's community panel
    await expect(pa.getByTestId('ev-my-level')).toHaveText('anchor');
    const memberB = pa.locator(`[data-testid="ev-member"][data-node="${bid}"]`);
    await expect
      .poll(
        async () => {
          await pa.getByTestId('ev-levels-refresh').click();
          return memberB.getAttribute('data-level');
        },
        { timeout: 30_000 },
      )
      .toBe('member');
    await memberB.getByTestId('ev-promote').click();
    await expect(memberB).toHaveAttribute('data-level', 'trusted');

    // B reads the claim and attests in its Evidence view
    await expect.poll(() => levelOn(pb, claimId), { timeout: 60_000 }).toBe('unverified');
    await expect
      .poll(
        () =>
          pb.evaluate(async (id) => {
            await window.hearthnet!.events.sync().catch(() => undefined);
            return window.hearthnet!.levelOf(id);
          }, bid),
        { timeout: 60_000 },
      )
      .toBe('trusted');
    await pb.reload();
    await ready(pb);
    await openEvidence(pb);
    await pb.getByTestId('ev-search-subject').fill('Well 3');
    await pb.getByTestId('ev-search').click();
    await expect(pb.getByTestId('ev-row')).toHaveCount(1);
    await pb.getByTestId('ev-attest').click();
    await expect(pb.getByTestId('ev-row')).toHaveAttribute('data-level', 'attested');

    // A sees the new level (bus and view)
    await expect.poll(() => levelOn(pa, claimId), { timeout: 60_000 }).toBe('attested');
    await pa.getByTestId('ev-search').click();
    await expect(pa.getByTestId('ev-row')).toHaveAttribute('data-level', 'attested');

    // a third browser joins later and receives the whole graph
    const pc = await launch();
    await pc.goto(baseURL);
    await ready(pc);
    await joinCommunity(pc, community);
    await linked(pc, pa);
    await pc.evaluate(() => window.hearthnet!.enable('evidence'));
    await expect.poll(() => levelOn(pc, claimId), { timeout: 60_000 }).toBe('attested');

    // all three survive a reload
    for (const p of [pa, pb, pc]) {
      await p.reload();
      await ready(p);
    }
    for (const p of [pa, pb, pc])
      await expect.poll(() => levelOn(p, claimId), { timeout: 30_000 }).toBe('attested');
  } finally {
    for (const b of browsers) await b.close();
    await relay.close();
  }
});
