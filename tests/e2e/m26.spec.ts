/**
 * M26 across browsers through a real relay (Debian Chromium, one `chromium.launch` per peer): the asking tab Q
 * founds the community and trusts the three hosts with the view's Trust button; A serves layers 0–1 and B 2–3 from
 * the Distributed LLM view, and Q's answer equals the whole demo model's greedy answer (ORT-web WASM in Node, the
 * B9 oracle). C then presses "Serve automatically": the model is covered, so C proposes a replica (with no memory
 * budget, of every layer: 0–3). Q asks again and the browser of the host running the first hop is killed
 * mid-answer: the answer continues with one failover shown, and the streamed token ids equal the oracle's — no
 * token repeated or lost. fp32 wire (config) so the comparison is exact.
 */
import { chromium, expect, test, type Browser, type Page } from '@playwright/test';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { OnnxLocalLlm } from '../../engine/llm/local.js';
import { dirSource } from '../../tools/model/node-source.js';
import { createRelay } from '../../relay/server.js';
import { PEER_ARGS } from './peer-browser.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ARGS = PEER_ARGS;
const PROMPT = 'Tell me about the hearth.';
const MAX_TOKENS = 96;
const P = 'experimental.distributed_llm.';

async function ready(page: Page): Promise<void> {
  await page.waitForFunction(() => window.hearthnetReady === true || !!window.hearthnetBootError, null, {
    timeout: 30_000,
  });
  expect(await page.evaluate(() => window.hearthnetBootError ?? null)).toBeNull();
}

/** Q's log knows `n` live shard ads. */
async function knownAds(q: Page, n: number): Promise<void> {
  await expect
    .poll(
      () =>
        q.evaluate(async (cap) => {
          const node = window.hearthnet!;
          await node.events.sync().catch(() => undefined);
          return (await node.call(cap, { scope: 'known' })).shards.length as number;
        }, `${P}shard.list`),
      { timeout: 90_000 },
    )
    .toBeGreaterThanOrEqual(n);
}

async function ask(q: Page): Promise<void> {
  await q.getByTestId('dl-prompt').fill(PROMPT);
  await q.getByTestId('dl-max').fill(String(MAX_TOKENS));
  await q.getByTestId('dl-ask').click();
}

