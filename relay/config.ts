/**
 * Relay configuration from command-line flags and environment variables. Flags win over
 * environment, environment over defaults. Parsing is pure (no I/O besides reading TLS files
 * named by the caller) so it is unit-testable.
 */
import path from 'node:path';
import type { IceServer, RelayOptions } from './types.js';
import { createHome } from './home.js';

export interface RelayCliConfig {
  host: string;
  port: number;
  staticDir: string;
  modelsDir: string;
  iceServers: IceServer[];
  tlsCert: string | null;
  tlsKey: string | null;
  forward: boolean;
  maxRoomPeers: number;
  joinsPerHour: number;
  messagesPerSecond: number;
  connectionsPerIp: number;
  /** home community id (flag) and the folder where a founded home is persisted */
  home: string | null;
  dataDir: string;
  socketsPerIp: number;
  unjoinedPerIp: number;
  freshKeysPerMinute: number;
  help: boolean;
}

export class ConfigError extends Error {}

export const USAGE = `Usage: tsx relay/main.ts [flags]

Flags (environment variable in brackets; flags win):
  --host <addr>              bind address                      [HOST]                 0.0.0.0
  --port <n>                 port, 0 = any free port           [PORT]                 7080
  --static <dir>             built PWA folder                  [RELAY_STATIC]         app/dist
  --models <dir>             read-only model folder (/models/) [RELAY_MODELS]         models
  --ice-servers <json|urls>  STUN/TURN servers for pages       [ICE_SERVERS]          none
                             JSON array of {urls, username?, credential?}, or
                             comma-separated URLs (stun:host:3478,turn:host:3478)
  --turn-username <s>        username for the TURN URLs given  [TURN_USERNAME]
  --turn-credential <s>      credential for the TURN URLs      [TURN_CREDENTIAL]
  --tls-cert <file>          PEM certificate (HTTPS/WSS)       [RELAY_TLS_CERT]
  --tls-key <file>           PEM private key                   [RELAY_TLS_KEY]
  --forward <on|off>         binary forwarding fallback        [RELAY_FORWARD]        on
  --max-room-peers <n>       peers per room                    [RELAY_MAX_ROOM_PEERS] 64
  --joins-per-hour <n>       joins per node per hour           [RELAY_JOINS_PER_HOUR] 60
  --messages-per-second <n>  text messages per connection      [RELAY_MESSAGES_PER_SECOND] 50
  --connections-per-ip <n>   sockets per client address        [RELAY_CONNECTIONS_PER_IP]  32
  --home <community id>      the relay's home community        [RELAY_HOME]           first founder
  --data <dir>               where the founded home is kept    [RELAY_DATA]           relay-data
  --sockets-per-ip <n>       TCP sockets (HTTP + WS) per address [RELAY_SOCKETS_PER_IP]    64
  --unjoined-per-ip <n>      sockets per address before hello [RELAY_UNJOINED_PER_IP]   8
  --fresh-keys-per-minute <n> new NodeIDs per address per minute [RELAY_FRESH_KEYS_PER_MINUTE] 30
  -h, --help                 this text
`;

const FLAG_ENV: Record<string, string> = {
  host: 'HOST',
  port: 'PORT',
  static: 'RELAY_STATIC',
  models: 'RELAY_MODELS',
  home: 'RELAY_HOME',
  data: 'RELAY_DATA',
  'ice-servers': 'ICE_SERVERS',
  'turn-username': 'TURN_USERNAME',
  'turn-credential': 'TURN_CREDENTIAL',
  'tls-cert': 'RELAY_TLS_CERT',
  'tls-key': 'RELAY_TLS_KEY',
  forward: 'RELAY_FORWARD',
  'max-room-peers': 'RELAY_MAX_ROOM_PEERS',
  'joins-per-hour': 'RELAY_JOINS_PER_HOUR',
  'messages-per-second': 'RELAY_MESSAGES_PER_SECOND',
  'connections-per-ip': 'RELAY_CONNECTIONS_PER_IP',
  'sockets-per-ip': 'RELAY_SOCKETS_PER_IP',
  'unjoined-per-ip': 'RELAY_UNJOINED_PER_IP',
  'fresh-keys-per-minute': 'RELAY_FRESH_KEYS_PER_MINUTE',
};

function intIn(name: string, v: string, min: number, max: number): number {
  if (!/^\d+$/.test(v.trim())) throw new ConfigError(`${name} must be an integer, got "${v}"`);
  const n = Number(v);
  if (n < min || n > max) throw new ConfigError(`${name} must be between ${min} and ${max}`);
  return n;
}

function bool(name: string, v: string): boolean {
  const s = v.trim().toLowerCase();
  if (['on', 'true', '1', 'yes'].includes(s)) return true;
  if (['off', 'false', '0', 'no'].includes(s)) return false;
  throw new ConfigError(`${name} must be on or off`);
}

const ICE_URL_RE = /^(stun|stuns|turn|turns):[^\s,]+$/;

