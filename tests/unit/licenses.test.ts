import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';

it('every runtime dependency has a licence compatible with shipping Apache-2.0 (no GPL)', () => {
  const r = spawnSync(process.execPath, ['scripts/licenses.mjs'], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.stdout).toMatch(/runtime packages; 0 with a forbidden or unknown licence/);
  expect(r.status).toBe(0);
});