test('2 hosts give the local answer; 3 hosts with a replica: a host browser killed mid-answer → same answer, 1 failover', async () => {
  // ~70 s on an idle machine; generous for a loaded one (3 browsers + ORT in Node)
  test.setTimeout(540_000);
  const { ensureDemoModel } = (await import(
    pathToFileURL(path.join(ROOT, 'scripts/ensure-demo-model.mjs')).href
  )) as { ensureDemoModel(o: { root: string }): Promise<{ dir: string }> };
  const { dir } = await ensureDemoModel({ root: ROOT });
  const whole = await OnnxLocalLlm.loadWhole(dirSource(dir), { executionProviders: ['wasm'] });
  // the demo model has random weights: in chat format it ends at once, so the view asks with the raw prompt
  const reference: number[] = [];
  for await (const t of whole.generate(PROMPT, { max_tokens: MAX_TOKENS, temperature: 0 }))
    reference.push(t.token_id);
  await whole.close();
  expect(reference.length).toBeGreaterThan(16);
  const idsOf = async (q: Page) =>
    ((await q.getByTestId('dl-output').getAttribute('data-token-ids')) ?? '').split(',').map(Number);

  // a relay of its own, so Q founds the community (the anchor who trusts the hosts)
  const relay = await createRelay({
    host: '127.0.0.1',
    port: 0,
    staticDir: path.join(ROOT, 'app/dist'),
    modelsDir: path.join(ROOT, 'models'),
    log: () => {},
  });
  const browsers = new Map<string, Browser>();
  try {
    const launch = async (name: string) => {
      const b = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ARGS });
      browsers.set(name, b);
      const page = await (await b.newContext()).newPage();
      page.on('pageerror', (e) => console.error(name, 'pageerror', String(e)));
      page.on('console', (m) => {
        if (m.type() !== 'warning' && m.type() !== 'error') return;
        void Promise.all(m.args().map((a) => a.jsonValue().catch(() => '?'))).then((v) =>
          console.error(name, m.type(), JSON.stringify(v)),
        );
      });
      await page.goto(relay.url);
      await ready(page);
      return page;
    };
    const q = await launch('q');
    const community = await q.evaluate(() => window.hearthnet!.communityId);
    const hosts: Record<string, Page> = {};
    await Promise.all(
      ['a', 'b', 'c'].map(async (name) => {
        const p = await launch(name);
        // on a loaded machine WebRTC may still be negotiating when Q asks: the relayed link (end-to-end encrypted)
        // may carry the tensor sessions too (the planner prefers direct links when both exist)
        await p.evaluate(
          (c) =>
            window.hearthnet!.setConfig({
              community: { community_id: c },
              tensor_transport: { allow_relayed: true },
            }),
          community,
        );
        await p.reload();
        await ready(p);
        hosts[name] = p;
      }),
    );
    const ids: Record<string, string> = {};
    for (const [name, p] of Object.entries(hosts)) {
      ids[name] = await p.evaluate(() => window.hearthnet!.id);
      await expect
        .poll(
          () =>
            q.evaluate(
              (o) => window.hearthnet!.peers().some((x) => x.id === o && x.state === 'open'),
              ids[name]!,
            ),
          { timeout: 90_000 },
        )
        .toBe(true);
    }
    await q.evaluate(() =>
      window.hearthnet!.setConfig({ distributed_llm: { default_dtype: 'fp32' } }).then(() => undefined),
    );
    for (const p of [q, ...Object.values(hosts)]) {
      await p.evaluate(() => window.hearthnet!.enable('distributed_llm'));
      await p.getByTestId('nav-module-distributed_llm').click();
      await expect(p.getByTestId('dl-warning')).toBeVisible();
    }

    // Q (the anchor) trusts the hosts with the view's Trust button (B7: hosts ≥ trusted; open community)
    for (let left = 3; left > 0; left--) {
      await expect(q.getByTestId('dl-trust')).toHaveCount(left, { timeout: 30_000 });
      await q.getByTestId('dl-trust').first().click();
      await expect(q.getByTestId('dl-trust')).toHaveCount(left - 1, { timeout: 30_000 });
    }
    for (const id of Object.values(ids))
      expect(await q.evaluate((x) => window.hearthnet!.levelOf(x as never), id)).toBe('trusted');

    const serve = async (name: string, lo: number, hi: number) => {
      const p = hosts[name]!;
      if (!(await p.getByTestId('dl-consent').isChecked())) await p.getByTestId('dl-consent').check();
      await p.getByTestId('dl-lo').fill(String(lo));
      await p.getByTestId('dl-hi').fill(String(hi));
      await p.getByTestId('dl-serve-range').click();
      await expect(p.getByTestId('dl-message')).toContainText(`serving layers ${lo}–${hi}`, {
        timeout: 60_000,
      });
    };
    // A serves 0–1, B serves 2–3 (opt-in after the privacy warning)
    await serve('a', 0, 1);
    await serve('b', 2, 3);
    await knownAds(q, 2);

    // 2 hosts + asker: the answer equals the whole model's
    await ask(q);
    await expect(q.getByTestId('dl-done')).toContainText('failovers 0', { timeout: 120_000 });
    await expect(q.getByTestId('dl-hop')).toHaveCount(2);
    expect(await idsOf(q)).toEqual(reference);

    // C serves automatically once it knows A's and B's ads: no gap left, so a replica (no budget: all layers)
    await knownAds(hosts.c!, 2);
    await hosts.c!.getByTestId('dl-consent').check();
    await hosts.c!.getByTestId('dl-serve-auto').click();
    await expect(hosts.c!.getByTestId('dl-message')).toContainText('serving layers 0–3', { timeout: 60_000 });
    await knownAds(q, 3);
    await ask(q);
    await q.waitForFunction(
      () => !!document.querySelector('[data-testid="dl-output"]')?.getAttribute('data-token-ids'),
      null,
      { timeout: 60_000, polling: 'raf' },
    );
    const first = await q.evaluate(async (cap) => {
      const st = await window.hearthnet!.call(cap, {});
      const run = (st.pipelines as { state: string; shards: Record<string, unknown> }[]).find(
        (r) => r.state === 'decoding' || r.state === 'prefilling',
      );
      return run ? Object.keys(run.shards)[0]!.split('@')[1]! : null;
    }, `${P}pipeline.status`);
    expect(first).not.toBeNull();
    const victim = Object.keys(ids).find((n) => ids[n] === first)!;
    await browsers.get(victim)!.close();
    browsers.delete(victim);
    await expect(q.getByTestId('dl-done')).toContainText('failovers 1', { timeout: 120_000 });
    await expect(q.getByTestId('dl-failover')).toHaveCount(1);
    expect(await idsOf(q)).toEqual(reference);
  } finally {
    for (const b of browsers.values()) await b.close();
    await relay.close();
  }
});
