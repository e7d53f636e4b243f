/**
 * Local inference in headless Chromium (Debian `/usr/bin/chromium`): the inference worker loads the demo
 * model from the relay's `/models/` folder whole and split into 1, 2, 3 and 4 shards, on WASM and on
 * WebGPU (SwiftShader's software adapter), and 3 fixed prompts × 32 greedy tokens must be identical
 * everywhere (and equal to onnxruntime-web in Node). Also: a part whose bytes do not match the manifest
 * is refused, WebLLM fails with a clear error, and the Local chat panel streams tokens.
 *
 * The split variants are cut in beforeAll with the Node tools into models/e2e-inference-<pid>/ (served
 * by the relay like any model folder) and removed afterwards.
 */
import { chromium, expect, test, type Browser, type Page } from '@playwright/test';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM_ARGS } from '../../playwright.config.js';
import { WEBGPU_ARGS } from './peer-browser.js';
import { OnnxLocalLlm } from '../../engine/llm/local.js';
import { dirSource } from '../../tools/model/node-source.js';
import { splitModelFile } from '../../tools/model/split-model.js';
import { ensureDemoModel } from '../../tools/model/demo-model.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TMP_NAME = `e2e-inference-${process.pid}`;
const TMP = path.join(ROOT, 'models', TMP_NAME);
const PROMPTS = [
  'The hearth keeps the village warm because',
  'Mesh networks route around failures:',
  '<|im_start|>user\nWhat is a community AI mesh?<|im_end|>\n<|im_start|>assistant\n',
];
const SPLITS: Record<string, [number, number][]> = {
  split1: [[0, 3]],
  split2: [
    [0, 1],
    [2, 3],
  ],
  split3: [
    [0, 1],
    [2, 2],
    [3, 3],
  ],
  split4: [
    [0, 0],
    [1, 1],
    [2, 2],
    [3, 3],
  ],
};

let reference: number[][] = [];

test.describe.configure({ mode: 'serial' });

test.beforeAll(async () => {
  test.setTimeout(240_000);
  const { dir, splitDir } = await ensureDemoModel();
  rmSync(TMP, { recursive: true, force: true });
  mkdirSync(TMP, { recursive: true });
  for (const [name, ranges] of Object.entries(SPLITS))
    await splitModelFile(path.join(dir, 'model.onnx'), {
      ranges,
      outDir: path.join(TMP, name),
      validate: false,
    });
  // a split whose second shard lost one byte's worth of integrity
  const bad = path.join(TMP, 'bad-split');
  mkdirSync(bad);
  const m = JSON.parse(readFileSync(path.join(splitDir, 'manifest.json'), 'utf8')) as {
    shards: { file: string }[];
  };
  for (const f of [
    'manifest.json',
    'head.onnx',
    'tail.onnx',
    'config.json',
    'tokenizer.json',
    'tokenizer_config.json',
    ...m.shards.map((s) => s.file),
  ])
    copyFileSync(path.join(splitDir, f), path.join(bad, f));
  const victim = path.join(bad, m.shards[1]!.file);
  const b = readFileSync(victim);
  b[b.length - 5] = b[b.length - 5]! ^ 0x40;
  writeFileSync(victim, b);
  // a whole model whose model.onnx does not match its split manifest's source hash
  const badWhole = path.join(TMP, 'bad-whole');
  mkdirSync(path.join(badWhole, 'split'), { recursive: true });
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json'])
    copyFileSync(path.join(dir, f), path.join(badWhole, f));
  copyFileSync(path.join(splitDir, 'manifest.json'), path.join(badWhole, 'split', 'manifest.json'));
  const w = readFileSync(path.join(dir, 'model.onnx'));
  w[w.length - 7] = w[w.length - 7]! ^ 0x01;
  writeFileSync(path.join(badWhole, 'model.onnx'), w);
  // the reference: onnxruntime-web (WASM) in Node, whole model
  const llm = await OnnxLocalLlm.loadWhole(dirSource(dir), { executionProviders: ['wasm'] });
  reference = [];
  for (const p of PROMPTS) {
    const ids: number[] = [];
    for await (const t of llm.generate(p, { max_tokens: 32, eos_token_ids: [] })) ids.push(t.token_id);
    reference.push(ids);
  }
  await llm.close();
});

