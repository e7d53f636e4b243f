/**
 * `m28.train_tokens_per_s_webgpu`: LoRA training speed of the demo model in the app's training worker
 * (TF.js with @tensorflow/tfjs-backend-webgpu) in headless Chromium (Debian `/usr/bin/chromium`) with
 * WebGPU enabled on SwiftShader's software adapter (a real GPU where the machine has one), through the
 * Training view's practice run (consent clicked): rank 4 on q/v, batch 4, context 32. The second run of
 * 20 steps is measured (the first compiles the shaders); tokens/s = steps/s × 4 × 32, the same protocol
 * as Node's `m28.train_tokens_per_s_wasm` but with the view's batch. When the worker does not get a
 * WebGPU adapter, nothing is reported and the backend it used is printed.
 */
import { chromium, type Browser, type Page } from '@playwright/test';
import { serveBuiltApp, type BuiltApp } from './built-app.js';
import type { BenchFilter } from './run.js';
import { CHROMIUM_ARGS } from '../../playwright.config.js';
import { WEBGPU_ARGS } from '../../tests/e2e/peer-browser.js';

export const names = ['m28.train_tokens_per_s_webgpu'];

const ARGS = [...CHROMIUM_ARGS, ...WEBGPU_ARGS];
const STEPS = 20;
const TEXT =
  'Roses bloom in june. Prune them hard in march. Tomatoes need sun and deep water. ' +
  'The mesh radio hops each packet from node to node. Knead the dough, let it rise, bake it. ';

async function run(page: Page): Promise<{ sps: number; backend: string; oracle: number }> {
  await page.getByTestId('fedlearn-steps').fill(String(STEPS));
  await page.getByTestId('fedlearn-start').click();
  const consent = page.getByTestId('fedlearn-consent-yes');
  if (await consent.isVisible()) await consent.click();
  await page.waitForFunction(
    () =>
      /Done:|error|failed/.test(document.querySelector('[data-testid="fedlearn-status"]')?.textContent ?? ''),
    null,
    { timeout: 600_000 },
  );
  const status = (await page.getByTestId('fedlearn-status').textContent()) ?? '';
  if (!status.startsWith('Done:')) throw new Error(`training did not finish: ${status.slice(0, 80)}`);
  const p = page.getByTestId('fedlearn-progress');
  return {
    sps: Number(await p.getAttribute('data-steps-per-s')),
    backend: (await p.getAttribute('data-backend')) ?? '',
    oracle: Number(await p.getAttribute('data-oracle')),
  };
}

export async function figures(want: BenchFilter): Promise<Record<string, number>> {
  if (!want('m28.train_tokens_per_s_webgpu')) return {};
  let browser: Browser | null = null;
  let app: BuiltApp | null = null;
  try {
    app = await serveBuiltApp();
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ARGS });
    const page = await browser.newPage();
    await page.goto(app.url);
    await page.waitForFunction(() => window.hearthnetReady === true || !!window.hearthnetBootError, null, {
      timeout: 60_000,
    });
    await page.evaluate(() => window.hearthnet!.enable('fedlearn'));
    await page.getByTestId('nav-module-fedlearn').click();
    await page.getByTestId('fedlearn-text').fill(TEXT.repeat(4));
    await run(page); // warm-up: backend start, shader compilation
    const r = await run(page);
    process.stderr.write(
      `bench: m28 browser training: ${r.sps.toFixed(2)} steps/s on ${r.backend}, oracle max |Δ| ${r.oracle.toExponential(2)}\n`,
    );
    if (r.backend !== 'webgpu') {
      process.stderr.write(
        `bench: m28.train_tokens_per_s_webgpu not measured: the worker used ${r.backend}\n`,
      );
      return {};
    }
    return { 'm28.train_tokens_per_s_webgpu': Math.round(r.sps * 4 * 32) };
  } finally {
    await browser?.close();
    await app?.close();
  }
}
