/**
 * In-memory metrics registry (counters, gauges, callback gauges, histograms) rendered as
 * Prometheus text (exposition 0.0.4). One module for the engine and the relay.
 *
 * Bounded (issue #18): a label value is cut to LABEL_VALUE_MAX chars and a family keeps at most
 * SERIES_PER_FAMILY_MAX label sets; further label sets are counted in one `_overflow` series, so a
 * remote string (a capability name, a reason) can never grow memory or `/metrics` without bound.
 */

type Labels = Record<string, string>;

export const LABEL_VALUE_MAX = 128;
export const SERIES_PER_FAMILY_MAX = 512;
export const OVERFLOW_LABEL = '_overflow';

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const labelKey = (l: Labels) =>
  Object.keys(l)
    .sort()
    .map((k) => `${k}="${escapeLabel(String(l[k]))}"`)
    .join(',');

const BUCKETS_MS = [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000];

interface Series {
  labels: Labels;
  value: number;
  buckets?: number[];
  sum?: number;
  count?: number;
}
interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  series: Map<string, Series>;
  /** callback gauge: its value is read at render time */
  collect?: () => number;
}

const fmt = (v: number) => (Number.isFinite(v) ? String(v) : v > 0 ? '+Inf' : v < 0 ? '-Inf' : 'NaN');

export class Metrics {
  private families = new Map<string, Family>();

  private fam(name: string, help: string, type: Family['type']): Family {
    let f = this.families.get(name);
    if (!f) this.families.set(name, (f = { name, help, type, series: new Map() }));
    return f;
  }
  private series(f: Family, labels: Labels): Series {
    const bounded: Labels = {};
    for (const k of Object.keys(labels)) bounded[k] = String(labels[k]).slice(0, LABEL_VALUE_MAX);
    let k = labelKey(bounded);
    let s = f.series.get(k);
    if (s) return s;
    let l = bounded;
    if (f.series.size >= SERIES_PER_FAMILY_MAX) {
      l = Object.fromEntries(Object.keys(bounded).map((n) => [n, OVERFLOW_LABEL]));
      k = labelKey(l);
      s = f.series.get(k);
      if (s) return s;
    }
    f.series.set(k, (s = { labels: l, value: 0 }));
    return s;
  }

  /** Declare a counter with its help text (optional: `inc` declares on first use). */
  counter(name: string, help: string): void {
    const f = this.fam(name, help, 'counter');
    f.help = help;
  }
  /** Declare a gauge; with `collect` its value is computed at read time. */
  gauge(name: string, help: string, collect?: () => number): void {
    const f = this.fam(name, help, 'gauge');
    f.help = help;
    if (collect) f.collect = collect;
  }

  inc(name: string, labels: Labels = {}, by = 1, help = name): void {
    this.series(this.fam(name, help, 'counter'), labels).value += by;
  }
  set(name: string, labels: Labels, value: number, help = name): void {
    this.series(this.fam(name, help, 'gauge'), labels).value = value;
  }
  observe(name: string, labels: Labels, ms: number, help = name): void {
    const s = this.series(this.fam(name, help, 'histogram'), labels);
    s.buckets ??= BUCKETS_MS.map(() => 0);
    s.sum = (s.sum ?? 0) + ms;
    s.count = (s.count ?? 0) + 1;
    BUCKETS_MS.forEach((b, i) => {
      if (ms <= b) s.buckets![i]!++;
    });
  }
  get(name: string, labels: Labels = {}): number {
    const f = this.families.get(name);
    if (f?.collect) return f.collect();
    const s = f?.series.get(labelKey(labels));
    return s ? (s.count ?? s.value) : 0;
  }
  /** Sum of a counter over all label sets matching `filter`. */
  total(name: string, filter: Labels = {}): number {
    const f = this.families.get(name);
    if (f?.collect) return f.collect();
    let n = 0;
    for (const s of f?.series.values() ?? []) {
      if (Object.entries(filter).every(([k, v]) => s.labels[k] === v)) n += s.count ?? s.value;
    }
    return n;
  }
  /** Sum over all label sets of one family. */
  sum(name: string): number {
    return this.total(name);
  }
  /** Number of label sets of a family (what a hostile label could grow). */
  seriesCount(name: string): number {
    return this.families.get(name)?.series.size ?? 0;
  }

  render(): string {
    const lines: string[] = [];
    for (const f of [...this.families.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
      lines.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
      if (f.collect) {
        lines.push(`${f.name} ${fmt(f.collect())}`);
        continue;
      }
      if (f.series.size === 0 && f.type === 'gauge') lines.push(`${f.name} 0`);
      for (const s of f.series.values()) {
        const lk = labelKey(s.labels);
        if (f.type === 'histogram') {
          BUCKETS_MS.forEach((b, i) => {
            lines.push(`${f.name}_bucket{${lk ? lk + ',' : ''}le="${b}"} ${s.buckets![i]}`);
          });
          lines.push(`${f.name}_bucket{${lk ? lk + ',' : ''}le="+Inf"} ${s.count}`);
          lines.push(
            `${f.name}_sum${lk ? `{${lk}}` : ''} ${s.sum}`,
            `${f.name}_count${lk ? `{${lk}}` : ''} ${s.count}`,
          );
        } else {
          lines.push(`${f.name}${lk ? `{${lk}}` : ''} ${fmt(s.value)}`);
        }
      }
    }
    return lines.join('\n') + '\n';
  }
}
