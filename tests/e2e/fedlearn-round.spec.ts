/**
 * M28 acceptance in four headless Chromium browsers through the real relay (WASM backend): A announces
 * a round in the Training view; A, B and C each join it through the consent dialog (checkbox ticked and
 * button clicked, per round) with their own topic corpus, train in the training worker and submit; A
 * (coordinator) merges once all who joined have submitted; the merged adapter's held-out loss on a mixed held-out text is ≤ 0.85 × the base model's
 * (measured in A's training worker). D never trained: it loads the demo model in Chat, answers a
 * prompt, fetches the adapter from A, "try it in chat", and the same prompt (seed 0) gives other text
 * in its chat while an llm.chat call without that chat's session id still gets the base text;
 * "Apply…" (node scope) needs its confirmation dialog; "Remove" brings the base model's answer back.
 */
import { chromium, expect, test, type Browser, type Page } from '@playwright/test';
import { HELD_OUT, corpus } from '../unit/fedlearn-corpora.js';
import { PEER_ARGS } from './peer-browser.js';

const ARGS = PEER_ARGS;

async function ready(page: Page): Promise<void> {
  await page.waitForFunction(() => window.hearthnetReady === true || !!window.hearthnetBootError, null, {
    timeout: 30_000,
  });
  expect(await page.evaluate(() => window.hearthnetBootError ?? null)).toBeNull();
}

async function ask(page: Page, prompt: string): Promise<string> {
  await page.getByTestId('nav-chat').click();
  await page.getByTestId('llm-prompt').fill(prompt);
  await page.getByTestId('llm-send').click();
  await expect(page.getByTestId('llm-summary')).toBeVisible({ timeout: 90_000 });
  return (await page.getByTestId('llm-output').textContent()) ?? '';
}

/** The same prompt through llm.chat with no session_id (what a peer's call is): the panel's settings. */
async function askWithoutSession(page: Page, prompt: string): Promise<string> {
  return page.evaluate(async (content) => {
    const n = window.hearthnet!;
    const { models } = (await n.call('llm.models.list', {})) as { models: { id: string }[] };
    const input = { messages: [{ role: 'user', content }], max_tokens: 64, temperature: 0, seed: 0 };
    let out = '';
    for await (const f of n.stream('llm.chat', { params: { model: models[0]!.id }, input }))
      if (f.event === 'token') out += (f.data as { text: string }).text;
    return out;
  }, prompt);
}

