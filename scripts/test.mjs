#!/usr/bin/env node
/**
 * `npm test`: unit and integration tests (Vitest, in Node), then end-to-end tests (Playwright,
 * Debian's headless Chromium), then one closing line "N passed, N failed".
 * Installs Chromium with apt when it is missing and there are end-to-end tests to run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const run = (cmd, args, env = {}) =>
  spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, ...env } }).status ?? 1;
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const out = mkdtempSync(join(tmpdir(), 'hearthnet-test-'));
let passed = 0;
let failed = 0;
let status = 0;

// 1. unit + integration (Vitest)
const vjson = join(out, 'vitest.json');
status |= run('npx', [
  'vitest',
  'run',
  '--reporter=default',
  '--reporter=json',
  `--outputFile.json=${vjson}`,
]);
if (existsSync(vjson)) {
  const r = JSON.parse(readFileSync(vjson, 'utf8'));
  passed += r.numPassedTests ?? 0;
  // a suite that fails to load has no failed tests of its own: count it as one failure
  failed += r.numFailedTests || r.numFailedTestSuites || 0;
} else failed++;

// 2. end-to-end (Playwright with Debian's Chromium)
const e2e = existsSync('tests/e2e') && readdirSync('tests/e2e').some((f) => f.endsWith('.spec.ts'));
if (e2e) {
  if (!existsSync('/usr/bin/chromium')) {
    console.log('test: installing Debian chromium for the end-to-end tests');
    const sudo = process.getuid && process.getuid() !== 0 && has('sudo') ? ['sudo'] : [];
    const apt = (args) =>
      run(sudo[0] ?? 'apt-get', sudo.length ? ['apt-get', ...args] : args, {
        DEBIAN_FRONTEND: 'noninteractive',
      });
    if (apt(['update', '-qq']) !== 0 || apt(['install', '-y', '-qq', 'chromium']) !== 0) {
      console.error('test: could not install chromium');
      status |= 1;
    }
  }
  const pjson = join(out, 'playwright.json');
  status |= run('npx', ['playwright', 'test', '--reporter=list,json'], {
    PLAYWRIGHT_JSON_OUTPUT_NAME: pjson,
  });
  if (existsSync(pjson)) {
    const r = JSON.parse(readFileSync(pjson, 'utf8'));
    passed += r.stats?.expected ?? 0;
    failed += (r.stats?.unexpected ?? 0) + (r.stats?.flaky ?? 0);
  } else failed++;
}

console.log(`\n${passed} passed, ${failed} failed`);
process.exit(status || (failed ? 1 : 0));
