/** The browser benches' common ground: the app built into a scratch folder and served by an in-process relay. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRelay } from '../../relay/server.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface BuiltApp {
  url: string;
  close(): Promise<void>;
}

/** Build the PWA (never into app/dist, which tests use) and serve it, with `models/` when asked. */
export async function serveBuiltApp(opts: { models?: boolean } = {}): Promise<BuiltApp> {
  const dist = mkdtempSync(join(tmpdir(), 'hn-bench-app-'));
  try {
    execFileSync(
      process.execPath,
      [
        join(ROOT, 'node_modules/vite/bin/vite.js'),
        'build',
        '--outDir',
        dist,
        '--emptyOutDir',
        '--logLevel',
        'error',
      ],
      { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] },
    );
    const relay = await createRelay({
      host: '127.0.0.1',
      port: 0,
      staticDir: dist,
      ...(opts.models ? { modelsDir: join(ROOT, 'models') } : {}),
      log: () => {},
    });
    return {
      url: relay.url,
      async close() {
        await relay.close();
        rmSync(dist, { recursive: true, force: true });
      },
    };
  } catch (e) {
    rmSync(dist, { recursive: true, force: true });
    throw e;
  }
}