test.afterAll(() => rmSync(TMP, { recursive: true, force: true }));

async function open(browser: Browser, baseURL: string): Promise<Page> {
  const page = await browser.newPage({ baseURL });
  page.on('pageerror', (e) => console.error('pageerror', String(e)));
  await page.goto('/');
  await page.waitForFunction(() => window.hearthnetReady === true || !!window.hearthnetBootError, null, {
    timeout: 30_000,
  });
  expect(await page.evaluate(() => window.hearthnetBootError ?? null)).toBeNull();
  return page;
}

interface VariantResult {
  backend: string;
  reason: string;
  mode: string;
  verified: boolean;
  tokens: number[][];
  tps: number[];
}

function runVariants(page: Page, backend: 'wasm' | 'webgpu'): Promise<Record<string, VariantResult>> {
  const variants: Record<string, string> = { whole: '/models/demo/' };
  for (const k of Object.keys(SPLITS)) variants[k] = `/models/${TMP_NAME}/${k}/`;
  return page.evaluate(
    async ({ variants, prompts, backend }) => {
      const c = await window.hearthnetInference!();
      const api = c.inference();
      const out: Record<string, VariantResult> = {};
      for (const [name, url] of Object.entries(variants)) {
        const m = await api.load({ location: { kind: 'url', url }, backend, cache: false });
        const r: VariantResult = {
          backend: m.backend.backend,
          reason: m.backend.reason,
          mode: m.info.mode,
          verified: m.verified,
          tokens: [],
          tps: [],
        };
        for (const p of prompts) {
          const g = await api.generate(m.handle, p, { max_tokens: 32, eos_token_ids: [] });
          r.tokens.push(g.token_ids);
          r.tps.push(g.decode_tokens_per_s);
        }
        await api.unload(m.handle);
        out[name] = r;
      }
      return out;
    },
    { variants, prompts: PROMPTS, backend },
  );
}

function checkEquivalence(results: Record<string, VariantResult>, backend: string): void {
  expect(Object.keys(results)).toEqual(['whole', 'split1', 'split2', 'split3', 'split4']);
  for (const [name, r] of Object.entries(results)) {
    expect(r.backend, `${name}: ${r.reason}`).toBe(backend);
    expect(r.mode).toBe(name === 'whole' ? 'whole' : 'split');
    expect(r.verified, `${name} hashes verified against a manifest`).toBe(true);
    for (const t of r.tokens) expect(t).toHaveLength(32);
    expect(r.tokens, `${name} on ${backend} vs whole`).toEqual(results['whole']!.tokens);
  }
}

