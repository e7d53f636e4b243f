/**
 * The relay's home community, so "open the URL" is enough to join: the first node that founds a
 * community on a fresh relay (joins the room named by its own NodeID) makes that community the home,
 * persisted in `<dataDir>/home.json`; `--home <community id>` names it instead. Pages read it from
 * /config.json (`home_community`) and a browser with no community of its own joins it.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const NODE_ID = /^ed25519:[A-Za-z0-9_-]{43}$/;

export interface HomeOptions {
  /** a fixed home community (flag); wins over the file and is never replaced */
  fixed?: string | null;
  /** folder for home.json; null = keep the home in memory only */
  dataDir?: string | null;
  log?: (line: string) => void;
}

export interface HomeCommunity {
  /** the home community id, or null while none has been founded */
  current(): string | null;
  /** a node joined `room`: when it is the room's founder and there is no home yet, the room becomes home */
  noteJoin(room: string, nodeId: string): void;
}

export function createHome(o: HomeOptions = {}): HomeCommunity {
  if (o.fixed != null && !NODE_ID.test(o.fixed)) throw new Error(`--home must be a community id (ed25519:…)`);
  const file = o.dataDir ? path.join(o.dataDir, 'home.json') : null;
  let home: string | null = o.fixed ?? null;
  if (!home && file) {
    try {
      const v = JSON.parse(readFileSync(file, 'utf8')) as { community_id?: unknown };
      if (typeof v.community_id === 'string' && NODE_ID.test(v.community_id)) home = v.community_id;
      else o.log?.(`home: ${file} holds no valid community id; waiting for a founder`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
        o.log?.(`home: cannot read ${file}: ${(e as Error).message}`);
    }
  }
  return {
    current: () => home,
    noteJoin(room, nodeId) {
      if (home || room !== nodeId || !NODE_ID.test(room)) return;
      home = room;
      o.log?.(`home: community ${room} founded here is now the relay's home`);
      if (!file) return;
      try {
        mkdirSync(path.dirname(file), { recursive: true });
        const tmp = `${file}.tmp`;
        writeFileSync(tmp, JSON.stringify({ community_id: room, since: new Date().toISOString() }) + '\n');
        renameSync(tmp, file);
      } catch (e) {
        o.log?.(`home: cannot persist ${file}: ${(e as Error).message}`);
      }
    },
  };
}
