/**
 * The M26 browser mesh of the e2e spec and the browser bench: an asking tab Q that founds the community (the anchor)
 * and host browsers that join it, link to Q, switch the module on and are trusted by Q with the view's Trust button
 * (B7: hosts ≥ trusted). Each peer is its own `chromium.launch` (Debian Chromium), the app served by `url`.
 */
import { chromium, expect, type Browser, type Page } from '@playwright/test';
import { PEER_ARGS } from './peer-browser.js';

export const P = 'experimental.distributed_llm.';

export async function ready(page: Page): Promise<void> {
  await page.waitForFunction(() => window.hearthnetReady === true || !!window.hearthnetBootError, null, {
    timeout: 30_000,
  });
  expect(await page.evaluate(() => window.hearthnetBootError ?? null)).toBeNull();
}

/** The page's node knows `n` live shard ads. */
export async function knownAds(q: Page, n: number): Promise<void> {
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

/** A host serves layers lo–hi from the Distributed LLM view (opt-in after the privacy warning). */
export async function serveRange(p: Page, lo: number, hi: number): Promise<void> {
  if (!(await p.getByTestId('dl-consent').isChecked())) await p.getByTestId('dl-consent').check();
  await p.getByTestId('dl-lo').fill(String(lo));
  await p.getByTestId('dl-hi').fill(String(hi));
  await p.getByTestId('dl-serve-range').click();
  await expect(p.getByTestId('dl-message')).toContainText(`serving layers ${lo}–${hi}`, { timeout: 60_000 });
}

export interface M26Browsers {
  q: Page;
  hosts: Record<string, Page>;
  /** host name → NodeID */
  ids: Record<string, string>;
  /** every launched browser by name ('q' and the hosts'); a test may close one (a killed host) and delete it */
  browsers: Map<string, Browser>;
  close(): Promise<void>;
}

/**
 * Q plus one browser per host name, all in Q's community, linked to Q, the module on and its view open, every host
 * trusted by Q. `wire` sets Q's default wire dtype.
 */
export async function m26Browsers(
  url: string,
  hostNames: string[],
  wire: 'fp16' | 'fp32',
): Promise<M26Browsers> {
  const browsers = new Map<string, Browser>();
  const close = async () => {
    for (const b of browsers.values()) await b.close();
  };
  try {
    const launch = async (name: string) => {
      const b = await chromium.launch({
        executablePath: '/usr/bin/chromium',
        headless: true,
        args: PEER_ARGS,
      });
      browsers.set(name, b);
      const page = await (await b.newContext()).newPage();
      page.on('pageerror', (e) => console.error(name, 'pageerror', String(e)));
      page.on('console', (m) => {
        if (m.type() !== 'warning' && m.type() !== 'error') return;
        void Promise.all(m.args().map((a) => a.jsonValue().catch(() => '?'))).then((v) =>
          console.error(name, m.type(), JSON.stringify(v)),
        );
      });
      await page.goto(url);
      await ready(page);
      return page;
    };
    const q = await launch('q');
    const community = await q.evaluate(() => window.hearthnet!.communityId);
    const hosts: Record<string, Page> = {};
    await Promise.all(
      hostNames.map(async (name) => {
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
    await q.evaluate(
      (w) => window.hearthnet!.setConfig({ distributed_llm: { default_dtype: w } }).then(() => undefined),
      wire,
    );
    for (const p of [q, ...Object.values(hosts)]) {
      await p.evaluate(() => window.hearthnet!.enable('distributed_llm'));
      await p.getByTestId('nav-module-distributed_llm').click();
      await expect(p.getByTestId('dl-warning')).toBeVisible();
    }
    // Q (the anchor) trusts the hosts with the view's Trust button (B7: hosts ≥ trusted; open community)
    for (let left = hostNames.length; left > 0; left--) {
      await expect(q.getByTestId('dl-trust')).toHaveCount(left, { timeout: 30_000 });
      await q.getByTestId('dl-trust').first().click();
      await expect(q.getByTestId('dl-trust')).toHaveCount(left - 1, { timeout: 30_000 });
    }
    for (const id of Object.values(ids))
      expect(await q.evaluate((x) => window.hearthnet!.levelOf(x as never), id)).toBe('trusted');
    return { q, hosts, ids, browsers, close };
  } catch (e) {
    await close();
    throw e;
  }
}
