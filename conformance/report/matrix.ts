/**
 * The interoperability matrix over several runs (libp2p test-plans style): one table of targets ×
 * sections with each target's measured handshake and RTT, and one of cases × targets. Built only from
 * the signed reports of the runs (each verified first), so it says only what those runs measured.
 * `npm run conformance -- --target in-process --target browsers:3 …` writes it after the runs;
 * `--matrix <report.json | dir>…` combines reports of earlier runs.
 */
import { verifyReportFile } from '../runner/execute.js';
import { reportCid, type Report } from './build.js';

export interface MatrixTarget {
  label: string;
  kind: string;
  peers: number;
  browser: string | null;
  overall: string;
  report_cid: string;
  signed: boolean;
  handshake_ms: number | null;
  rtt_ms_p50: number | null;
  totals: { total: number; passed: number; failed: number; skipped: number };
  vectors: { run: number; passed: number; verified: boolean };
}

export interface Matrix {
  matrix_schema: 'hearthnet.conformance.matrix/1';
  suite_versions: string[];
  targets: MatrixTarget[];
  sections: string[];
  /** section → target label → counts and status */
  cells: Record<string, Record<string, { status: string; passed: number; failed: number; skipped: number }>>;
  /** one row per case: its outcome on each target (absent = the case was not in that run) */
  cases: { id: string; section: string; results: Record<string, { status: string; reason?: string }> }[];
}

/** a short, unique column label per run: kind (+peers) (+browser) */
function labelOf(r: Report, taken: Set<string>): string {
  const t = r.target;
  let base = t.kind === 'browsers' ? `browsers:${t.peers}` : t.kind;
  if (t.browser) base += ` ${t.browser.name} ${t.browser.version.split('.')[0]}`;
  let label = base;
  for (let i = 2; taken.has(label); i++) label = `${base} #${i}`;
  taken.add(label);
  return label;
}

/**
 * Combine reports (each refused unless its signature verifies, when `requireSigned`) into one matrix.
 * Throws naming the first report that does not verify.
 */
export function buildMatrix(reports: Report[], o: { requireSigned?: boolean } = {}): Matrix {
  const taken = new Set<string>();
  const targets: MatrixTarget[] = [];
  const sections: string[] = [];
  const cells: Matrix['cells'] = {};
  const rows = new Map<string, Matrix['cases'][number]>();
  for (const r of reports) {
    if (o.requireSigned !== false) {
      const v = verifyReportFile(r);
      if (!v.ok) throw new Error(`matrix: a ${r?.target?.kind ?? '?'} report is refused: ${v.reason}`);
    }
    const label = labelOf(r, taken);
    const interop = (r as { interop?: { handshake_ms: number | null; rtt_ms_p50: number } }).interop;
    targets.push({
      label,
      kind: r.target.kind,
      peers: r.target.peers,
      browser: r.target.browser ? `${r.target.browser.name} ${r.target.browser.version}` : null,
      overall: r.overall,
      report_cid: reportCid(r),
      signed: !!r.signed,
      handshake_ms: interop?.handshake_ms ?? null,
      rtt_ms_p50: interop?.rtt_ms_p50 ?? null,
      totals: r.totals,
      vectors: {
        run: r.wire_vectors?.run ?? 0,
        passed: r.wire_vectors?.passed ?? 0,
        verified: !!r.wire_vectors_verified,
      },
    });
    for (const s of Object.values(r.sections as Record<string, any>)) {
      if (!sections.includes(s.name)) sections.push(s.name);
      (cells[s.name] ??= {})[label] = {
        status: s.status,
        passed: s.passed,
        failed: s.failed,
        skipped: s.skipped,
      };
      for (const c of s.cases as { id: string; section: string; status: string; reason?: string }[]) {
        const row = rows.get(c.id) ?? { id: c.id, section: c.section, results: {} };
        row.results[label] = { status: c.status, ...(c.reason ? { reason: c.reason } : {}) };
        rows.set(c.id, row);
      }
    }
  }
  sections.sort();
  return {
    matrix_schema: 'hearthnet.conformance.matrix/1',
    suite_versions: [...new Set(reports.map((r) => r.suite_version))],
    targets,
    sections,
    cells,
    cases: [...rows.values()].sort((a, b) =>
      a.section === b.section ? (a.id < b.id ? -1 : 1) : a.section < b.section ? -1 : 1,
    ),
  };
}