test.describe('WASM', () => {
  let browser: Browser;
  let page: Page;
  test.beforeAll(async ({ baseURL }) => {
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: CHROMIUM_ARGS,
    });
    page = await open(browser, baseURL!);
  });
  test.afterAll(async () => browser?.close());

  test('3 prompts × 32 greedy tokens: whole = 1, 2, 3, 4 shards = Node', async () => {
    test.setTimeout(180_000);
    const t0 = Date.now();
    const results = await runVariants(page, 'wasm');
    checkEquivalence(results, 'wasm');
    expect(results['whole']!.tokens).toEqual(reference);
    console.log(
      `wasm: 15 runs in ${Date.now() - t0} ms; whole decode ${results['whole']!.tps.map((x) => x.toFixed(1)).join(', ')} tok/s`,
    );
  });

  test('the orchestrator API: head → shard sessions → tail in the worker equals generate', async () => {
    const r = await page.evaluate(
      async ({ url, prompt }) => {
        const c = await window.hearthnetInference!();
        const api = c.inference();
        const m = await api.load({ location: { kind: 'url', url }, backend: 'wasm', cache: false });
        const manifest = (await (await fetch(url + 'manifest.json')).json()) as {
          shards: { shard_id: string }[];
        };
        const ids = await api.encode(m.handle, prompt);
        const sessions = [];
        for (const s of manifest.shards) sessions.push(await api.openShardSession(m.handle, s.shard_id));
        const first: number[] = [];
        let x = await api.headEmbed(m.handle, ids);
        for (let step = 0; step < 4; step++) {
          for (const s of sessions) x = await api.shardForward(s, c.sendHidden(x));
          const S = x.dims[1]!;
          const E = x.dims[2]!;
          const last = { dtype: x.dtype, dims: [1, 1, E], data: x.data.slice((S - 1) * E) };
          const logits = await api.tailLogits(m.handle, c.sendHidden(last));
          let best = 0;
          for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
          first.push(best);
          x = await api.headEmbed(m.handle, [best]);
        }
        const statsOpen = (await api.stats()).shard_sessions;
        for (const s of sessions) await api.closeShardSession(s);
        const statsClosed = (await api.stats()).shard_sessions;
        const g = await api.generate(m.handle, prompt, { max_tokens: 4, eos_token_ids: [] });
        await api.unload(m.handle);
        return { first, gen: g.token_ids, statsOpen, statsClosed };
      },
      { url: `/models/${TMP_NAME}/split3/`, prompt: PROMPTS[0]! },
    );
    expect(r.first).toEqual(r.gen);
    expect(r.first).toEqual(reference[0]!.slice(0, 4));
    expect(r.statsOpen).toBe(3);
    expect(r.statsClosed).toBe(0);
  });

  test('a part that does not match the manifest hash is refused, never loaded', async () => {
    const errs = await page.evaluate(async (base) => {
      const c = await window.hearthnetInference!();
      const api = c.inference();
      const out: { code?: string; message?: string }[] = [];
      for (const url of [`${base}bad-split/`, `${base}bad-whole/`]) {
        try {
          await api.load({ location: { kind: 'url', url }, backend: 'wasm' });
          out.push({ code: 'loaded' });
        } catch (e) {
          out.push({ code: (e as { code?: string }).code, message: (e as { message?: string }).message });
        }
      }
      const stats = await api.stats();
      const installed = (await api.listInstalled()).map((m) => m.key);
      return { out, loadedModels: stats.models.length, installed };
    }, `/models/${TMP_NAME}/`);
    for (const e of errs.out) {
      expect(e.code).toBe('shard_unavailable');
      expect(e.message).toMatch(/SHA-256 mismatch/);
    }
    expect(errs.out[0]!.message).toMatch(/shard-2-3\.onnx/);
    expect(errs.out[1]!.message).toMatch(/model\.onnx/);
    expect(errs.loadedModels).toBe(0);
    expect(errs.installed.some((k) => k.includes('bad-'))).toBe(false);
  });

  test('the Local chat panel streams tokens and shows tokens/s and the backend; Models lists and deletes', async () => {
    test.setTimeout(180_000); // a loaded 2-core machine needs 15–70 s to create the first WASM session
    await page.reload();
    await page.waitForFunction(() => window.hearthnetReady === true);
    await page.getByTestId('nav-chat').click();
    await page.getByTestId('llm-backend-pref').selectOption('wasm');
    await page.getByTestId('llm-load').click();
    await expect(page.getByTestId('llm-backend')).toHaveText('WASM', { timeout: 90_000 });
    await expect(page.getByTestId('llm-backend-reason')).toContainText('WASM');
    await expect(page.getByTestId('llm-loaded')).toContainText('hashes verified');
    // count distinct output updates while it streams
    await page.evaluate(() => {
      const el = document.querySelector('[data-testid="llm-output"]')!;
      (window as any).__updates = 0;
      new MutationObserver(() => (window as any).__updates++).observe(el, {
        childList: true,
        characterData: true,
        subtree: true,
      });
    });
    await page.getByTestId('llm-prompt').fill('Say something about embers.');
    await page.getByTestId('llm-send').click();
    await expect(page.getByTestId('llm-summary')).toContainText('64 tokens', { timeout: 90_000 });
    expect(((await page.getByTestId('llm-output').textContent()) ?? '').length).toBeGreaterThan(0);
    expect(await page.evaluate(() => (window as any).__updates)).toBeGreaterThan(5);
    await expect(page.getByTestId('llm-tps')).toHaveText(/^\d+(\.\d)? tok\/s$/);
    // the panel went through the bus: the tab serves its model as llm.chat@1.0
    const bus = await page.evaluate(async () => ({
      served: window.hearthnet!.servedModels(),
      calls: window.hearthnet!.bus.stats()['llm.chat@1.0']?.calls ?? 0,
      models: (await window.hearthnet!.call('llm.models.list', {})).models.map((m: { id: string }) => m.id),
    }));
    expect(bus.served).toEqual(['hn-demo-tiny-llama']);
    expect(bus.calls).toBe(1);
    expect(bus.models).toEqual(['hn-demo-tiny-llama']);
    // the model manager shows the cached demo model with its size and hashes, and deletes it
    const row = page.getByTestId('model-row').filter({ hasText: 'hn-demo-tiny-llama' });
    await expect(row).toHaveCount(1);
    await expect(row.getByTestId('model-size')).toHaveText(/MiB/);
    await row.locator('summary').click();
    await expect(row.getByTestId('model-file-sha').first()).toHaveText(/^[0-9a-f]{12}…$/);
    const count = await page.getByTestId('model-row').count();
    await row.getByTestId('model-delete').click();
    await expect(page.getByTestId('model-row')).toHaveCount(count - 1);
  });

  test('WebLLM without WebGPU fails with a clear error', async () => {
    const r = await page.evaluate(async () => {
      const c = await window.hearthnetInference!();
      const api = c.inference();
      const probe = await api.probe();
      try {
        await api.load({ engine: 'webllm', model: 'missing-q4f16_1-MLC', url: '/models/no-such-webllm/' });
        return { probe, code: 'loaded', message: '' };
      } catch (e) {
        return { probe, code: (e as { code: string }).code, message: (e as { message: string }).message };
      }
    });
    if (r.probe.backend === 'webgpu') {
      expect(r.code).toBe('not_found');
      expect(r.message).toMatch(/WebLLM could not load/);
    } else {
      expect(r.code).toBe('not_implemented');
      expect(r.message).toMatch(/WebLLM needs WebGPU/);
    }
  });
});