test('federated round in three browsers; merged adapter lowers held-out loss; a fourth applies it and its chat changes', async () => {
  test.setTimeout(360_000); // ~2 min on an idle machine; four browsers on a loaded 2-core one need more
  const baseURL = test.info().project.use.baseURL!;
  const browsers: Browser[] = [];
  try {
    const launch = async () => {
      const b = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ARGS });
      browsers.push(b);
      return (await b.newContext()).newPage();
    };
    const [pa, pb, pc, pd] = await Promise.all([launch(), launch(), launch(), launch()]);
    await pa.goto(baseURL);
    await ready(pa);
    // A founds its own community (the anchor that may announce): on the suite's shared relay an earlier
    // test's browser is already the founder of the home community that the plain URL joins
    await pa.evaluate(() =>
      window.hearthnet!.setConfig({ community: { community_id: window.hearthnet!.id } }),
    );
    await pa.reload();
    await ready(pa);
    const community = await pa.evaluate(() => window.hearthnet!.communityId);
    expect(community).toBe(await pa.evaluate(() => window.hearthnet!.id));
    await Promise.all(
      [pb, pc, pd].map(async (p) => {
        await p.goto(baseURL);
        await ready(p);
        await p.evaluate((c) => window.hearthnet!.setConfig({ community: { community_id: c } }), community);
        await p.reload();
        await ready(p);
      }),
    );
    const others = await Promise.all([pb, pc, pd].map((p) => p.evaluate(() => window.hearthnet!.id)));
    await expect
      .poll(
        () =>
          pa.evaluate(
            (ids) =>
              ids.every((o) => window.hearthnet!.peers().some((x) => x.id === o && x.state === 'open')),
            others,
          ),
        { timeout: 60_000 },
      )
      .toBe(true);
    for (const p of [pa, pb, pc, pd]) await p.evaluate(() => window.hearthnet!.enable('fedlearn'));

    // D (never trains) loads the demo model and answers a prompt with the base weights
    const prompt = 'Say something about embers.'; // the base model answers it with 64 tokens
    const dBase = (async () => {
      await pd.getByTestId('nav-chat').click();
      await pd.getByTestId('llm-backend-pref').selectOption('wasm');
      await pd.getByTestId('llm-load').click();
      await expect(pd.getByTestId('llm-loaded')).toBeVisible({ timeout: 120_000 });
      return ask(pd, prompt);
    })();

    // A announces a round (clip 10 set explicitly, digest §11.2)
    await pa.getByTestId('nav-module-fedlearn').click();
    await pa.getByTestId('fedlearn-new-topic').fill('community-notes');
    await pa.getByTestId('fedlearn-new-steps').fill('10');
    await pa.getByTestId('fedlearn-new-clip').fill('10');
    await pa.getByTestId('fedlearn-announce').click();
    await expect(pa.getByTestId('fedlearn-round-msg')).toHaveText('Round announced.', { timeout: 60_000 });

    // A, B, C: own topic text, consent dialog clicked (declining once on B joins nothing), train, submit
    const topics: [Page, string][] = [
      [pa, 'gardening'],
      [pb, 'radio'],
      [pc, 'kitchen'],
    ];
    for (const [p, topic] of topics) {
      if (p !== pa) await p.getByTestId('nav-module-fedlearn').click();
      await p.getByTestId('fedlearn-text').fill(corpus(topic).join('\n'));
      await expect(p.getByTestId('fedlearn-join')).toBeVisible({ timeout: 60_000 });
    }
    await pb.getByTestId('fedlearn-join').click();
    await pb.getByTestId('fedlearn-join-no').click();
    await expect(pb.getByTestId('fedlearn-round-msg')).toContainText('declined');
    for (const [p] of topics) {
      await p.getByTestId('fedlearn-join').click();
      await expect(p.getByTestId('fedlearn-join-consent')).toBeVisible();
      await expect(p.getByTestId('fedlearn-join-yes')).toBeDisabled(); // the checkbox starts unticked
      await p.getByTestId('fedlearn-join-agree').check();
      await p.getByTestId('fedlearn-join-yes').click();
    }
    for (const [p] of topics)
      await expect(p.getByTestId('fedlearn-round-msg')).toContainText('Submitted', { timeout: 120_000 });
    await expect(pb.getByTestId('fedlearn-round-counts')).toContainText('3 submitted', { timeout: 30_000 });

    // everyone who joined has submitted: A (the coordinator) merges at once (FedAvg); the merged
    // adapter beats the base model on the mixed held-out text
    await expect(pa.getByTestId('fedlearn-round-state')).toHaveText('COMPLETED', { timeout: 60_000 });
    await pa.getByTestId('fedlearn-get-adapter').click();
    await pa.getByTestId('fedlearn-heldout').fill(HELD_OUT.join(' '));
    await pa.getByTestId('fedlearn-compare').click();
    await expect(pa.getByTestId('fedlearn-compare-result')).toBeVisible({ timeout: 60_000 });
    const base = Number(await pa.getByTestId('fedlearn-base-loss').textContent());
    const adapted = Number(await pa.getByTestId('fedlearn-adapter-loss').textContent());
    console.log(
      `m28 e2e: held-out loss base ${base} adapter ${adapted} ratio ${(adapted / base).toFixed(3)}`,
    );
    expect(base).toBeGreaterThan(0);
    expect(adapted).toBeLessThanOrEqual(0.85 * base);

    // D fetches the adapter from A, tries it in its chat: the same prompt now gives other text
    const before = await dBase;
    expect(before.length).toBeGreaterThan(0);
    await pd.getByTestId('nav-module-fedlearn').click();
    await expect(pd.getByTestId('fedlearn-get-adapter')).toBeVisible({ timeout: 60_000 });
    await pd.getByTestId('fedlearn-get-adapter').click();
    await pd.getByTestId('fedlearn-try-chat').click();
    await expect(pd.getByTestId('fedlearn-applied')).toContainText('Applied', { timeout: 90_000 });
    const after = await ask(pd, prompt);
    console.log(
      `m28 e2e: chat before ${JSON.stringify(before.slice(0, 40))} after ${JSON.stringify(after.slice(0, 40))}`,
    );
    expect(after).not.toBe(before);
    // session scope: a call without this chat's session id (a peer's, say) still gets the base answer
    expect((await askWithoutSession(pd, prompt)).trim()).toBe(before.trim());

    // "Apply…" (node scope) asks first; "Remove" gives the base model's answer back
    await pd.getByTestId('nav-module-fedlearn').click();
    await pd.getByTestId('fedlearn-get-adapter').click();
    await pd.getByTestId('fedlearn-apply').click();
    await expect(pd.getByTestId('fedlearn-apply-confirm')).toBeVisible();
    await pd.getByTestId('fedlearn-apply-yes').click();
    await expect(pd.getByTestId('fedlearn-applied')).toContainText('Applied to this node', {
      timeout: 90_000,
    });
    await pd.getByTestId('fedlearn-remove-adapter').click();
    await expect(pd.getByTestId('fedlearn-applied')).toContainText('base model again', { timeout: 90_000 });
    expect(await ask(pd, prompt)).toBe(before);
  } finally {
    for (const b of browsers) await b.close();
  }
});
