/** M31: the address a civil-defence notification opens (`#m/civdef/<alert_id>`) is the Alerts view. */
import { describe, expect, it } from 'vitest';
import { parseRoute } from '../../app/src/route.js';

describe('civdef notification address', () => {
  it('opens the civdef module view with the alert as its item; anything else is not an item', () => {
    const id = '01JEXAMPLE0000000000000000'.replace(/[LIOU]/g, '0');
    expect(parseRoute(`#m/civdef/${id}`)).toEqual({ view: 'module', name: 'civdef', item: id });
    expect(parseRoute('#m/civdef')).toEqual({ view: 'module', name: 'civdef' });
    for (const h of [
      '#m/civdef/short',
      `#m/civdef/${id}/x`,
      `#m/Civdef/${id}`,
      `#/civdef/${id}`,
      '#m/civdef/',
    ])
      expect(parseRoute(h), h).toEqual({ view: 'home' });
  });
});
