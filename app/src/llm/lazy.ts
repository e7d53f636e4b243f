/**
 * The inference client, imported on demand: ONNX Runtime, WebLLM and their .wasm stay off the
 * first-paint path (they load inside the worker when a model is loaded).
 */
export type InferenceClient = typeof import('./client.js');
let p: Promise<InferenceClient> | null = null;
export const loadInferenceClient = (): Promise<InferenceClient> => (p ??= import('./client.js'));
