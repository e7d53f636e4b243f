#!/usr/bin/env node
/**
 * `npm start`: build the demo model (if missing) and the PWA, then start the relay that serves
 * them on one port (HOST/PORT honoured) and print the URL to open.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const step = (what, cmd, args) => {
  console.log(`start: ${what}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
if (existsSync('scripts/ensure-demo-model.mjs'))
  step('demo model', process.execPath, ['scripts/ensure-demo-model.mjs']);
if (existsSync('app/index.html')) step('building the app', 'npx', ['vite', 'build', '--logLevel', 'warn']);
if (!existsSync('relay/main.ts')) {
  console.error('start: relay/main.ts is missing');
  process.exit(1);
}
const r = spawnSync('npx', ['tsx', 'relay/main.ts', ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(r.status ?? 0);
