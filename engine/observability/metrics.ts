/** In-memory metrics registry (counters, gauges, histograms) rendered as Prometheus text. */

type Labels = Record<string, string>;
const labelKey = (l: Labels) =>
  Object.keys(l)
    .sort()
    .map((k) => `${k}="${String(l[k]).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`)
    .join(',');

const BUCKETS_MS = [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000];

interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  series: Map<string, { labels: Labels; value: number; buckets?: number[]; sum?: number; count?: number }>;
}

export class Metrics {
  private families = new Map<string, Family>();

  private fam(name: string, help: string, type: Family['type']): Family {
    let f = this.families.get(name);
    if (!f) this.families.set(name, (f = { name, help, type, series: new Map() }));
    return f;
  }
  private series(f: Family, labels: Labels) {
    const k = labelKey(labels);
    let s = f.series.get(k);
    if (!s) f.series.set(k, (s = { labels, value: 0 }));
    return s;
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
    const s = this.families.get(name)?.series.get(labelKey(labels));
    return s ? (s.count ?? s.value) : 0;
  }
  /** Sum of a counter over all label sets matching `filter`. */
  total(name: string, filter: Labels = {}): number {
    let n = 0;
    for (const s of this.families.get(name)?.series.values() ?? []) {
      if (Object.entries(filter).every(([k, v]) => s.labels[k] === v)) n += s.count ?? s.value;
    }
    return n;
  }

  render(): string {
    const lines: string[] = [];
    for (const f of [...this.families.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
      lines.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
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
          lines.push(`${f.name}${lk ? `{${lk}}` : ''} ${s.value}`);
        }
      }
    }
    return lines.join('\n') + '\n';
  }
}
