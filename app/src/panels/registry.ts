/**
 * Module views. A module's view is part of its definition (`view.load`, a dynamic import), so its
 * code (and any heavy runtime it pulls in: onnxruntime-web, web-llm, Web Serial drivers) is loaded
 * only when the module is switched on and its view is shown, never on the first-paint path.
 */
import type { Component } from 'svelte';
import type { HearthNode } from '../../../engine/index.js';

export interface PanelProps {
  node: HearthNode;
}

export type PanelLoader = () => Promise<{ default: Component<PanelProps> }>;

/** The lazy loader of a module's view, if it has one. */
export function panelLoader(node: HearthNode, name: string): PanelLoader | undefined {
  return node.moduleDefinitions().find((d) => d.name === name)?.view?.load as PanelLoader | undefined;
}
