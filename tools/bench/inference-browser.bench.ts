/**
 * `npm run bench -- inference`: local generation speed of the demo model in headless Chromium (Debian
 * `/usr/bin/chromium`), through the app's inference worker, the built PWA served by an in-process relay
 * (models from `models/`, demo model built if absent). One browser, launched with WebGPU enabled on
 * SwiftShader's software adapter:
 *   inference.local_tokens_per_s_webgpu — only when the browser hands out a WebGPU adapter (else nothing,
 *     and the reason is printed);
 *   inference.browser_tokens_per_s_wasm — the same run on onnxruntime-web's WASM backend (one thread),
 *     for comparison with the WebGPU figure and with Node's inference.local_tokens_per_s_wasm.
 * Each: greedy decode tokens per second after the first token (prefill excluded), median of 3 runs of
 * 64 tokens from a chat prompt after a warm-up, the same protocol as inference.bench.ts.
 * The app is built into a scratch folder (never `app/dist`, which other runs serve).
 */
import { chromium, type Browser } from '@playwright/test';
import { serveBuiltApp, type BuiltApp } from './built-app.js';
import type { BenchFilter } from './run.js';
import { CHROMIUM_ARGS } from '../../playwright.config.js';
import { WEBGPU_ARGS } from '../../tests/e2e/peer-browser.js';
import { ensureDemoModel } from '../model/demo-model.js';

export const names = ['inference.local_tokens_per_s_webgpu', 'inference.browser_tokens_per_s_wasm'];

const ARGS = [...CHROMIUM_ARGS, ...WEBGPU_ARGS];

export async function figures(want: BenchFilter): Promise<Record<string, number>> {
  if (!names.some(want)) return {};
  await ensureDemoModel();
  let browser: Browser | null = null;
  let app: BuiltApp | null = null;
  try {
    app = await serveBuiltApp({ models: true });
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ARGS });
    const page = await browser.newPage();
    await page.goto(app.url);
    await page.waitForFunction(() => window.hearthnetReady === true || !!window.hearthnetBootError, null, {
      timeout: 60_000,
    });
    const probe = await page.evaluate(async () => (await window.hearthnetInference!()).inference().probe());
    const backends: ('wasm' | 'webgpu')[] = [];
    if (want('inference.browser_tokens_per_s_wasm')) backends.push('wasm');
    if (want('inference.local_tokens_per_s_webgpu')) {
      if (probe.backend === 'webgpu') backends.push('webgpu');
      else process.stderr.write(`bench: inference.local_tokens_per_s_webgpu not measured: ${probe.reason}\n`);
    }
    const out: Record<string, number> = {};
    for (const backend of backends) {
      const r = await page.evaluate(async (backend) => {
        const api = (await window.hearthnetInference!()).inference();
        const m = await api.load({ location: { kind: 'url', url: '/models/demo/' }, backend, cache: false });
        try {
          const msgs = [{ role: 'user', content: 'Describe a community mesh network in one paragraph.' }];
          await api.generate(m.handle, msgs, { max_tokens: 8, eos_token_ids: [] });
          const rates: number[] = [];
          for (let i = 0; i < 3; i++) {
            const g = await api.generate(m.handle, msgs, { max_tokens: 64, eos_token_ids: [] });
            if (g.tokens_out !== 64) throw new Error(`expected 64 tokens, got ${g.tokens_out}`);
            rates.push(g.decode_tokens_per_s);
          }
          return { backend: m.backend, rates };
        } finally {
          await api.unload(m.handle);
        }
      }, backend);
      if (r.backend.backend !== backend)
        throw new Error(`asked for ${backend}, got ${r.backend.backend}: ${r.backend.reason}`);
      const median = [...r.rates].sort((a, b) => a - b)[1]!;
      process.stderr.write(
        `bench: browser ${backend}: ${r.rates.map((x) => x.toFixed(1)).join(', ')} tok/s (${r.backend.reason})\n`,
      );
      out[
        backend === 'wasm' ? 'inference.browser_tokens_per_s_wasm' : 'inference.local_tokens_per_s_webgpu'
      ] = Math.round(median * 10) / 10;
    }
    return out;
  } finally {
    await browser?.close();
    await app?.close();
  }
}
