/** Self-contained report.html (inline CSS, no external URL, no script but the embedded JSON). */
import type { CaseResult, Report } from './build.js';

const esc = (s: unknown) =>
  String(s).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );

export function renderHtml(r: Report, cid: string, results: CaseResult[]): string {
  const title = new Map(results.map((c) => [c.id, c.title]));
  const bar = (s: any) => {
    const t = Math.max(1, s.total);
    return `<div class="bar"><span class="p" style="width:${(100 * s.passed) / t}%"></span><span class="f" style="width:${(100 * s.failed) / t}%"></span><span class="s" style="width:${(100 * s.skipped) / t}%"></span></div>`;
  };
  const rows = Object.values(r.sections as Record<string, any>)
    .map(
      (s) =>
        `<tr><td>${esc(s.name)}${s.required ? ' <em>required</em>' : ''}</td><td class="${esc(s.status)}">${esc(s.status)}</td><td>${s.passed}/${s.failed}/${s.skipped}</td><td>${bar(s)}</td></tr>`,
    )
    .join('\n');
  const cases = Object.values(r.sections as Record<string, any>)
    .flatMap((s) => s.cases)
    .map(
      (c: any) =>
        `<tr><td>${esc(c.id)}</td><td>${esc(c.section)}</td><td>${esc(title.get(c.id) ?? '')}</td><td class="${esc(c.status)}">${esc(c.status)}${c.reason ? ` — ${esc(c.reason)}` : ''}</td><td>${esc(c.duration_ms)} ms</td><td>${esc(c.spec_ref)}</td></tr>`,
    )
    .join('\n');
  const failures = Object.values(r.sections as Record<string, any>)
    .flatMap((s) => s.failures)
    .map(
      (f: any) =>
        `<details open><summary>${esc(f.case_id)} (${esc(f.spec_ref)}): ${esc(f.message)}</summary><p>expected: <code>${esc(f.expected)}</code></p><p>observed: <code>${esc(f.observed)}</code></p><pre>${esc(JSON.stringify(f.repro, null, 2))}</pre></details>`,
    )
    .join('\n');
  const json = JSON.stringify(r).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>HearthNet conformance report</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%;margin:1em 0}td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left}
.pass{color:#17702f}.fail{color:#b00020;font-weight:bold}.skipped,.partial{color:#8a6d00}
.bar{display:flex;width:200px;height:10px;background:#eee}.bar span{display:block;height:10px}
.bar .p{background:#2e9d4a}.bar .f{background:#d32f2f}.bar .s{background:#c9b458}
code{background:#f4f4f4;padding:0 3px}.badge{display:inline-block;padding:2px 8px;border-radius:4px;background:#eee}
</style></head><body>
<h1>HearthNet conformance report</h1>
<p><span class="badge ${esc(r.overall)}">overall: ${esc(r.overall)}</span> <span class="badge">level: ${esc(r.level)}</span>
<span class="badge">${r.signature ? 'signed by the implementation' : 'unsigned'}</span></p>
<p>CID <code>${esc(cid)}</code><br>implementation <code>${esc(r.implementation?.name ?? '?')} ${esc(r.implementation?.version ?? '')}</code> node <code>${esc(r.node_id ?? '?')}</code><br>
protocol ${esc(r.protocol_version)} · suite ${esc(r.suite_version)} · seed ${esc(r.seed)} · target ${esc(r.target.kind)} (${esc(r.target.peers)} peers) · ${esc(r.ran_at)} → ${esc(r.finished_at)}</p>
<p>totals: ${r.totals.passed} passed, ${r.totals.failed} failed, ${r.totals.skipped} skipped of ${r.totals.total}${r.required_unmet.length ? ` · required unmet: ${esc(r.required_unmet.join(', '))}` : ''}</p>
<h2>Sections</h2><table><tr><th>section</th><th>status</th><th>pass/fail/skip</th><th></th></tr>
${rows}</table>
<h2>Interoperability matrix</h2>
<p>Targets × sections (as libp2p test-plans): each cell is the section's outcome (pass/fail/skip counts); handshake = a sim-peer link handshake to SUT peer 0, RTT = median harness call round trip, both measured in this run.</p>
<table><tr><th>target</th><th>handshake</th><th>RTT p50</th>${Object.keys(r.sections)
    .map((n) => `<th>${esc(n)}</th>`)
    .join('')}</tr>
<tr><td>${esc(r.target.kind)} (${esc(r.target.peers)} peers${r.target.browser ? `, ${esc(r.target.browser.name)} ${esc(r.target.browser.version)}` : ''})</td><td>${(r as any).interop?.handshake_ms != null ? `${esc((r as any).interop.handshake_ms)} ms` : 'n/a'}</td><td>${(r as any).interop ? `${esc((r as any).interop.rtt_ms_p50)} ms` : 'n/a'}</td>${Object.values(
    r.sections as Record<string, any>,
  )
    .map((s) => `<td class="${esc(s.status)}">${esc(s.status)} ${s.passed}/${s.failed}/${s.skipped}</td>`)
    .join('')}</tr></table>
<p>vectors run through the harness: ${esc((r as any).wire_vectors?.passed ?? 0)}/${esc((r as any).wire_vectors?.run ?? 0)} passed${Object.entries(
    ((r as any).wire_vectors?.families ?? {}) as Record<string, any>,
  )
    .map(
      ([f, v]) =>
        ` · ${esc(f)} ${v.passed}/${v.run} (${esc(v.sources.join(', '))}, via ${esc(v.via.join('+'))})`,
    )
    .join(
      '',
    )}${(r as any).wire_vectors?.not_run?.length ? ` · not run: ${esc((r as any).wire_vectors.not_run.join(', '))}` : ''}</p>
<h2>Failures</h2>${failures || '<p>none</p>'}
<h2>Cases</h2><table><tr><th>id</th><th>section</th><th>requirement</th><th>outcome</th><th>duration</th><th>spec</th></tr>
${cases}</table>
<script type="application/json" id="report">${json}</script>
</body></html>
`;
}
