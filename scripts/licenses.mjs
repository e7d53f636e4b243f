#!/usr/bin/env node
/**
 * Lists the licence of every runtime dependency (the `dependencies` closure) and fails when one is
 * GPL/AGPL/LGPL or unknown: HearthNet ships Apache-2.0 and nothing GPL goes into what is shipped.
 */
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const lock = JSON.parse(readFileSync('package-lock.json', 'utf8'));
const root = lock.packages[''];
const seen = new Map();
const queue = Object.keys(root.dependencies ?? {}).map((n) => ['node_modules/' + n, n]);
while (queue.length) {
  const [path, name] = queue.shift();
  if (seen.has(path)) continue;
  const entry = lock.packages[path];
  if (!entry) continue;
  let license = entry.license;
  const pj = join(path, 'package.json');
  if (!license && existsSync(pj)) license = JSON.parse(readFileSync(pj, 'utf8')).license;
  seen.set(path, { name, version: entry.version, license: license ?? 'UNKNOWN' });
  for (const dep of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) {
    // resolve like node: nested first, then hoisted
    const nested = `${path}/node_modules/${dep}`;
    queue.push([lock.packages[nested] ? nested : `node_modules/${dep}`, dep]);
  }
}
const rows = [...seen.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
const bad = rows.filter((r) => /(^|[^L])GPL|AGPL|LGPL|UNKNOWN/i.test(String(r.license)));
for (const r of rows) console.log(`${r.name}@${r.version}\t${r.license}`);
console.log(`\n${rows.length} runtime packages; ${bad.length} with a forbidden or unknown licence`);
for (const r of bad) console.error(`forbidden: ${r.name}@${r.version} (${r.license})`);
process.exit(bad.length ? 1 : 0);
