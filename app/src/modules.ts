/**
 * What each module switch means, derived from the module definitions (their `view` metadata);
 * the app never keeps its own list of modules.
 */
import type { HearthNode } from '../../engine/index.js';

export interface ModuleInfo {
  name: string;
  seedId: string;
  title: string;
  blurb: string;
  icon: string;
}

export function moduleInfos(node: HearthNode): ModuleInfo[] {
  return node.moduleDefinitions().map((d) => ({
    name: d.name,
    seedId: d.seedId,
    title: d.view?.title ?? d.name,
    blurb: d.view?.blurb ?? '',
    icon: d.view?.icon ?? '▫️',
  }));
}

export function moduleInfo(node: HearthNode, name: string): ModuleInfo {
  return (
    moduleInfos(node).find((m) => m.name === name) ?? {
      name,
      seedId: '',
      title: name,
      blurb: '',
      icon: '▫️',
    }
  );
}
