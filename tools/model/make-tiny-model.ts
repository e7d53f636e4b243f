/**
 * `npm run make-tiny-model -- --out DIR [--layers N] [--hidden E] [--heads H] [--kv-heads K]
 *   [--head-dim D] [--intermediate I] [--ctx T] [--seed S] [--model-id ID] [--fused]
 *   [--quantized [--block-size 16|32]]`
 *
 * Writes DIR/model.onnx (Llama-style decoder with KV cache, deterministic seeded weights),
 * DIR/config.json, DIR/tokenizer.json and DIR/tokenizer_config.json.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeTinyModel } from './tiny-model.js';
import type { TinyConfig } from './tiny-weights.js';

const FLAGS: Record<string, keyof TinyConfig> = {
  '--layers': 'num_hidden_layers',
  '--hidden': 'hidden_size',
  '--heads': 'num_attention_heads',
  '--kv-heads': 'num_key_value_heads',
  '--head-dim': 'head_dim',
  '--intermediate': 'intermediate_size',
  '--ctx': 'max_position_embeddings',
  '--seed': 'seed',
  '--vocab': 'vocab_size',
};

function usage(): never {
  process.stderr.write(
    `usage: make-tiny-model --out DIR [${Object.keys(FLAGS).join(' N] [')} N] [--model-id ID] [--fused] [--quantized [--block-size 16|32]]\n`,
  );
  process.exit(64);
}

export function parseArgs(argv: string[]): { out: string; over: Partial<TinyConfig> } {
  let out: string | undefined;
  const over: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--out') out = argv[++i];
    else if (a === '--fused') over['fused'] = true;
    else if (a === '--quantized') over['quantized'] = true;
    else if (a === '--block-size') {
      const v = Number(argv[++i]);
      if (v !== 16 && v !== 32) throw new Error('--block-size must be 16 or 32');
      over['quant_block_size'] = v;
    } else if (a === '--model-id') over['model_id'] = argv[++i];
    else if (FLAGS[a]) {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v)) throw new Error(`${a} needs an integer`);
      over[FLAGS[a]] = v;
    } else usage();
  }
  if (!out) usage();
  return { out, over: over as Partial<TinyConfig> };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const { out, over } = parseArgs(process.argv.slice(2));
  const m = writeTinyModel(out, over);
  const c = m.config;
  process.stdout.write(
    `wrote ${m.modelPath} (${m.bytes} bytes, sha256 ${m.sha256}): ${c.num_hidden_layers} layers, E ${c.hidden_size}, ` +
      `heads ${c.num_attention_heads}/${c.num_key_value_heads}, D ${c.head_dim}, vocab ${c.vocab_size}, ctx ${c.max_position_embeddings}${c.fused ? ', fused ops' : ''}` +
      `${c.quantized ? `, int4 MatMulNBits/GatherBlockQuantized (block ${c.quant_block_size})` : ''}\n`,
  );
}
