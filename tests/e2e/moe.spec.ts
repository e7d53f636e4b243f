/**
 * M27 in two browsers through the relay: B registers as a human expert in the Experts view; A asks a
 * question tagged with B's topic in the Ask view, picks B; B accepts the offer from the "questions for
 * you" inbox; they exchange a message; A gives a thumbs up and the scorer status shows the sample.
 */
import { chromium, expect, test, type Browser, type Page } from '@playwright/test';

const ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

async function ready(page: Page): Promise<void> {
  await page.waitForFunction(() => window.hearthnetReady === true || !!window.hearthnetBootError, null, {
    timeout: 30_000,
  });
  expect(await page.evaluate(() => window.hearthnetBootError ?? null)).toBeNull();
}

test('ask a neighbour: register, route, offer, accept, message, thumbs up', async () => {
  test.setTimeout(240_000);
  const baseURL = test.info().project.use.baseURL!;
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
    await pb.evaluate((c) => window.hearthnet!.setConfig({ community: { community_id: c } }), community);
    await pb.reload();
    await ready(pb);
    const bid = await pb.evaluate(() => window.hearthnet!.id);
    await expect
      .poll(
        () =>
          pa.evaluate((o) => window.hearthnet!.peers().some((x) => x.id === o && x.state === 'open'), bid),
        { timeout: 45_000 },
      )
      .toBe(true);
    for (const p of [pa, pb]) await p.evaluate(() => window.hearthnet!.enable('moe'));
    for (const p of [pa, pb]) await p.getByTestId('nav-module-moe').click(); // Ask/Experts view

    // B registers as an expert for sankt-martins, every day, all day (00:00–00:00 crosses midnight)
    await pb.getByTestId('moe-tab-experts').click();
    await pb.getByTestId('moe-topics').fill('Sankt Martins');
    await pb.getByTestId('moe-days').fill('1,2,3,4,5,6,7');
    await pb.getByTestId('moe-start').fill('00:00');
    await pb.getByTestId('moe-end').fill('00:00');
    await pb.getByTestId('moe-consent').check();
    await pb.getByTestId('moe-register').click();
    await expect(pb.getByTestId('moe-message')).toContainText('registered as');
    await expect
      .poll(
        () =>
          pa.evaluate(async () => {
            const n = window.hearthnet!;
            await n.events.sync().catch(() => undefined);
            return (await n.call('experimental.moe.expert.list', { kind: 'human' })).experts.length;
          }),
        { timeout: 30_000 },
      )
      .toBe(1);

    // A asks, sees B as a candidate, picks B
    await pa.getByTestId('moe-question').fill('When does the lantern procession start?');
    await pa.getByTestId('moe-tags').fill('sankt_martins');
    await pa.getByTestId('moe-include-humans').check();
    await pa.getByTestId('moe-ask').click();
    await expect(pa.getByTestId('moe-candidate')).toHaveCount(1);
    await pa.getByTestId('moe-candidate').first().click();
    await expect(pa.getByTestId('moe-handoff')).toContainText('pending');

    // B accepts from the inbox
    await expect(pb.getByTestId('moe-accept')).toHaveCount(1, { timeout: 30_000 });
    await pb.getByTestId('moe-accept').click();
    await expect
      .poll(
        async () => {
          await pa.getByTestId('moe-refresh').click();
          return pa.getByTestId('moe-handoff').textContent();
        },
        { timeout: 30_000 },
      )
      .toContain('accepted');

    // they exchange a message (A's line appears in A's chat; B receives it on its node)
    await pa.getByTestId('moe-line').fill('Thanks for helping!');
    await pa.getByTestId('moe-send').click();
    await expect(pa.getByTestId('moe-chat')).toContainText('Thanks for helping!');

    // thumbs up records feedback, shown in the scorer status
    await pa.getByTestId('moe-up').first().click();
    await expect(pa.getByTestId('moe-scorer')).toContainText('1 labelled samples');
  } finally {
    for (const b of browsers) await b.close();
  }
});
