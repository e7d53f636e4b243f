/**
 * End-to-end tests: Debian's headless Chromium (never a downloaded browser) against the built
 * PWA served by the relay, the way `npm start` serves it. The port is picked once by the runner
 * process and handed to the workers through the environment.
 */
import { defineConfig } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';

function freePort(): string {
  return execFileSync(process.execPath, [
    '-e',
    "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})",
  ])
    .toString()
    .trim();
}
process.env.HEARTHNET_E2E_PORT ||= freePort();
const port = Number(process.env.HEARTHNET_E2E_PORT);
const baseURL = `http://127.0.0.1:${port}`;

/** Chromium flags for every test browser; tests that want WebGPU add `--enable-unsafe-webgpu`. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export default defineConfig({
  testDir: 'tests/e2e',
  fullyParallel: true,
  workers: process.env.CI ? 1 : 2,
  retries: process.env.CI ? 1 : 0,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  forbidOnly: !!process.env.CI,
  reporter: process.env.CI ? [['list'], ['html', { open: 'never' }]] : 'list',
  use: {
    baseURL,
    browserName: 'chromium',
    headless: true,
    launchOptions: { executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS },
    serviceWorkers: 'allow',
    trace: 'retain-on-failure',
  },
  webServer: {
    // the demo model (models/demo, served under /models/), build once, then the relay serves app/dist with COOP/COEP, /healthz, /metrics and /ws
    command: `node scripts/ensure-demo-model.mjs && npx vite build --logLevel warn && npx tsx relay/main.ts --host 127.0.0.1 --port ${port} --data ${path.join(os.tmpdir(), `hearthnet-e2e-relay-${process.pid}`)}`,
    url: `${baseURL}/healthz`,
    reuseExistingServer: !process.env.CI && !!process.env.HEARTHNET_E2E_REUSE,
    timeout: 180_000,
    stdout: 'ignore',
    stderr: 'pipe',
  },
});