/** Parse ICE servers: a JSON array of RTCIceServer-like objects, or comma-separated URLs. */
export function parseIceServers(v: string, username?: string, credential?: string): IceServer[] {
  const s = v.trim();
  if (s === '') return [];
  if (s.startsWith('[')) {
    let arr: unknown;
    try {
      arr = JSON.parse(s);
    } catch {
      throw new ConfigError('ICE servers: invalid JSON');
    }
    if (!Array.isArray(arr)) throw new ConfigError('ICE servers: expected a JSON array');
    return arr.map((e, i) => {
      if (!e || typeof e !== 'object') throw new ConfigError(`ICE servers[${i}]: expected an object`);
      const r = e as Record<string, unknown>;
      const urls = r.urls;
      const list = typeof urls === 'string' ? [urls] : Array.isArray(urls) ? urls : null;
      if (!list || list.length === 0 || !list.every((u) => typeof u === 'string' && ICE_URL_RE.test(u))) {
        throw new ConfigError(`ICE servers[${i}].urls: expected stun:/turn: URL(s)`);
      }
      const out: IceServer = { urls: urls as string | string[] };
      if (r.username !== undefined) {
        if (typeof r.username !== 'string')
          throw new ConfigError(`ICE servers[${i}].username: expected a string`);
        out.username = r.username;
      }
      if (r.credential !== undefined) {
        if (typeof r.credential !== 'string')
          throw new ConfigError(`ICE servers[${i}].credential: expected a string`);
        out.credential = r.credential;
      }
      return out;
    });
  }
  const urls = s
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean);
  for (const u of urls)
    if (!ICE_URL_RE.test(u)) throw new ConfigError(`ICE server URL "${u}" is not stun:/turn:`);
  const stun = urls.filter((u) => u.startsWith('stun'));
  const turn = urls.filter((u) => u.startsWith('turn'));
  const out: IceServer[] = [];
  if (stun.length) out.push({ urls: stun.length === 1 ? stun[0]! : stun });
  if (turn.length) {
    const t: IceServer = { urls: turn.length === 1 ? turn[0]! : turn };
    if (username) t.username = username;
    if (credential) t.credential = credential;
    out.push(t);
  }
  return out;
}

/** Parse argv (without node/script) and env into a config; throws ConfigError on bad input. */
export function parseRelayConfig(
  argv: string[],
  env: Record<string, string | undefined>,
  cwd: string = process.cwd(),
): RelayCliConfig {
  const flags = new Map<string, string>();
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h' || a === '--help') {
      help = true;
      continue;
    }
    if (!a.startsWith('--')) throw new ConfigError(`unexpected argument "${a}"`);
    let name = a.slice(2);
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    if (!(name in FLAG_ENV)) throw new ConfigError(`unknown flag --${name}`);
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new ConfigError(`--${name} needs a value`);
    }
    flags.set(name, value);
  }
  const get = (name: string): string | undefined => flags.get(name) ?? env[FLAG_ENV[name]!] ?? undefined;

  const abs = (p: string) => path.resolve(cwd, p);
  return {
    host: get('host') ?? '0.0.0.0',
    port: intIn('port', get('port') ?? '7080', 0, 65535),
    staticDir: abs(get('static') ?? 'app/dist'),
    modelsDir: abs(get('models') ?? 'models'),
    iceServers: parseIceServers(get('ice-servers') ?? '', get('turn-username'), get('turn-credential')),
    tlsCert: get('tls-cert') ?? null,
    tlsKey: get('tls-key') ?? null,
    forward: bool('forward', get('forward') ?? 'on'),
    maxRoomPeers: intIn('max-room-peers', get('max-room-peers') ?? '64', 2, 10_000),
    joinsPerHour: intIn('joins-per-hour', get('joins-per-hour') ?? '60', 1, 1_000_000),
    messagesPerSecond: intIn('messages-per-second', get('messages-per-second') ?? '50', 1, 100_000),
    connectionsPerIp: intIn('connections-per-ip', get('connections-per-ip') ?? '32', 1, 100_000),
    home: get('home') ?? null,
    dataDir: abs(get('data') ?? 'relay-data'),
    socketsPerIp: intIn('sockets-per-ip', get('sockets-per-ip') ?? '64', 1, 100_000),
    unjoinedPerIp: intIn('unjoined-per-ip', get('unjoined-per-ip') ?? '8', 1, 100_000),
    freshKeysPerMinute: intIn('fresh-keys-per-minute', get('fresh-keys-per-minute') ?? '30', 1, 100_000),
    help,
  };
}

/** Turn a CLI config into createRelay options (TLS files are read by the caller). */
export function toRelayOptions(c: RelayCliConfig, tls: RelayOptions['tls'] = null): RelayOptions {
  return {
    host: c.host,
    port: c.port,
    staticDir: c.staticDir,
    modelsDir: c.modelsDir,
    iceServers: c.iceServers,
    tls,
    forward: c.forward,
    maxRoomPeers: c.maxRoomPeers,
    joinsPerHour: c.joinsPerHour,
    messagesPerSecond: c.messagesPerSecond,
    connectionsPerIp: c.connectionsPerIp,
    home: createHome({ fixed: c.home, dataDir: c.dataDir, log: (l) => console.log(l) }),
    revocationsFile: path.join(c.dataDir, 'revocations.json'),
    socketsPerIp: c.socketsPerIp,
    unjoinedPerIp: c.unjoinedPerIp,
    freshKeysPerIpPerMinute: c.freshKeysPerMinute,
  };
}
