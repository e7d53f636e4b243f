/** The relay's home community: first founder wins, persisted, a flag fixes it, /config.json tells pages. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createHome } from '../../relay/home.js';
import { createRelay } from '../../relay/server.js';
import { parseRelayConfig } from '../../relay/config.js';

const A = `ed25519:${'A'.repeat(43)}`;
const B = `ed25519:${'B'.repeat(43)}`;
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'hn-home-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('relay home community', () => {
  it('the first founder on a fresh relay becomes home, persisted across restarts; members never set it', () => {
    const dir = tmp();
    const h = createHome({ dataDir: dir });
    expect(h.current()).toBeNull();
    h.noteJoin(A, B); // a member joining someone else's room does not found anything
    expect(h.current()).toBeNull();
    h.noteJoin(A, A);
    h.noteJoin(B, B); // a later founder does not replace the home
    expect(h.current()).toBe(A);
    expect(JSON.parse(readFileSync(join(dir, 'home.json'), 'utf8')).community_id).toBe(A);
    expect(createHome({ dataDir: dir }).current()).toBe(A);
  });

  it('--home fixes it; a corrupt file is ignored and left for the next founder', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'home.json'), '{not json');
    const logs: string[] = [];
    const h = createHome({ dataDir: dir, log: (l) => logs.push(l) });
    expect(h.current()).toBeNull();
    expect(logs.join()).toMatch(/cannot read/);
    const fixed = createHome({ fixed: B, dataDir: dir });
    fixed.noteJoin(A, A);
    expect(fixed.current()).toBe(B);
    expect(() => createHome({ fixed: 'nope' })).toThrow(/community id/);
    expect(parseRelayConfig(['--home', B, '--data', dir], {})).toMatchObject({ home: B, dataDir: dir });
  });

  it('/config.json carries home_community', async () => {
    const home = createHome();
    const relay = await createRelay({ port: 0, home, log: () => undefined });
    try {
      const get = async () => (await (await fetch(new URL('/config.json', relay.url))).json()).home_community;
      expect(await get()).toBeNull();
      home.noteJoin(A, A);
      expect(await get()).toBe(A);
    } finally {
      await relay.close();
    }
  });
});
