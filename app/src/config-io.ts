/** Config file import/export helpers for the Config panel. */
import type { HearthNode } from '../../engine/index.js';

export const CONFIG_FILE_NAME = 'hearthnet-config.toml';

export function downloadConfig(node: HearthNode): void {
  const blob = new Blob([node.exportConfigToml()], { type: 'application/toml' });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = CONFIG_FILE_NAME;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function showValue(v: unknown): string {
  return v === undefined ? '—' : JSON.stringify(v);
}
