#!/usr/bin/env node
/**
 * Builds the demo model into models/demo/ (git-ignored) unless it is already there and intact:
 *   models/demo/model.onnx (+ config.json, tokenizer.json, tokenizer_config.json)  — local chat
 *   models/demo/split/ (manifest.json, head, shard-0-1, shard-2-3, tail)            — distributed demo
 * `ensureDemoModel({ root?, force?, log? })` → { dir, splitDir, built }. CLI: `node scripts/ensure-demo-model.mjs [--force]`.
 * The TypeScript tools are loaded through tsx's ESM API (a dev dependency, like the rest of the tooling).
 */
import { createHash } from 'node:crypto';
import process from 'node:process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** Layer ranges of the demo split (two tabs, two layers each). */
export const DEMO_RANGES = [
  [0, 1],
  [2, 3],
];

function intact(dir, splitDir) {
  const model = join(dir, 'model.onnx');
  const manifest = join(splitDir, 'manifest.json');
  if (!existsSync(model) || !existsSync(manifest)) return false;
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json'])
    if (!existsSync(join(dir, f))) return false;
  try {
    const m = JSON.parse(readFileSync(manifest, 'utf8'));
    const sha = createHash('sha256').update(readFileSync(model)).digest('hex');
    if (m.weights_sha256 !== sha) return false;
    for (const p of [m.head, m.tail, ...m.shards]) {
      const f = join(splitDir, p.file);
      if (!existsSync(f) || createHash('sha256').update(readFileSync(f)).digest('hex') !== p.sha256)
        return false;
    }
    return true;
  } catch {
    return false;
  }
}

export async function ensureDemoModel({
  root = resolve(here, '..'),
  force = false,
  log = (s) => process.stderr.write(s + '\n'),
} = {}) {
  const dir = join(root, 'models', 'demo');
  const splitDir = join(dir, 'split');
  if (!force && intact(dir, splitDir)) return { dir, splitDir, built: false };
  const { tsImport } = await import('tsx/esm/api');
  const t0 = Date.now();
  const tiny = await tsImport(pathToFileURL(join(root, 'tools/model/tiny-model.ts')).href, import.meta.url);
  const split = await tsImport(pathToFileURL(join(root, 'tools/model/split-model.ts')).href, import.meta.url);
  const m = tiny.writeTinyModel(dir, { model_id: 'hn-demo-tiny-llama' });
  await split.splitModelFile(m.modelPath, { ranges: DEMO_RANGES, outDir: splitDir });
  log(
    `demo model built in ${Date.now() - t0} ms: ${dir} (sha256 ${m.sha256.slice(0, 12)}…), split ${DEMO_RANGES.map((r) => r.join('-')).join(', ')}`,
  );
  return { dir, splitDir, built: true };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const r = await ensureDemoModel({ force: process.argv.includes('--force') });
  if (!r.built) process.stderr.write(`demo model present: ${r.dir}\n`);
  process.exit(0);
}
