/**
 * M26 across browsers through a real relay (Debian Chromium, one `chromium.launch` per peer): the asking tab Q
 * founds the community and trusts the three hosts with the view's Trust button; A serves layers 0–1 and B 2–3 from
 * the Distributed LLM view, and Q's answer equals the whole demo model's greedy answer (ORT-web WASM in Node, the
 * B9 oracle). C then presses "Serve automatically": the model is covered, so C proposes a replica (with no memory
 * budget, of every layer: 0–3). Q asks again and the browser of the host running the first hop is killed
 * mid-answer: the answer continues with one failover shown, and the streamed token ids equal the oracle's — no
 * token repeated or lost. fp32 wire (config) so the comparison is exact.
 */
import { expect, test, type Page } from '@playwright/test';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OnnxLocalLlm } from '../../engine/llm/local.js';
import { dirSource } from '../../tools/model/node-source.js';
import { createRelay } from '../../relay/server.js';
import { P, knownAds, m26Browsers, serveRange, type M26Browsers } from './m26-peers.js';
import { ensureDemoModel } from '../../tools/model/demo-model.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PROMPT = 'Tell me about the hearth.';
const MAX_TOKENS = 96;

async function ask(q: Page): Promise<void> {
  await q.getByTestId('dl-prompt').fill(PROMPT);
  await q.getByTestId('dl-max').fill(String(MAX_TOKENS));
  await q.getByTestId('dl-ask').click();
}

test('2 hosts give the local answer; 3 hosts with a replica: a host browser killed mid-answer → same answer, 1 failover', async () => {
  // ~70 s on an idle machine; generous for a loaded one (3 browsers + ORT in Node)
  test.setTimeout(540_000);
  const { dir } = await ensureDemoModel();
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
  let mesh: M26Browsers | null = null;
  try {
    mesh = await m26Browsers(relay.url, ['a', 'b', 'c'], 'fp32');
    const { q, hosts, ids, browsers } = mesh;
    const serve = (name: string, lo: number, hi: number) => serveRange(hosts[name]!, lo, hi);
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
    await mesh?.close();
    await relay.close();
  }
});
