/**
 * A tiny sentence encoder as a standard ONNX graph, laid out like a Hugging Face feature-extraction
 * export (inputs `input_ids`, `attention_mask` int64 [batch, seq]; output `last_hidden_state` float32
 * [batch, seq, hidden]), for the M27 `OrtEmbedder` tests. Random weights from a seed, the byte-level
 * tokenizer of the tiny model. Graph: token embedding (Gather) → MatMul + Add → Tanh → times the
 * attention mask (Cast + Unsqueeze + Mul), so padded positions are zero. A real multilingual encoder
 * (e.g. multilingual-e5-small) has the same inputs and output and loads through the same code.
 */
import { DataType, encodeModel, tensorFromFloat32, tensorFromInt64, valueInfo, type Model } from './onnx.js';
import { tinyTokenizerJson, TINY_VOCAB_SIZE } from './tiny-model.js';
import { SeededRng } from './tiny-weights.js';

export interface TinyEncoder {
  bytes: Uint8Array;
  tokenizerJson: Record<string, unknown>;
  /** the weights the graph computes with (for a reference implementation in tests) */
  vocab: number;
  hidden: number;
  embedding: Float32Array;
  w: Float32Array;
  b: Float32Array;
}

export function makeTinyEncoder(seed = 7, hidden = 32): TinyEncoder {
  const rng = new SeededRng(seed);
  const vocab = TINY_VOCAB_SIZE;
  const embedding = Float32Array.from({ length: vocab * hidden }, () => rng.normal() * 0.5);
  const w = Float32Array.from({ length: hidden * hidden }, () => rng.normal() / Math.sqrt(hidden));
  const b = Float32Array.from({ length: hidden }, () => rng.normal() * 0.1);
  const node = (
    name: string,
    opType: string,
    input: string[],
    attribute: Model['graph']['node'][0]['attribute'] = [],
  ) => ({
    name,
    opType,
    input,
    output: [name],
    attribute,
  });
  const model: Model = {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'hearthnet-tiny-encoder',
    producerVersion: '1',
    graph: {
      name: 'tiny_encoder',
      node: [
        node('/embeddings/Gather', 'Gather', ['embeddings.weight', 'input_ids']),
        node('/dense/MatMul', 'MatMul', ['/embeddings/Gather', 'dense.weight']),
        node('/dense/Add', 'Add', ['/dense/MatMul', 'dense.bias']),
        node('/act/Tanh', 'Tanh', ['/dense/Add']),
        node('/mask/Cast', 'Cast', ['attention_mask'], [{ name: 'to', type: 2, i: DataType.FLOAT }]),
        node('/mask/Unsqueeze', 'Unsqueeze', ['/mask/Cast', 'mask_axes']),
        { ...node('/mask/Mul', 'Mul', ['/act/Tanh', '/mask/Unsqueeze']), output: ['last_hidden_state'] },
      ],
      initializer: [
        tensorFromFloat32('embeddings.weight', [vocab, hidden], embedding),
        tensorFromFloat32('dense.weight', [hidden, hidden], w),
        tensorFromFloat32('dense.bias', [hidden], b),
        tensorFromInt64('mask_axes', [1], [2]),
      ],
      input: [
        valueInfo('input_ids', DataType.INT64, ['batch_size', 'sequence_length']),
        valueInfo('attention_mask', DataType.INT64, ['batch_size', 'sequence_length']),
      ],
      output: [valueInfo('last_hidden_state', DataType.FLOAT, ['batch_size', 'sequence_length', hidden])],
    },
  };
  return { bytes: encodeModel(model), tokenizerJson: tinyTokenizerJson(), vocab, hidden, embedding, w, b };
}
