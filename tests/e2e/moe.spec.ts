/**
 * M27 in three browsers through the relay. A (the asker) serves the demo model and registers it as a
 * model expert; B registers as a human expert in the Experts view; C ("Carl") registers too.
 * 1. A asks a question tagged with their topic and sees up to three candidates; A picks Carl, C
 *    declines in the UI, and B is offered under the same handoff (attempt 2); B accepts from the
 *    inbox (and as an OS notification through the service worker); they exchange a message; A gives a thumbs up, shown in the scorer status.
 * 2. A asks again and picks B, who does not answer; A's clock jumps 24 h (Playwright clock) → the
 *    handoff times out and A is offered the best model, which answers through `llm.chat`.
 * The 2 h cooldown is set to 0 on A and B so that the second offer to B is allowed (cooldown, daily
 * limit and the rest are covered in tests/unit/moe.test.ts).
 */
import { chromium, expect, test, type Browser, type Page } from '@playwright/test';
import { PEER_ARGS } from './peer-browser.js';

const ARGS = PEER_ARGS;

/** An Etc/GMT zone where the local hour is about 12 now (Etc/GMT-3 is UTC+3). */
function noonZone(): string {
  let off = (12 - new Date().getUTCHours() + 24) % 24;
  if (off > 12) off -= 24;
  return off === 0 ? 'Etc/GMT' : `Etc/GMT${off > 0 ? '-' : '+'}${Math.abs(off)}`;
}

async function ready(page: Page): Promise<void> {
  await page.waitForFunction(() => window.hearthnetReady === true || !!window.hearthnetBootError, null, {
    timeout: 30_000,
  });
  expect(await page.evaluate(() => window.hearthnetBootError ?? null)).toBeNull();
}

