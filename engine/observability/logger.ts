/**
 * Structured log with levels, kept in a ring buffer for the Diagnostics view (and mirrored to the
 * console at warning and above). Content never reaches it: data fields whose name says prompt,
 * token, text, key, ... are replaced by `[redacted]`, long strings are cut, nested objects are
 * summarised. A module gets a logger bound to its name.
 */
export type LogLevel = 'debug' | 'info' | 'warning' | 'error';
const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warning: 2, error: 3 };

export interface LogEntry {
  ts: number;
  level: LogLevel;
  source: string;
  msg: string;
  data?: Record<string, string | number | boolean | null>;
}

export interface Logger {
  debug(msg: string, data?: Record<string, unknown>): void;
  info(msg: string, data?: Record<string, unknown>): void;
  warn(msg: string, data?: Record<string, unknown>): void;
  error(msg: string, data?: Record<string, unknown>): void;
}

/** Field names that may carry content or secrets: never logged. */
const SECRET =
  /prompt|token|text|content|message|activation|tensor|logit|claim|statement|key|seed|secret|passw|credential|signature|private|payload|body|input|output/i;
const MAX_STR = 160;

export function redact(data: Record<string, unknown>): Record<string, string | number | boolean | null> {
  const out: Record<string, string | number | boolean | null> = {};
  let n = 0;
  for (const [k, v] of Object.entries(data)) {
    if (++n > 24) break;
    if (SECRET.test(k) && !/_(count|bytes|len|length|ms|id)$/.test(k)) out[k] = '[redacted]';
    else if (v === null || v === undefined) out[k] = null;
    else if (typeof v === 'number' || typeof v === 'boolean') out[k] = v;
    else if (typeof v === 'string') out[k] = v.length > MAX_STR ? `${v.slice(0, MAX_STR)}…` : v;
    else if (v instanceof Error) out[k] = `${v.name}: ${v.message}`.slice(0, MAX_STR);
    else if (Array.isArray(v)) out[k] = `[array ${v.length}]`;
    else out[k] = '[object]';
  }
  return out;
}

export class LogBook {
  private ring: LogEntry[] = [];
  private subs = new Set<(e: LogEntry) => void>();
  constructor(
    private o: { level: () => LogLevel; capacity?: number; now?: () => number; console?: boolean } = {
      level: () => 'info',
    },
  ) {}

  write(level: LogLevel, source: string, msg: string, data?: Record<string, unknown>): void {
    if (RANK[level] < RANK[this.o.level()]) return;
    const e: LogEntry = { ts: (this.o.now ?? Date.now)(), level, source, msg: msg.slice(0, 300) };
    if (data) e.data = redact(data);
    this.ring.push(e);
    if (this.ring.length > (this.o.capacity ?? 500)) this.ring.shift();
    if (this.o.console !== false && RANK[level] >= RANK.warning)
      (level === 'error' ? console.error : console.warn)(`hearthnet[${source}] ${e.msg}`, e.data ?? '');
    for (const cb of this.subs) cb(e);
  }

  /** A logger that tags every entry with `source` (a module name, 'node', 'mesh', ...). */
  logger(source: string): Logger {
    return {
      debug: (m, d) => this.write('debug', source, m, d),
      info: (m, d) => this.write('info', source, m, d),
      warn: (m, d) => this.write('warning', source, m, d),
      error: (m, d) => this.write('error', source, m, d),
    };
  }

  entries(): LogEntry[] {
    return [...this.ring];
  }

  subscribe(cb: (e: LogEntry) => void): () => void {
    this.subs.add(cb);
    return () => this.subs.delete(cb);
  }
}
