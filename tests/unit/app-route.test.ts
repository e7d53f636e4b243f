/** The app shell's views in the address hash: fixed views, module views, and everything else is Home. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseRoute, routeHref, sameRoute } from '../../app/src/route.js';

describe('app routes', () => {
  it('parses the fixed views, module views and falls back to Home', () => {
    expect(parseRoute('#chat')).toEqual({ view: 'chat' });
    expect(parseRoute('#diagnostics')).toEqual({ view: 'diagnostics' });
    expect(parseRoute('#settings')).toEqual({ view: 'settings' });
    expect(parseRoute('#m/evidence')).toEqual({ view: 'module', name: 'evidence' });
    expect(parseRoute('#m/distributed_llm')).toEqual({ view: 'module', name: 'distributed_llm' });
    for (const h of [
      '',
      '#',
      '#join=ed25519:abc',
      '#m/',
      '#m/Evil',
      '#m/a/b',
      '#m/<script>',
      '#chat2',
      '#home',
    ])
      expect(parseRoute(h), h).toEqual({ view: 'home' });
  });

  it('round-trips through routeHref for any module name', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z][a-z0-9_]{0,63}$/), (name) => {
        const r = { view: 'module' as const, name };
        expect(sameRoute(parseRoute(routeHref(r)), r)).toBe(true);
      }),
    );
    for (const view of ['home', 'chat', 'diagnostics', 'settings'] as const)
      expect(parseRoute(routeHref({ view }))).toEqual({ view });
  });

  it('never throws on arbitrary hashes', () => {
    fc.assert(fc.property(fc.string(), (h) => void parseRoute(h)));
  });
});
