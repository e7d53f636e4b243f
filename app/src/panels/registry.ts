/**
 * Module panels. Each module that has a UI adds one line here: a dynamic import, so its code
 * (and any heavy runtime it pulls in: onnxruntime-web, web-llm, Web Serial drivers) is loaded
 * only when the module is switched on and its panel is shown, never on the first-paint path.
 *
 *   distributed_llm: () => import('./DistributedLlmPanel.svelte'),
 */
import type { Component } from 'svelte';
import type { HearthNode, ModuleName } from '../../../engine/index.js';

export interface PanelProps {
  node: HearthNode;
}

export type PanelLoader = () => Promise<{ default: Component<PanelProps> }>;

export const PANELS: Partial<Record<ModuleName, PanelLoader>> = {};
