/**
 * M27 `OrtEmbedder` (digest §5): a sentence encoder exported to ONNX (inputs `input_ids`,
 * `attention_mask`, optionally `token_type_ids`; output `last_hidden_state` [batch, seq, hidden]),
 * run by onnxruntime-web (WebGPU or WASM in the inference worker, WASM in Node), tokenised with the
 * model's own tokenizer.json, mean-pooled over the attention mask and L2-normalised. Same interface as
 * the `HashedEmbedder`, which stays the default and the fallback. Texts are processed one at a time
 * (batch 1: no padding, so a text's vector never depends on the texts beside it), and pooling sums
 * in float64 in a fixed order, so equal inputs give bit-identical vectors. Texts are never logged.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { HnError } from '../core/errors.js';
import { sha256Hex } from '../core/hash.js';
import { createSession, ort, type ExecutionProvider } from '../llm/ort.js';
import type { Embedder } from './embedder.js';

export interface OrtEmbedderOptions {
  /** relevance threshold for max cosine(summary, topic): 0.55 for a real encoder (digest §4) */
  threshold?: number;
  /** text prefix the model expects, e.g. "query: " for multilingual-e5 */
  prefix?: string;
  /** tokens per text; longer texts are truncated (default 256) */
  maxLength?: number;
  executionProviders?: ExecutionProvider[];
  /** a name for the id (default: the first 12 hex digits of the model's SHA-256) */
  name?: string;
}

/** Mean over the positions whose mask is 1, in float64, then L2 normalisation (zero vector stays zero). */
export function meanPoolL2(hidden: ArrayLike<number>, seq: number, dim: number, mask: ArrayLike<number>) {
  const v = new Float64Array(dim);
  let n = 0;
  for (let t = 0; t < seq; t++) {
    if (!mask[t]) continue;
    n++;
    for (let j = 0; j < dim; j++) v[j]! += hidden[t * dim + j]!;
  }
  if (n > 0) for (let j = 0; j < dim; j++) v[j]! /= n;
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm);
  if (norm > 0) for (let j = 0; j < dim; j++) v[j]! /= norm;
  return v;
}

export class OrtEmbedder implements Embedder {
  private constructor(
    readonly id: string,
    readonly dim: number,
    readonly threshold: number,
    private readonly session: ort.InferenceSession,
    private readonly tk: Tokenizer,
    private readonly opts: { prefix: string; maxLength: number; output: string; typeIds: boolean },
  ) {}

  /** Load an encoder from its model.onnx bytes and tokenizer.json (+ tokenizer_config.json). */
  static async load(
    model: Uint8Array,
    tokenizerJson: object,
    tokenizerConfig: object = {},
    o: OrtEmbedderOptions = {},
  ): Promise<OrtEmbedder> {
    let tk: Tokenizer;
    try {
      tk = new Tokenizer(tokenizerJson, tokenizerConfig);
    } catch (e) {
      throw new HnError('bad_request', `tokenizer.json could not be loaded: ${(e as Error).message}`);
    }
    let session: ort.InferenceSession;
    try {
      ({ session } = await createSession(model, { executionProviders: o.executionProviders ?? ['wasm'] }));
    } catch (e) {
      throw new HnError('bad_request', `the embedding model could not be loaded: ${(e as Error).message}`);
    }
    const inputs = session.inputNames;
    if (!inputs.includes('input_ids') || !inputs.includes('attention_mask')) {
      await session.release();
      throw new HnError('bad_request', 'an encoder needs the inputs input_ids and attention_mask');
    }
    const output = session.outputNames.includes('last_hidden_state')
      ? 'last_hidden_state'
      : session.outputNames[0]!;
    const maxLength = o.maxLength ?? 256;
    if (!Number.isInteger(maxLength) || maxLength < 1 || maxLength > 8192)
      throw new HnError('bad_request', 'maxLength 1..8192');
    const id = `ort:${o.name ?? sha256Hex(model).slice(0, 12)}`;
    const tmp = new OrtEmbedder(id, 0, 0, session, tk, {
      prefix: o.prefix ?? '',
      maxLength,
      output,
      typeIds: inputs.includes('token_type_ids'),
    });
    // the hidden size comes from the graph itself: one probe run
    const probe = await tmp.run('a');
    return new OrtEmbedder(id, probe.dim, o.threshold ?? 0.55, session, tk, tmp.opts);
  }

  private async run(text: string): Promise<{ data: Float32Array; seq: number; dim: number; mask: number[] }> {
    let ids = this.tk.encode(this.opts.prefix + text, { add_special_tokens: true }).ids;
    if (ids.length > this.opts.maxLength) ids = ids.slice(0, this.opts.maxLength);
    const mask = ids.length ? ids.map(() => 1) : [0];
    if (!ids.length) ids = [0];
    const s = ids.length;
    const big = (a: number[]) => BigInt64Array.from(a, (x) => BigInt(x));
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', big(ids), [1, s]),
      attention_mask: new ort.Tensor('int64', big(mask), [1, s]),
    };
    if (this.opts.typeIds) feeds.token_type_ids = new ort.Tensor('int64', new BigInt64Array(s), [1, s]);
    const out = await this.session.run(feeds);
    const t = out[this.opts.output];
    if (!t || t.type !== 'float32' || t.dims.length !== 3 || t.dims[1] !== s)
      throw new HnError('internal_error', 'the encoder returned no [1, seq, hidden] float32 output');
    const data = (await t.getData()) as Float32Array;
    return { data, seq: s, dim: t.dims[2]!, mask };
  }

  async embed(texts: readonly string[]): Promise<Float64Array[]> {
    const out: Float64Array[] = [];
    for (const text of texts) {
      const r = await this.run(text);
      out.push(meanPoolL2(r.data, r.seq, r.dim, r.mask));
    }
    return out;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
