/**
 * A complete, test-only module: one capability pair, a store with an index, an event type, a link
 * message and a view. It is the worked example of docs/modules.md; nothing outside this folder
 * knows it (tests add it with `createNode({ modules: [example] })`).
 */
import { bool, str } from '../../engine/core/config-fields.js';
import { HnError } from '../../engine/core/errors.js';
import type { ModuleDefinition } from '../../engine/modules/module.js';
import { descriptor } from '../../engine/modules/registry.js';

/** [example] config section: `enabled` plus the module's own fields. */
export const config = {
  enabled: bool(false),
  greeting: str('hello', 64),
};

const NOTE = {
  type: 'object',
  required: ['id', 'tag', 'body'],
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 64 },
    tag: { type: 'string', minLength: 1, maxLength: 32 },
    body: { type: 'string', maxLength: 1000 },
  },
  additionalProperties: false,
};

/** Test probe: link messages this module received, on any node of the process. */
export const PINGS_SEEN: { at: string; from: string; n: number }[] = [];

export const example: ModuleDefinition<'example', typeof config> = {
  name: 'example',
  seedId: 'T01',
  config,
  capabilityNames: ['experimental.example.note.put', 'experimental.example.note.by_tag'],
  events: [
    {
      type: 'example.note.added',
      schema: {
        type: 'object',
        required: ['id', 'tag'],
        properties: { id: { type: 'string', maxLength: 64 }, tag: { type: 'string', maxLength: 32 } },
        additionalProperties: false,
      },
    },
  ],
  stores: [{ name: 'notes', keyPath: 'id', indexes: [{ name: 'by_tag', keyPath: 'tag' }] }],
  linkMessages: [
    {
      type: 'example.ping',
      schema: {
        type: 'object',
        required: ['n'],
        properties: { n: { type: 'integer', minimum: 0 } },
        additionalProperties: false,
      },
    },
  ],
  view: {
    title: 'Example',
    blurb: 'A test-only module that shows every part of a module definition.',
    icon: '🧪',
    load: () => import('./View.svelte'),
  },

  create(c) {
    let db: Awaited<ReturnType<typeof c.openStore>> | null = null;
    const need = () => {
      if (!db) throw new HnError('not_implemented', 'example is not started');
      return db;
    };
    return {
      capabilities: () => [
        {
          descriptor: descriptor('experimental.example.note.put', 'example', {
            request_schema: NOTE,
            response_schema: {
              type: 'object',
              required: ['stored', 'greeting'],
              properties: { stored: { type: 'boolean' }, greeting: { type: 'string' } },
            },
          }),
          handler: async (note: { id: string; tag: string; body: string }) => {
            await need().put('notes', note);
            await c.events.append('example.note.added', { id: note.id, tag: note.tag });
            c.log.info('note stored', { tag: note.tag, body: note.body }); // body is redacted by the logger
            return { stored: true, greeting: c.config().greeting };
          },
        },
        {
          descriptor: descriptor('experimental.example.note.by_tag', 'example', {
            request_schema: {
              type: 'object',
              required: ['tag'],
              properties: { tag: { type: 'string', maxLength: 32 } },
              additionalProperties: false,
            },
            response_schema: {
              type: 'object',
              required: ['notes'],
              properties: { notes: { type: 'array' } },
            },
            idempotent: true,
          }),
          handler: async (q: { tag: string }) => ({
            notes: await need().getAll('notes', { index: 'by_tag', key: q.tag }),
          }),
        },
      ],
      async start() {
        db = await c.openStore(); // the definition's stores, in `<node db>:example`
        c.link.on('example.ping', (from, p: { n: number }) => {
          PINGS_SEEN.push({ at: c.self, from, n: p.n });
          if (p.n < 1) void c.link.send(from, 'example.ping', { n: p.n + 1 }); // answer once
        });
      },
      stop() {
        db = null; // the host closes the store, removes the link handler and timers
      },
    };
  },
};

export default example;
