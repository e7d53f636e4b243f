/**
 * The WebLLM engine through the LocalLlm interface, as far as it runs in Node: config mapping
 * (`llm.backends` → web-llm AppConfig records with the configured URLs) and the clear error when
 * WebGPU is missing. Loading real MLC weights needs WebGPU and the files (see tests/e2e/inference.spec.ts
 * for the fetch failure in Chromium).
 */
import { describe, expect, it } from 'vitest';
import { prebuiltAppConfig } from '@mlc-ai/web-llm';
import { resolveConfig } from '../../engine/core/config.js';
import { webllmAppConfig, webllmBackends, WebLlmLocalLlm } from '../../engine/llm/webllm.js';
import { decideBackend } from '../../engine/llm/backend.js';

describe('webllm engine', () => {
  it('maps llm.backends webllm entries to model records with the configured URLs', () => {
    const cfg = {
      llm: {
        backends: [
          { name: 'onnx', model: 'hn-demo-tiny-llama' },
          {
            name: 'webllm',
            model: 'Qwen2.5-0.5B-Instruct-q4f16_1-MLC',
            url: 'https://models.example/qwen05/',
          },
          {
            name: 'webllm',
            model: 'Custom-MLC',
            url: 'https://m.example/c',
            model_lib: 'https://m.example/lib/c.wasm',
          },
        ],
      },
    };
    const bs = webllmBackends(cfg);
    expect(bs).toEqual([
      { name: 'webllm', model: 'Qwen2.5-0.5B-Instruct-q4f16_1-MLC', url: 'https://models.example/qwen05/' },
      {
        name: 'webllm',
        model: 'Custom-MLC',
        url: 'https://m.example/c',
        model_lib: 'https://m.example/lib/c.wasm',
      },
    ]);
    expect(webllmAppConfig(bs[0]!).model_list).toEqual([
      {
        model: 'https://models.example/qwen05/',
        model_id: 'Qwen2.5-0.5B-Instruct-q4f16_1-MLC',
        model_lib: 'https://models.example/qwen05/Qwen2.5-0.5B-Instruct-q4f16_1-MLC-webgpu.wasm',
      },
    ]);
    expect(webllmAppConfig(bs[1]!).model_list[0]).toEqual({
      model: 'https://m.example/c/',
      model_id: 'Custom-MLC',
      model_lib: 'https://m.example/lib/c.wasm',
    });
  });

  it('the config validator accepts the entries the engine reads', () => {
    const { config } = resolveConfig({
      llm: { backends: [{ name: 'webllm', model: 'X-MLC', url: 'https://x/' }] },
    });
    expect(webllmBackends(config)).toEqual([{ name: 'webllm', model: 'X-MLC', url: 'https://x/' }]);
  });

  it('without a url, only web-llm prebuilt models are accepted', () => {
    const id = prebuiltAppConfig.model_list[0]!.model_id;
    expect(webllmAppConfig({ name: 'webllm', model: id }, prebuiltAppConfig).model_list[0]!.model_id).toBe(
      id,
    );
    expect(() => webllmAppConfig({ name: 'webllm', model: 'nope' }, prebuiltAppConfig)).toThrow(
      /not one of web-llm's prebuilt/,
    );
    expect(() => webllmAppConfig({ name: 'webllm', model: 'x', url: 'http://[bad' })).toThrow(/not a URL/);
  });

  it('loading without WebGPU fails with a clear error (and the backend decision says WASM)', async () => {
    await expect(
      WebLlmLocalLlm.load({ name: 'webllm', model: 'X-MLC', url: 'https://x/' }),
    ).rejects.toMatchObject({
      code: 'not_implemented',
      message: expect.stringMatching(/WebLLM needs WebGPU/),
    });
    const d = await decideBackend('auto');
    expect(d).toMatchObject({ backend: 'wasm', fallback: true });
    expect(d.reason).toMatch(/WebGPU unavailable/);
  });
});
