/**
 * README screenshots: one phone-sized picture per Phase 3 module view (docs/screenshot-<module>.png).
 * Needs a built app (`npx vite build`) and Debian's Chromium. Usage: `npx tsx tools/screenshots.ts`.
 * The Training view is shown after a six-step practice run, so its loss curve has points.
 */
import { chromium } from '@playwright/test';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../conformance/harness/targets/browser.js';
import { createRelay } from '../relay/server.js';

const MODULES = ['distributed_llm', 'moe', 'fedlearn', 'lora', 'evidence', 'civdef'];

const relay = await createRelay({
  host: '127.0.0.1',
  port: 0,
  staticDir: 'app/dist',
  modelsDir: 'models',
  log: () => {},
});
const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS });
try {
  const page = await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage();
  await page.goto(relay.url);
  await page.waitForFunction(() => window.hearthnetReady === true || !!window.hearthnetBootError);
  for (const m of MODULES) {
    await page.evaluate((name) => window.hearthnet!.enable(name), m);
    await page.getByTestId(`nav-module-${m}`).click();
    await page.waitForTimeout(1500);
    if (m === 'fedlearn') {
      await page
        .getByTestId('fedlearn-text')
        .fill('the kettle sings at dawn and the hearth keeps us warm. '.repeat(8));
      await page.getByTestId('fedlearn-steps').fill('6');
      await page.getByTestId('fedlearn-start').click();
      await page.getByTestId('fedlearn-consent-yes').click();
      await page.getByTestId('fedlearn-curve').waitFor({ timeout: 60_000 });
      await page.getByTestId('fedlearn-status').filter({ hasText: 'Done' }).waitFor({ timeout: 60_000 });
    }
    await page.screenshot({ path: `docs/screenshot-${m}.png` });
    console.log(`docs/screenshot-${m}.png`);
  }
} finally {
  await browser.close();
  await relay.close();
}
