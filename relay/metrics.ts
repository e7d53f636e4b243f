/**
 * The relay's metrics: a tiny counter/gauge registry rendered as Prometheus text
 * (exposition format 0.0.4). Labels are bounded (error codes, reject reasons, message kinds);
 * no NodeIDs, rooms or payload-derived values ever become labels.
 */

type Labels = Record<string, string>;

interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  values: Map<string, { labels: Labels; value: number }>;
  /** For callback gauges. */
  collect?: () => number;
}

const labelKey = (l: Labels) =>
  Object.keys(l)
    .sort()
    .map((k) => `${k}=${l[k]}`)
    .join(',');

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

export class MetricsRegistry {
  private readonly families = new Map<string, Family>();

  counter(name: string, help: string): void {
    if (!this.families.has(name)) this.families.set(name, { name, help, type: 'counter', values: new Map() });
  }

  gauge(name: string, help: string, collect?: () => number): void {
    if (!this.families.has(name)) {
      const f: Family = { name, help, type: 'gauge', values: new Map() };
      if (collect) f.collect = collect;
      this.families.set(name, f);
    }
  }

  inc(name: string, labels: Labels = {}, by = 1): void {
    const f = this.families.get(name);
    if (!f) throw new Error(`unknown metric ${name}`);
    const k = labelKey(labels);
    const cur = f.values.get(k);
    if (cur) cur.value += by;
    else f.values.set(k, { labels, value: by });
  }

  set(name: string, value: number, labels: Labels = {}): void {
    const f = this.families.get(name);
    if (!f) throw new Error(`unknown metric ${name}`);
    f.values.set(labelKey(labels), { labels, value });
  }

  /** Current value of one series (0 when absent). */
  get(name: string, labels: Labels = {}): number {
    const f = this.families.get(name);
    if (!f) return 0;
    if (f.collect) return f.collect();
    return f.values.get(labelKey(labels))?.value ?? 0;
  }

  /** Sum over all label sets of one family. */
  sum(name: string): number {
    const f = this.families.get(name);
    if (!f) return 0;
    if (f.collect) return f.collect();
    let s = 0;
    for (const v of f.values.values()) s += v.value;
    return s;
  }

  render(): string {
    const out: string[] = [];
    for (const f of this.families.values()) {
      out.push(`# HELP ${f.name} ${f.help}`);
      out.push(`# TYPE ${f.name} ${f.type}`);
      if (f.collect) {
        out.push(`${f.name} ${fmt(f.collect())}`);
        continue;
      }
      if (f.values.size === 0 && f.type === 'gauge') out.push(`${f.name} 0`);
      for (const { labels, value } of f.values.values()) {
        const ks = Object.keys(labels).sort();
        const l = ks.length ? `{${ks.map((k) => `${k}="${escapeLabel(labels[k]!)}"`).join(',')}}` : '';
        out.push(`${f.name}${l} ${fmt(value)}`);
      }
    }
    return out.join('\n') + '\n';
  }
}

const fmt = (v: number) => (Number.isFinite(v) ? String(v) : v > 0 ? '+Inf' : v < 0 ? '-Inf' : 'NaN');