const esc = (s: unknown) =>
  String(s).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );

/** Self-contained matrix.html (inline CSS, the matrix JSON embedded). */
export function renderMatrixHtml(m: Matrix): string {
  const labels = m.targets.map((t) => t.label);
  const head = labels.map((l) => `<th>${esc(l)}</th>`).join('');
  const fig = (f: (t: MatrixTarget) => string) => m.targets.map((t) => `<td>${f(t)}</td>`).join('');
  const sectionRows = m.sections
    .map(
      (s) =>
        `<tr><td>${esc(s)}</td>${labels
          .map((l) => {
            const c = m.cells[s]?.[l];
            return c
              ? `<td class="${esc(c.status)}">${esc(c.status)} ${c.passed}/${c.failed}/${c.skipped}</td>`
              : '<td class="absent">not run</td>';
          })
          .join('')}</tr>`,
    )
    .join('\n');
  const caseRows = m.cases
    .map(
      (c) =>
        `<tr><td>${esc(c.id)}</td><td>${esc(c.section)}</td>${labels
          .map((l) => {
            const r = c.results[l];
            return r
              ? `<td class="${esc(r.status)}"${r.reason ? ` title="${esc(r.reason)}"` : ''}>${esc(r.status)}</td>`
              : '<td class="absent">—</td>';
          })
          .join('')}</tr>`,
    )
    .join('\n');
  const json = JSON.stringify(m).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>HearthNet interoperability matrix</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
.pass{background:#e3f4e7;color:#17702f}.fail{background:#fde4e4;color:#b00020;font-weight:bold}
.skipped,.partial{background:#fbf5dc;color:#8a6d00}.absent{color:#999}code{background:#f4f4f4;padding:0 3px}
</style></head><body>
<h1>HearthNet interoperability matrix</h1>
<p>${m.targets.length} runs (suite ${esc(m.suite_versions.join(', '))}). Each column is one signed report; handshake = a sim-peer link handshake to SUT peer 0, RTT = median harness call round trip, both measured in that run. Cells: status passed/failed/skipped.</p>
<h2>Targets × sections</h2>
<table><tr><th></th>${head}</tr>
<tr><th>overall</th>${fig((t) => `<span class="${esc(t.overall)}">${esc(t.overall)}</span>`)}</tr>
<tr><th>peers</th>${fig((t) => esc(t.peers))}</tr>
<tr><th>browser</th>${fig((t) => esc(t.browser ?? '—'))}</tr>
<tr><th>handshake</th>${fig((t) => (t.handshake_ms != null ? `${esc(t.handshake_ms)} ms` : 'n/a'))}</tr>
<tr><th>RTT p50</th>${fig((t) => (t.rtt_ms_p50 != null ? `${esc(t.rtt_ms_p50)} ms` : 'n/a'))}</tr>
<tr><th>vectors</th>${fig((t) => `${t.vectors.passed}/${t.vectors.run}${t.vectors.verified ? ' verified' : ''}`)}</tr>
<tr><th>totals</th>${fig((t) => `${t.totals.passed}/${t.totals.failed}/${t.totals.skipped}`)}</tr>
<tr><th>report</th>${fig((t) => `<code>${esc(t.report_cid.slice(0, 19))}…</code>${t.signed ? '' : ' (unsigned)'}`)}</tr>
${sectionRows}</table>
<h2>Cases × targets</h2>
<table><tr><th>case</th><th>section</th>${head}</tr>
${caseRows}</table>
<script type="application/json" id="matrix">${json}</script>
</body></html>
`;
}
