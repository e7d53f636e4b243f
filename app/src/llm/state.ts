/** Shared state of the local-LLM panels (chat and model manager): load progress, model list refreshes. */
import { writable } from 'svelte/store';
import type { LoadProgress } from '../../../workers/inference/api.js';

export interface LoadState {
  label: string;
  progress: LoadProgress | null;
  busy: boolean;
}

export const loadState = writable<LoadState>({ label: '', progress: null, busy: false });
/** Bumped whenever the set of installed models may have changed. */
export const modelsVersion = writable(0);
