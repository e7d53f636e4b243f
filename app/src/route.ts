/**
 * The shell's views, kept in the address's hash so a reload (and the back button) keeps the view:
 * `#chat`, `#diagnostics`, `#settings`, `#m/<module>`; anything else (no hash, `#join=…`) is Home.
 */
export type Route =
  { view: 'home' | 'chat' | 'diagnostics' | 'settings' } | { view: 'module'; name: string; item?: string };

const FIXED = new Set(['chat', 'diagnostics', 'settings']);

export function parseRoute(hash: string): Route {
  const h = hash.replace(/^#/, '');
  if (FIXED.has(h)) return { view: h as 'chat' | 'diagnostics' | 'settings' };
  const m = /^m\/([a-z][a-z0-9_]{0,63})$/.exec(h);
  if (m) return { view: 'module', name: m[1]! };
  // one item inside a module view, named by a ULID (e.g. `#m/civdef/<alert_id>`, opened by a notification)
  const i = /^m\/([a-z][a-z0-9_]{0,63})\/([0-9A-HJKMNP-TV-Z]{26})$/.exec(h);
  if (i) return { view: 'module', name: i[1]!, item: i[2]! };
  return { view: 'home' };
}

export function routeHref(r: Route): string {
  if (r.view === 'home') return '#';
  if (r.view === 'module') return `#m/${r.name}`;
  return `#${r.view}`;
}

export function sameRoute(a: Route, b: Route): boolean {
  return a.view === b.view && (a.view !== 'module' || (b.view === 'module' && a.name === b.name));
}
