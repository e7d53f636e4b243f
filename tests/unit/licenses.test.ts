import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';

it('every runtime dependency has a licence compatible with shipping Apache-2.0 (no GPL)', () => {
  const r = spawnSync(process.execPath, ['scripts/licenses.mjs'], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.stdout).toMatch(/runtime packages; 0 with a forbidden or unknown licence/);
  expect(r.status).toBe(0);
});

it('M29: the GPL @meshtastic packages are devDependencies only, never imported by shipped code, and the check would refuse them as runtime deps', async () => {
  const { readFileSync, readdirSync, statSync, mkdtempSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
  for (const name of Object.keys(pkg.dependencies ?? {})) expect(name.startsWith('@meshtastic/')).toBe(false);
  expect(pkg.devDependencies['@meshtastic/protobufs']).toBeDefined();
  // nothing that ships (engine, app, workers, relay) imports it
  const walk = (d: string): string[] =>
    readdirSync(d).flatMap((f) => {
      const p = join(d, f);
      if (f === 'node_modules' || f === 'dist') return [];
      return statSync(p).isDirectory() ? walk(p) : /\.(ts|js|svelte|mjs)$/.test(f) ? [p] : [];
    });
  for (const dir of ['engine', 'app/src', 'workers', 'relay'].filter((d) => {
    try {
      return statSync(d).isDirectory();
    } catch {
      return false;
    }
  }))
    for (const f of walk(dir))
      expect(readFileSync(f, 'utf8'), f).not.toMatch(/(from\s+|import\(\s*|require\(\s*)['"]@meshtastic\//);
  // the checker itself refuses a GPL runtime dependency (run on a lock file where it is one)
  const lock = JSON.parse(readFileSync('package-lock.json', 'utf8'));
  lock.packages[''].dependencies = { '@meshtastic/protobufs': '2.7.18' };
  const dir = mkdtempSync(join(tmpdir(), 'lic-'));
  writeFileSync(join(dir, 'package-lock.json'), JSON.stringify(lock));
  const r = spawnSync(process.execPath, [join(process.cwd(), 'scripts/licenses.mjs')], {
    cwd: dir,
    encoding: 'utf8',
  });
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(/forbidden: @meshtastic\/protobufs@2\.7\.18 \(GPLV3\)/);
});