test.describe('WebGPU (SwiftShader)', () => {
  let browser: Browser;
  let page: Page;
  test.beforeAll(async ({ baseURL }) => {
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: [...CHROMIUM_ARGS, ...WEBGPU_ARGS],
    });
    page = await open(browser, baseURL!);
  });
  test.afterAll(async () => browser?.close());

  test('3 prompts × 32 greedy tokens: whole = 1, 2, 3, 4 shards = Node', async () => {
    test.setTimeout(300_000);
    const probe = await page.evaluate(async () => (await window.hearthnetInference!()).inference().probe());
    test.skip(probe.backend !== 'webgpu', `no WebGPU adapter in this Chromium: ${probe.reason}`);
    const t0 = Date.now();
    const results = await runVariants(page, 'webgpu');
    console.log(
      `webgpu: ${results['whole']!.reason}; 15 runs in ${Date.now() - t0} ms; whole decode ${results['whole']!.tps.map((x) => x.toFixed(1)).join(', ')} tok/s`,
    );
    checkEquivalence(results, 'webgpu');
    expect(results['whole']!.tokens).toEqual(reference);
  });

  test('WebLLM with WebGPU but no model files fails with a clear error', async () => {
    const r = await page.evaluate(async () => {
      const api = (await window.hearthnetInference!()).inference();
      const probe = await api.probe();
      try {
        await api.load({ engine: 'webllm', model: 'missing-q4f16_1-MLC', url: '/models/no-such-webllm/' });
        return { probe, code: 'loaded', message: '' };
      } catch (e) {
        return { probe, code: (e as { code: string }).code, message: (e as { message: string }).message };
      }
    });
    test.skip(r.probe.backend !== 'webgpu', 'no WebGPU adapter');
    expect(r.code).toBe('not_found');
    expect(r.message).toMatch(/WebLLM could not load missing-q4f16_1-MLC/);
  });
});