test('ask a neighbour: decline chain, accept, message, thumbs up; timeout → the model answers', async () => {
  test.setTimeout(300_000);
  const baseURL = test.info().project.use.baseURL!;
  const browsers: Browser[] = [];
  try {
    const launch = async (clock = false, notified = false) => {
      const b = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ARGS });
      browsers.push(b);
      // B (notified) may show notifications and lives where it is about noon now (no quiet hours, 22:00–06:00)
      const ctx = await b.newContext(notified ? { timezoneId: noonZone() } : {});
      if (notified) await ctx.grantPermissions(['notifications'], { origin: baseURL });
      // A's node reads Date.now from the start: fake timers from page load (time flows normally until fastForward)
      if (clock) await ctx.clock.install();
      return ctx.newPage();
    };
    const pa = await launch(true);
    await pa.goto(baseURL);
    await ready(pa);
    // A serves the demo model (Local chat) before the other browsers add load
    await pa.getByTestId('nav-chat').click();
    await pa.getByTestId('llm-load').click();
    await expect(pa.getByTestId('llm-loaded')).toBeVisible({ timeout: 120_000 });
    const [pb, pc] = [await launch(false, true), await launch()];
    const community = await pa.evaluate(() => window.hearthnet!.communityId);
    for (const p of [pb, pc]) {
      await p.goto(baseURL);
      await ready(p);
      await p.evaluate((c) => window.hearthnet!.setConfig({ community: { community_id: c } }), community);
      await p.reload();
      await ready(p);
    }
    const [bid, cid] = [
      await pb.evaluate(() => window.hearthnet!.id),
      await pc.evaluate(() => window.hearthnet!.id),
    ];
    await expect
      .poll(
        () =>
          pa.evaluate(
            (ids) =>
              ids.every((o) => window.hearthnet!.peers().some((x) => x.id === o && x.state === 'open')),
            [bid, cid],
          ),
        { timeout: 60_000 },
      )
      .toBe(true);
    // B's notifications go through its service worker: wait until it is active
    await pb.evaluate(() => navigator.serviceWorker.ready.then(() => true));
    for (const p of [pa, pb, pc]) await p.evaluate(() => window.hearthnet!.enable('moe'));
    for (const p of [pa, pb])
      await p.evaluate(() =>
        window.hearthnet!.setConfig({ moe: { enabled: true, handoff_cooldown_hours: 0 } }),
      );

    // A registers its model as a model expert
    const modelId = await pa.evaluate(async () => {
      const n = window.hearthnet!;
      const id = (await n.call('llm.models.list', {})).models[0].id as string;
      return (
        await n.call('experimental.moe.expert.register', {
          kind: 'model',
          model_id: id,
          topics: ['sankt-martins'],
        })
      ).expert_id as string;
    });
    for (const p of [pa, pb, pc]) await p.getByTestId('nav-module-moe').click(); // Ask/Experts view

    // B registers in the Experts view (every day, 00:00–00:00 crosses midnight); C as "Carl"
    await pb.getByTestId('moe-tab-experts').click();
    await pb.getByTestId('moe-topics').fill('Sankt Martins');
    await pb.getByTestId('moe-days').fill('1,2,3,4,5,6,7');
    await pb.getByTestId('moe-start').fill('00:00');
    await pb.getByTestId('moe-end').fill('00:00');
    await pb.getByTestId('moe-consent').check();
    await pb.getByTestId('moe-register').click();
    await expect(pb.getByTestId('moe-message')).toContainText('registered as');
    await pc.evaluate(() =>
      window.hearthnet!.call('experimental.moe.expert.register', {
        kind: 'human',
        name: 'Carl',
        topics: ['sankt-martins'],
        availability: { tz: 'UTC', always: true, slots: [] },
        consent_to_route: true,
      }),
    );
    await pc.getByTestId('moe-tab-experts').click();
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
      .toBe(2);

    // 1. A asks and picks Carl; C declines; B gets the offer under the same handoff
    await pa.getByTestId('moe-question').fill('When does the lantern procession start?');
    await pa.getByTestId('moe-tags').fill('sankt_martins');
    await pa.getByTestId('moe-include-humans').check();
    await pa.getByTestId('moe-ask').click();
    await expect(pa.getByTestId('moe-candidate')).toHaveCount(3);
    await pa.getByTestId('moe-candidate').filter({ hasText: 'Carl' }).click();
    await expect(pa.getByTestId('moe-handoff')).toContainText('pending (attempt 1)');
    await expect(pc.getByTestId('moe-decline')).toHaveCount(1, { timeout: 30_000 });
    await pc.getByTestId('moe-decline').click();
    await expect(pb.getByTestId('moe-accept')).toHaveCount(1, { timeout: 30_000 });
    // B's person gets the offer as an OS notification (service worker), with the tags, never the question
    await expect
      .poll(
        () =>
          pb.evaluate(async () => {
            const reg = await navigator.serviceWorker.getRegistration();
            return (await reg!.getNotifications()).map((n) => `${n.tag}|${n.title}|${n.body}`);
          }),
        { timeout: 15_000 },
      )
      .toEqual([
        expect.stringMatching(/^moe-offer-.+\|HearthNet: a question for you\|topics: sankt-martins$/),
      ]);
    await pa.getByTestId('moe-refresh').click();
    await expect(pa.getByTestId('moe-handoff')).toContainText('pending (attempt 2)');
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
    await pa.getByTestId('moe-line').fill('Thanks for helping!');
    await pa.getByTestId('moe-send').click();
    await expect(pa.getByTestId('moe-chat')).toContainText('Thanks for helping!');
    await pa.getByTestId('moe-up').first().click();
    await expect(pa.getByTestId('moe-scorer')).toContainText('1 labelled samples');

    // 2. A asks again and picks B, who does not answer; 24 h later the model answers instead
    await pa.getByTestId('moe-ask').click();
    await pa
      .getByTestId('moe-candidate')
      .filter({ hasText: `human:${bid}`.slice(0, 28) })
      .click();
    await expect(pa.getByTestId('moe-handoff')).toContainText('pending (attempt 1)');
    await pa.clock.fastForward('24:01:00');
    await expect
      .poll(
        async () => {
          await pa.getByTestId('moe-refresh').click();
          return pa.getByTestId('moe-handoff').textContent();
        },
        { timeout: 30_000 },
      )
      .toContain('timed_out');
    await pa.getByTestId('moe-fallback').click();
    await expect(pa.getByTestId('moe-answer')).toHaveAttribute('data-expert', modelId, { timeout: 60_000 });
  } finally {
    for (const b of browsers) await b.close();
  }
});
