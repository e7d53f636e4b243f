/**
 * Relay CLI: `tsx relay/main.ts [--host --port --static --ice-servers ...]` (see relay/config.ts
 * or `--help`). Prints the URL to open, shuts down gracefully on SIGINT/SIGTERM.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { ConfigError, USAGE, parseRelayConfig, toRelayOptions } from './config.js';
import { createRelay } from './server.js';

async function main(): Promise<void> {
  let cfg;
  try {
    cfg = parseRelayConfig(process.argv.slice(2), process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`relay: ${e.message}\n\n${USAGE}`);
      process.exit(2);
    }
    throw e;
  }
  if (cfg.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (!!cfg.tlsCert !== !!cfg.tlsKey) {
    process.stderr.write('relay: --tls-cert and --tls-key must be given together\n');
    process.exit(2);
  }
  const tls =
    cfg.tlsCert && cfg.tlsKey ? { cert: readFileSync(cfg.tlsCert), key: readFileSync(cfg.tlsKey) } : null;
  const relay = await createRelay(toRelayOptions(cfg, tls));

  const scheme = tls ? 'https' : 'http';
  const urls: string[] = [];
  if (cfg.host === '0.0.0.0' || cfg.host === '::') {
    urls.push(`${scheme}://localhost:${relay.port}/`);
    for (const list of Object.values(os.networkInterfaces())) {
      for (const a of list ?? []) {
        if (a.family === 'IPv4' && !a.internal) urls.push(`${scheme}://${a.address}:${relay.port}/`);
      }
    }
  } else urls.push(relay.url);
  process.stdout.write(`\nHearthNet relay ready. Open ${urls[0]}\n`);
  for (const u of urls.slice(1)) process.stdout.write(`  also on your network: ${u}\n`);
  if (!tls && urls.length > 1) {
    process.stdout.write(
      '  (LAN addresses over plain HTTP are not a secure context: no offline install or WebGPU)\n',
    );
  }
  process.stdout.write('\n');

  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) {
      process.stderr.write(`relay: second ${sig}, exiting now\n`);
      process.exit(1);
    }
    stopping = true;
    process.stdout.write(`relay: ${sig} received, shutting down\n`);
    relay.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((e: unknown) => {
  process.stderr.write(`relay: failed to start: ${(e as Error)?.message ?? String(e)}\n`);
  process.exit(1);
});
