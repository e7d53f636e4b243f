/** The generated models of the M26 bench and its profiling aids (see m26.bench.ts's header). */

/** "m26-bench-25m": ≈ 25.5 M parameters. */
export const BIG = {
  model_id: 'm26-bench-25m',
  num_hidden_layers: 8,
  hidden_size: 512,
  num_attention_heads: 8,
  num_key_value_heads: 4,
  head_dim: 64,
  intermediate_size: 1536,
  max_position_embeddings: 256,
};

/** "m26-bench-100m": ≈ 101 M parameters. */
export const HUGE = {
  model_id: 'm26-bench-100m',
  num_hidden_layers: 8,
  hidden_size: 1024,
  num_attention_heads: 16,
  num_key_value_heads: 8,
  head_dim: 64,
  intermediate_size: 3072,
  max_position_embeddings: 256,
};
