#!/usr/bin/env node
/**
 * `npm test`: unit and integration tests (Vitest, in Node), then end-to-end tests (Playwright,
 * Debian's headless Chromium), then the skipped tests with their reason, then one closing line
 * "N passed, N failed, N skipped".
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
let skipped = 0;
/** `where — why` for every skipped / todo test */
const skips = [];
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
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  for (const f of r.testResults ?? [])
    for (const t of f.assertionResults ?? [])
      if (t.status === 'pending' || t.status === 'skipped' || t.status === 'todo')
        skips.push(
          `vitest ${f.name.replace(process.cwd() + '/', '')} › ${t.fullName ?? t.title} — ${t.status === 'todo' ? 'todo' : 'skipped'}${t.failureMessages?.length ? `: ${t.failureMessages.join(' ')}` : ''}`,
        );
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
    skipped += r.stats?.skipped ?? 0;
    const walk = (suite, file) => {
      for (const spec of suite.specs ?? [])
        for (const t of spec.tests ?? [])
          if (t.status === 'skipped') {
            const why = [...(t.annotations ?? []), ...(t.results ?? []).flatMap((x) => x.annotations ?? [])]
              .filter((a) => a.type === 'skip' || a.type === 'fixme')
              .map((a) => a.description)
              .filter(Boolean);
            skips.push(
              `playwright ${file} › ${spec.title} — skipped${why.length ? `: ${why.join('; ')}` : ''}`,
            );
          }
      for (const s of suite.suites ?? []) walk(s, file);
    };
    for (const s of r.suites ?? []) walk(s, s.file ?? s.title);
  } else failed++;
}

if (skips.length) {
  console.log(`\nskipped (${skips.length}):`);
  for (const l of skips) console.log(`  ${l}`);
}
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(status || (failed ? 1 : 0));
