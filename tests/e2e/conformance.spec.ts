/**
 * X09 against real browsers: `npm run conformance -- --target browsers:3` launches three separate
 * Debian Chromium instances on the built PWA (its own relay, its own port), meshes them and runs
 * every case, module sections included. Nothing fails; every case the suite lists is in the report
 * with its section, duration and outcome; skipped cases carry their reason.
 */
import { expect, test, type Page } from '@playwright/test';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function runner(args: string[], timeoutMs: number): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'conformance/runner.ts', ...args],
      { cwd: ROOT, timeout: timeoutMs, maxBuffer: 16 << 20 },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) || 1 : 0, out: stdout + stderr }),
    );
  });
}

test.describe.configure({ mode: 'serial' });

/** the browsers:3 report, for the app view test */
let browserReport: any = null;

test('the conformance suite passes on browsers:3', async () => {
  // every module section runs too (the runner switches each module on through the config op)
  test.setTimeout(330_000);
  const out = mkdtempSync(path.join(tmpdir(), 'hearthnet-conf-'));
  try {
    const listed = (await runner(['--list'], 60_000)).out
      .split('\n')
      .filter((l) => l.includes('\t'))
      .map((l) => {
        const [section, id] = l.split('\t');
        return { section, id };
      });
    expect(listed.length).toBeGreaterThan(40);

    const t0 = Date.now();
    const run = await runner(['--target', 'browsers:3', '--out', out], 300_000);
    test
      .info()
      .annotations.push({ type: 'runtime', description: `${((Date.now() - t0) / 1000).toFixed(1)} s` });
    expect(run.code, run.out).toBe(0);

    const report = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8'));
    browserReport = report;
    expect(report.target).toMatchObject({ kind: 'browsers', peers: 3, browser: { name: 'chromium' } });
    expect(report.totals.failed, run.out).toBe(0);
    // every REQUIRED section ran and passed (a skipped or partial required section is not success)
    const required = Object.values(report.sections as Record<string, any>).filter((s) => s.required);
    expect(required.length).toBeGreaterThanOrEqual(5);
    for (const s of required) expect(s.status, `${s.name} (required)`).toBe('pass');
    expect(report.required_unmet).toEqual([]);
    // every module section ran in the browsers (not skipped as module-off) and failed nothing
    for (const name of [
      'experimental/civdef',
      'experimental/distributed_inference',
      'experimental/evidence',
      'experimental/fedlearn',
      'experimental/lora',
      'experimental/moe',
    ]) {
      const s = report.sections[name];
      expect(s, name).toBeTruthy();
      expect(s.failed, name).toBe(0);
      expect(s.passed, `${name} ran (${s.skipped_reason ?? ''})`).toBeGreaterThan(0);
    }
    // X08-22 (the SUT's own single-use session token) runs in the browsers, and every vector family
    // (x08 frames and tokens included) ran through the page
    const x08 = report.sections['experimental/tensor_transport'];
    expect(x08.cases.find((c: any) => c.id === 'X08-22').status).toBe('pass');
    expect(report.wire_vectors.not_run).toEqual([]);
    expect(report.wire_vectors_verified).toBe(true);
    // the ecosystem-shaped reports sit beside our own
    const wpt = JSON.parse(readFileSync(path.join(out, 'wptreport.json'), 'utf8'));
    expect(wpt.results).toHaveLength(listed.length);
    for (const r of wpt.results) expect(['PASS', 'FAIL', 'SKIP']).toContain(r.status);
    expect(report.totals.total).toBe(listed.length);
    expect(report.totals.passed).toBeGreaterThan(0);
    expect(report.signed).toBe(true);
    const cases = Object.values(report.sections as Record<string, { cases: any[] }>).flatMap((s) => s.cases);
    for (const want of listed) {
      const c = cases.find((x) => x.id === want.id);
      expect(c, `case ${want.id} in the report`).toBeTruthy();
      expect(c.section).toBe(want.section);
      expect(typeof c.duration_ms).toBe('number');
      expect(['pass', 'fail', 'skipped']).toContain(c.status);
      if (c.status === 'skipped') expect(c.reason, `${c.id} skip reason`).toBeTruthy();
    }
    // the HTML shows each case with its section, duration and outcome
    const html = readFileSync(path.join(out, 'report.html'), 'utf8');
    for (const c of cases) {
      const row = new RegExp(
        `<tr><td>${c.id}</td><td>${c.section.replace('/', '\\/')}</td>.*?<td class="${c.status}">${c.status}.*?</td><td>[\\d.]+ ms</td>`,
      );
      expect(html, `${c.id} row`).toMatch(row);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

async function ready(page: Page): Promise<void> {
  await page.waitForFunction(() => window.hearthnetReady === true || !!window.hearthnetBootError, null, {
    timeout: 20_000,
  });
  expect(await page.evaluate(() => window.hearthnetBootError ?? null)).toBeNull();
}

test('the app shows the latest conformance report with a bar per section and the HTML', async ({ page }) => {
  // one bar per section (13 now) and the HTML frame: more than the default 60 s on a loaded machine
  test.setTimeout(120_000);
  expect(browserReport, 'the browsers:3 run left a report').toBeTruthy();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto('/');
  await ready(page);
  await page.getByTestId('nav-diagnostics').click();
  await expect(page.getByTestId('conformance-empty')).toBeVisible();
  // "run": the PWA has no in-page runner, and says so
  await page.getByTestId('conformance-run').click();
  await expect(page.getByTestId('conformance-panel').getByTestId('error')).toHaveAttribute(
    'data-code',
    'protocol_suite_not_installed',
  );
  await expect(page.getByTestId('conformance-no-runner')).toBeVisible();
  // this node signs and stores the same results as its own report (what the runner does on peer 0)
  const stored = await page.evaluate(async (rep) => {
    const n = window.hearthnet!;
    const mine = {
      ...rep,
      implementation: await n.call('protocol.self.describe', {}),
      node_id: n.id,
      signature: null,
      signed: false,
    };
    return n.call('protocol.conformance.report', { action: 'submit', report: mine });
  }, browserReport);
  await expect(page.getByTestId('conformance-overall')).toHaveText(browserReport.overall);
  await expect(page.getByTestId('conformance-totals')).toContainText(
    `${browserReport.totals.passed} passed, ${browserReport.totals.failed} failed, ${browserReport.totals.skipped} skipped of ${browserReport.totals.total}`,
  );
  await expect(page.getByTestId('conformance-cid')).toHaveText(stored.report_cid);
  const names = Object.keys(browserReport.sections);
  await expect(page.getByTestId('conformance-section')).toHaveCount(names.length);
  for (const name of names) {
    const s = browserReport.sections[name];
    const row = page.locator(`[data-testid=conformance-section][data-section="${name}"]`);
    await expect(row).toContainText(`${s.passed}/${s.failed}/${s.skipped}`);
    // the browser normalises the inline style (6 significant digits): compare the number, not the text
    const want = (100 * s.passed) / Math.max(1, s.total);
    await expect
      .poll(async () => {
        const m = /width: ([\d.]+)%/.exec((await row.locator('.conf-bar .p').getAttribute('style')) ?? '');
        return m ? Math.abs(Number(m[1]) - want) < 1e-3 : false;
      }, name)
      .toBe(true);
  }
  await expect(page.getByTestId('conformance-html-link')).toHaveAttribute('href', /^blob:/);
  await page.getByTestId('conformance-html-toggle').click();
  const frame = page.frameLocator('[data-testid=conformance-html]');
  await expect(frame.locator('h1')).toHaveText('HearthNet conformance report');
  await expect(frame.locator('body')).toContainText(stored.report_cid);
  expect(errors).toEqual([]);
});
