/**
 * `@mlc-ai/web-llm`, re-exported from one module so that the dynamic import in webllm.ts becomes its
 * own chunk (named after this file) and never sits on the first-paint path.
 */
export { CreateMLCEngine, prebuiltAppConfig } from '@mlc-ai/web-llm';
