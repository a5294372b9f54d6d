"""`netscale report STUDY_DIR`: a self-contained HTML report (figures inlined), PNGs and CSV.

The HTML has no external resources (no CDN, no fonts, no scripts from elsewhere), so it
opens offline in any browser; the trials table sorts on a header click with a few lines of
inline JavaScript.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from netscale.advise import study_verdict
from netscale.advise.groups import recommend_groups
from netscale.advise.records import fmt_count
from netscale.advise.results_io import load_source
from netscale.advise.sources import ResultsFile, StudyResults
from netscale.errors import NetscaleError
from netscale.report import plots
from netscale.report.analysis import runtime_correlations, series_by_strategy
from netscale.report.breakdown import breakdown_html
from netscale.report.fragments import esc, img
from netscale.report.laws_section import laws_section
from netscale.report.marks import (
    FLAG_MARK,
    SAME_MARK,
    describe_data,
    describe_recipe,
    same_network_labels,
    timing_flag,
)
from netscale.study.store import TrialRow
from netscale.util import jsonio
from netscale.util.io import atomic_write_text, sweep_temp_files

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;
max-width:1180px;color:#222;line-height:1.45;padding:0 16px}
h1{font-size:1.6em;margin-bottom:0}h2{border-bottom:1px solid #ddd;padding-bottom:4px;
margin-top:1.8em}.sub{color:#666;margin-top:4px}
.box{background:#f3f8ff;border:1px solid #b8d4f5;border-radius:6px;padding:12px 16px}
.warn{background:#fff6e6;border-color:#f0c36d}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right;white-space:nowrap}
.tw{max-width:100%;overflow-x:auto;margin:8px 0}.tw table{margin:0}
td.l{white-space:normal;min-width:4em}th{white-space:normal}
th{background:#f5f5f5;cursor:pointer;user-select:none}th.sorted-asc::after{content:" ▲"}
th.sorted-desc::after{content:" ▼"}td.l,th.l{text-align:left}
tr.failed td{background:#fdecec}tr.base td{background:#f6f6f6;font-weight:600}
ul.settings{margin:4px 0 0 0;padding-left:20px}tr.pending td,tr.running td{color:#888}
img{max-width:100%;border:1px solid #eee;margin:6px 0}
code{background:#f4f4f4;padding:1px 4px;border-radius:3px}
.grid{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:12px}
@media (max-width:900px){.grid{grid-template-columns:minmax(0,1fr)}}
.small{font-size:12px;color:#666}
.pager{margin:4px 0;font-size:13px}.pager button{font-size:13px;margin-right:4px}
"""

_JS = """
// Each sortable table sorts itself: the column is the header's own index in its row.
function nsKey(cell){
  if (!cell) return '';
  var v = cell.getAttribute('data-v');
  return (v === null ? cell.textContent : v).trim();
}
function nsCmp(x, y, asc){
  if (x === '' || y === '') return (x === '') === (y === '') ? 0 : (x === '' ? 1 : -1);
  var nx = Number(x), ny = Number(y);  // numbers only when the whole value is one
  var c = (isFinite(nx) && isFinite(ny)) ? nx - ny : (x < y ? -1 : x > y ? 1 : 0);
  return asc ? c : -c;  // empty cells stay last either way
}
function nsSort(th, asc){
  var table = th.closest('table'), body = table.tBodies[0], col = th.cellIndex;
  table.querySelectorAll('thead th').forEach(function(h){
    h.classList.remove('sorted-asc','sorted-desc');});
  th.classList.add(asc ? 'sorted-asc' : 'sorted-desc');
  var st = nsPaged[table.id];
  if (st) {  // a paged table sorts all of its rows (the embedded data), then shows page 1
    var cmp = function(a, b){ return nsCmp(nsVal(a[col + 1]), nsVal(b[col + 1]), asc); };
    st.all.sort(cmp);
    if (st.rows !== st.all) st.rows.sort(cmp);
    st.page = 0; nsRender(st);
    return;
  }
  var rows = Array.prototype.slice.call(body.rows);
  rows.sort(function(a, b){ return nsCmp(nsKey(a.cells[col]), nsKey(b.cells[col]), asc); });
  rows.forEach(function(r){body.appendChild(r);});
}
// Paged tables (a big study's trials): all rows in <script id="TABLEID-data"> as
// [status, cell...], a cell being its value or [value, text]; PAGE rows shown at a time.
var nsPaged = {};
function nsVal(c){ return c === undefined ? '' : String(typeof c === 'object' ? c[0] : c).trim(); }
function nsText(c){ return c === undefined ? '' : String(typeof c === 'object' ? c[1] : c); }
function nsEsc(s){ return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;')
  .replace(/>/g, '&gt;').replace(/"/g, '&quot;'); }
function nsRender(st){
  var n = st.rows.length, pages = Math.max(1, Math.ceil(n / st.size));
  st.page = Math.min(Math.max(st.page, 0), pages - 1);
  var a = st.page * st.size, b = Math.min(n, a + st.size), out = [];
  for (var i = a; i < b; i++) {
    var r = st.rows[i], h = '<tr class="' + nsEsc(r[0]) + '">';
    for (var j = 1; j < r.length; j++)
      h += '<td' + (st.left[j - 1] ? ' class="l"' : '') + ' data-v="' + nsEsc(nsVal(r[j]))
        + '">' + nsEsc(nsText(r[j])) + '</td>';
    out.push(h + '</tr>');
  }
  st.table.tBodies[0].innerHTML = out.join('');
  if (st.pos) st.pos.textContent = (n ? 'rows ' + (a + 1) + '–' + b + ' of '
    + n.toLocaleString('en') : 'no rows match') + (st.rows !== st.all ? ' (filtered from '
    + st.all.length.toLocaleString('en') + ')' : '');
}
document.querySelectorAll('table[data-paged]').forEach(function(table){
  var el = document.getElementById(table.id + '-data');
  if (!el) return;
  var pager = document.querySelector('.pager[data-for="' + table.id + '"]');
  var st = {all: JSON.parse(el.textContent), page: 0, table: table,
            size: Number(table.getAttribute('data-paged')),
            left: Array.prototype.map.call(table.querySelectorAll('thead th'),
                                           function(h){ return h.classList.contains('l'); }),
            pos: pager && pager.querySelector('.pos')};
  st.rows = st.all;
  nsPaged[table.id] = st;
  if (!pager) return;
  pager.querySelectorAll('button[data-go]').forEach(function(b){
    b.addEventListener('click', function(){
      st.page += Number(b.getAttribute('data-go')); nsRender(st); });
  });
  var box = pager.querySelector('input');
  if (box) box.addEventListener('input', function(){
    var q = box.value.trim().toLowerCase();
    st.rows = !q ? st.all : st.all.filter(function(r){
      for (var j = 1; j < r.length; j++)
        if (nsText(r[j]).toLowerCase().indexOf(q) >= 0) return true;
      return false; });
    st.page = 0; nsRender(st);
  });
});
document.querySelectorAll('table.sortable thead th').forEach(function(th){
  th.addEventListener('click', function(){ nsSort(th, !th.classList.contains('sorted-asc')); });
});
// index.html#sort=COLUMN (or #sort=COLUMN-desc, e.g. #sort=acts) sorts the trials table
// (id="trials"; the first sortable table with that column when the trials table lacks it)
(function(){
  var m = location.hash.match(/sort=([^&]+)/);
  if (!m) return;
  var want = decodeURIComponent(m[1]).toLowerCase(), desc = /-desc$/.test(want);
  want = want.replace(/-desc$/, '');
  var tables = Array.prototype.slice.call(document.querySelectorAll('table.sortable'));
  tables.sort(function(a, b){ return (b.id === 'trials') - (a.id === 'trials'); });
  for (var i = 0; i < tables.length; i++) {
    var ths = tables[i].querySelectorAll('thead th');
    for (var j = 0; j < ths.length; j++) {
      var t = ths[j].textContent.trim().toLowerCase();
      if (t === want || t.split(' (')[0] === want) { nsSort(ths[j], !desc); return; }
    }
  }
})();
"""


def _figure(path: Path | None, alt: str) -> str:
    return img(path, alt, missing=f'<p class="small">({esc(alt)}: not enough data yet)</p>')


def _cell(value: Any, text: str | None = None, left: bool = False) -> str:
    v = "" if value is None else value
    cls = ' class="l"' if left else ""
    return f'<td{cls} data-v="{esc(v)}">{esc(text if text is not None else v)}</td>'


def _fmt(x: float | None, scale: float = 1.0, digits: int = 2) -> str:
    return "" if x is None else f"{x * scale:.{digits}f}"


#: Rows of the trials table written as HTML; a bigger study pages: every row is in an
#: embedded compact JSON (id="trials-data") that the page renders PAGE_ROWS at a time, sorts
#: and filters in the browser, so a 10,000-trial report stays small and quick to open.
PAGE_ROWS = 500
_TRIAL_HEADS = [("trial", True), ("strategy", True), ("s", False), ("flops (M MACs)", False),
                ("params (M)", False), ("acts (M)", False), ("px", False), ("depths", True),
                ("widths", True), ("time (ms/batch)", False), ("top-1 err (%)", False),
                ("top-5 err (%)", False), ("epochs", False), ("status", True),
                ("wall (s)", False), ("error", True), ("marks", True)]


def _trial_cells(t: TrialRow, same: dict[str, list[str]]) -> list[tuple[Any, str]]:
    """(sort value, shown text) of each column of one trial's row."""
    depths = ",".join(map(str, t.depths))
    widths = ",".join(map(str, t.widths))
    flag = timing_flag(t) if t.time_ms is not None else ""
    marks = ([f"{FLAG_MARK} {flag} timing"] if flag else []) + (
        [f"{SAME_MARK} same network as {', '.join(same[t.id])}"] if t.id in same else [])

    def c(value: Any, text: str | None = None) -> tuple[Any, str]:
        v = "" if value is None else value
        return v, str(text if text is not None else v)
    return [c(t.id), c(t.strategy), c(t.factor, f"{t.factor:g}"),
            c(t.flops, f"{t.flops / 1e6:.2f}"), c(t.params, f"{t.params / 1e6:.3f}"),
            c(t.acts, f"{t.acts / 1e6:.3f}"), c(t.resolution), c(depths), c(widths),
            c(t.time_ms, _fmt(t.time_ms) + (f" {FLAG_MARK}" if flag else "")),
            c(t.top1_err, _fmt(t.top1_err, 100)), c(t.top5_err, _fmt(t.top5_err, 100)),
            c(t.epochs_done), c(t.status), c(round(t.wall_time, 1)), c(t.error or ""),
            c("; ".join(marks))]


def _trials_table(trials: Sequence[TrialRow], page_rows: int | None = None) -> str:
    """All trials, sortable; above ``page_rows`` (default PAGE_ROWS) trials the table pages."""
    page_rows = PAGE_ROWS if page_rows is None else page_rows
    same = same_network_labels(trials)
    paged = len(trials) > page_rows
    attrs = f' data-paged="{page_rows}"' if paged else ""
    out = [f'<table class="sortable" id="trials"{attrs}><thead><tr>']
    out += [f'<th class="{"l" if left else ""}">{esc(h)}</th>' for h, left in _TRIAL_HEADS]
    out.append("</tr></thead><tbody>")
    data: list[list[str | list[str]]] = []
    for i, t in enumerate(trials):
        cells = _trial_cells(t, same)
        if paged:  # compact: a cell is its value, or [value, text] when the text differs
            row: list[str | list[str]] = [t.status]
            row += [str(v) if str(v) == txt else [str(v), txt] for v, txt in cells]
            data.append(row)
        if i >= page_rows:
            continue
        out.append(f'<tr class="{esc(t.status)}">')
        out += [_cell(v, txt, left=left) for (v, txt), (_, left) in zip(cells, _TRIAL_HEADS)]
        out.append("</tr>")
    out.append("</tbody></table>")
    if paged:
        out.append(
            f'<div class="pager" data-for="trials"><button type="button" data-go="-1">◀ '
            f'previous</button> <span class="pos">rows 1–{page_rows} of {len(trials):,}</span> '
            '<button type="button" data-go="1">next ▶</button> <label>show only rows '
            'containing <input type="search" size="24" placeholder="e.g. dWr|x8|seed3">'
            f'</label></div><p class="small">{len(trials):,} trials, {page_rows} per page: '
            "every trial is in the page (sorting and the filter apply to all of them; "
            "without JavaScript the first page shows); all of them are also in "
            "<code>trials.csv</code>.</p>"
            '<script type="application/json" id="trials-data">'
            + jsonio.dumps(data, separators=(",", ":")).replace("</", "<\\/") + "</script>")
    return "".join(out)


def _recommendation_html(trials: Sequence[TrialRow], config: dict[str, Any] | None = None,
                         data_info: dict[str, Any] | None = None) -> str:
    """The verdict box (netscale.advise, the one recommendation engine) and the groups'
    errors and runtimes with their intervals."""
    rec = study_verdict(trials, data_info=data_info, config=config)
    smoke = ('<div class="box warn"><b>Smoke test</b>: this study ran on '
             f"<code>{esc(rec.data)}</code> ({esc(rec.n_val or '?')} validation images); its "
             "accuracy verdict is not meaningful. Install Fashion-MNIST "
             "(<code>apt-get install dataset-fashion-mnist</code>) for a real answer.</div>"
             if rec.smoke_test else "")
    if rec.recommended is None:
        return smoke + f'<div class="box warn">{esc(rec.reason)}</div>'
    lvl = f"{rec.level:.0%}"
    head = "Recommended: scale by"
    tied = (f" — a tie with <code>{esc(', '.join(rec.tied))}</code>" if rec.tied
            else "")
    label = " (smoke test)" if rec.smoke_test else ""
    box = (f'<div class="box{" warn" if not rec.firm else ""}"><b>{head} '
           f"<code>{esc(rec.recommended)}</code>{label}</b>{tied} — {esc(rec.reason)}.</div>")
    rows = ['<table class="sortable" id="by-strategy"><thead><tr><th class="l">strategy</th>'
            '<th>s</th>'
            f"<th>seeds</th><th>top-1 err (%)</th><th>{lvl} interval (%)</th>"
            f"<th>time (ms/batch)</th><th>{lvl} interval (ms)</th><th class='l'>timing</th>"
            "<th>flops (M)</th><th>acts (M)</th><th>params (M)</th>"
            "<th class='l'>same network as</th></tr></thead><tbody>"]
    for g in rec.groups:
        if g.base != rec.base:
            continue
        err_iv = ("" if g.top1_err_low is None else
                  f"{_fmt(g.top1_err_low, 100)} – {_fmt(g.top1_err_high, 100)}"
                  + (" (seeds missing)" if g.seeds_missing else ""))
        t_iv = ("" if g.time_ms_low is None else
                f"{_fmt(g.time_ms_low)} – {_fmt(g.time_ms_high)}")
        rows.append("<tr>" + _cell(g.strategy, left=True) + _cell(g.factor, f"{g.factor:g}")
                    + _cell(g.n_seeds) + _cell(g.top1_err_mean, _fmt(g.top1_err_mean, 100))
                    + _cell(g.top1_err_low, err_iv) + _cell(g.time_ms, _fmt(g.time_ms))
                    + _cell(g.time_ms_low, t_iv)
                    + _cell(g.time_quality, g.time_quality + (f" {FLAG_MARK}"
                            if g.time_quality not in (None, "ok") else ""), left=True)
                    + _cell(g.flops, f"{g.flops / 1e6:.2f}")
                    + _cell(g.acts, f"{g.acts / 1e6:.3f}")
                    + _cell(g.params, f"{g.params / 1e6:.3f}")
                    + _cell(", ".join(g.same_network_as),
                            (f"{SAME_MARK} " if g.same_network_as else "")
                            + ", ".join(g.same_network_as), left=True) + "</tr>")
    rows.append("</tbody></table>")
    how = (f'<p class="small">Each row is one (strategy, factor) group: mean top-1 error of its '
           f"seeds with a {lvl} interval combining the seed spread (Student t) and the finite "
           f"validation set ({esc(rec.n_val or '?')} images, binomial); time is the median of "
           "the group's benchmark medians with the envelope of their intervals; timing "
           "'noisy'/'contended' marks flagged measurements. Strategies whose error difference "
           "to the best has an interval containing 0 are tied; the fastest of them is "
           "recommended. See docs/statistics.md.</p>")
    return smoke + box + "".join(rows) + how + _MARKS_NOTE


_MARKS_NOTE = (f'<p class="small">{FLAG_MARK} flagged timing: its spread exceeded the noise '
               "threshold (noisy) or other processes used the CPU while it was measured (busy "
               f"CPU); treat it with care. {SAME_MARK} same network: the scaled specs are "
               "identical, so the rows are one model (their difference is noise).</p>")


def _flagged_points(trials: Sequence[TrialRow]) -> set[tuple[str, float]]:
    """The (strategy, factor) points with a flagged timing; the base under 'base'."""
    return {(t.strategy, t.factor) for t in trials if t.time_ms is not None and timing_flag(t)}


def _correlations_html(trials: Sequence[TrialRow]) -> str:
    model = runtime_correlations(trials)
    if model is None or model.best_metric is None:
        return '<p class="small">(runtime was not measured, or fewer than 3 trials)</p>'
    best = model.per_metric[model.best_metric]
    rows = ["<table><thead><tr><th class='l'>metric</th><th>Pearson r</th>"
            "<th>r (log-log)</th><th>linear fit: slope</th><th>trials</th></tr></thead><tbody>"]
    for c in model.per_metric.values():
        div, unit = plots.SLOPE_UNITS.get(c.metric, (1.0, c.metric))
        r, r_log, slope = (v if math.isfinite(c.pearson_r) and math.isfinite(v) else None
                           for v in (c.pearson_r, c.loglog_r, c.slope))
        rows.append("<tr>" + _cell(c.metric, left=True)
                    + _cell(r, _fmt(r, 1, 3)) + _cell(r_log, _fmt(r_log, 1, 3))
                    + _cell(slope, "" if slope is None else f"{slope * div:.3g} ms per {unit}")
                    + _cell(c.n) + "</tr>")
    rows.append("</tbody></table>")
    return (f"<p>On this machine, <b>{esc(best.metric)}</b> predicts runtime best "
            f"(Pearson r = {best.pearson_r:.3f}).</p>" + "".join(rows))


ExtraSection = Callable[[Sequence[TrialRow], Path], str]
EXTRA_SECTIONS: list[tuple[str, ExtraSection]] = []


def register_section(title: str, fn: ExtraSection) -> None:
    """Lets other packages (e.g. scaling-law fits) add a section to every report."""
    if all(t != title for t, _ in EXTRA_SECTIONS):
        EXTRA_SECTIONS.append((title, fn))


def make_report(study_dir: str | Path, out_dir: str | Path | None = None, *,
                percent: bool | None = None) -> Path:
    """Writes ``index.html``, PNG figures and ``trials.csv``; returns the HTML path.

    ``study_dir`` may also be a results file (.csv/.json, see docs/results-format.md): the
    report then shows its groups' fits and the verdict (default ``out_dir``: FILE_report next
    to the file)."""
    study = Path(study_dir)
    source = load_source(study, percent=percent)
    out = Path(out_dir) if out_dir else source.report_dir()
    out.mkdir(parents=True, exist_ok=True)
    sweep_temp_files(out)  # temp files of a report write that a kill interrupted
    trials, config = source.trials, source.config
    atomic_write_text(out / "trials.csv", source.csv_text())
    series = series_by_strategy(trials)
    figs = {
        "error_vs_flops": plots.error_vs_flops(series, out / "error_vs_flops.png"),
        "error_vs_runtime": plots.error_vs_runtime(series, out / "error_vs_runtime.png",
                                                   flagged=_flagged_points(trials)),
        "runtime_vs_metrics": plots.runtime_vs_metrics(trials, out / "runtime_vs_metrics.png"),
        "growth": plots.growth(series, out / "growth.png"),
    }
    extra = _extra_sections(source, out)
    env: dict[str, Any] = next((t.env for t in trials if t.env), {})
    bench_env = next((t.timings[0].env for t in trials if t.bench and t.timings[0].env), {})
    status = ", ".join(f"{v} {k}" for k, v in source.counts().items() if v)
    about, verdict = _about_and_verdict(source)
    kind = "Results" if isinstance(source, ResultsFile) else "Scaling study"
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>netscale report: {esc(config.get('name', study.name))}</title><style>{_CSS}</style></head>
<body>
<h1>{kind}: {esc(config.get('name', study.name))}</h1>
<p class="sub">{esc(status)} · generated {esc(time.strftime('%Y-%m-%d %H:%M:%S'))} by netscale ·
flops are multiply-adds (1 MAC = 1 flop), batch size 1</p>
{about}
<h2>Recommendation</h2>{verdict}
<h2>Accuracy</h2><div class="grid">{_figure(figs['error_vs_flops'], 'error vs flops')}
{_figure(figs['error_vs_runtime'], 'error vs runtime')}</div>
<h2>Runtime on this machine</h2>
<p class="small">Machine: {esc(bench_env.get('cpu') or bench_env.get('device_name') or '')}
{esc(bench_env.get('device', ''))}, torch {esc(env.get('torch', ''))}, {esc(env.get('threads', ''))}
threads. Time is the median per batch of the study's benchmark setting, in ms; slopes are
ms per G multiply-adds (flops), per M params and per M activations throughout.</p>
{_correlations_html(trials)}
{_figure(figs['runtime_vs_metrics'], 'runtime vs flops, params and acts')}
<h2>How activations and parameters grow</h2>
{_figure(figs['growth'], 'growth of activations and parameters')}
{''.join(extra)}{breakdown_html(source.raw_path)}
<h2>All trials</h2><p class="small">Click a column header to sort.</p>
{_trials_table(trials)}{_MARKS_NOTE}
<p class="small">Files: <code>trials.csv</code> and the PNG figures next to this page;
raw results in <code>{esc(str(source.raw_path))}</code>.</p>
<script>{_JS}</script>
</body></html>
"""
    return atomic_write_text(out / "index.html", _wrap_tables(page))


def _extra_sections(source: StudyResults, out: Path) -> list[str]:
    """The scaling-laws section and the registered extra sections' HTML; a failing section
    says so and never breaks the report."""
    extra = []
    for title, fn in [("Scaling laws", None), *EXTRA_SECTIONS]:
        try:
            body = laws_section(source, out) if fn is None else fn(source.trials, out)
        except Exception as exc:  # a section must never break the report
            body = f'<p class="small">({esc(title)} unavailable: {esc(exc)})</p>'
        if body:
            extra.append(f"<h2>{esc(title)}</h2>{body}")
    return extra


def _about_and_verdict(source: StudyResults) -> tuple[str, str]:
    """The study's settings (or the results file's description) and the verdict box."""
    if isinstance(source, ResultsFile):
        f = source.file
        about = (f"<p>Results trained elsewhere, read from <code>{esc(f.path)}</code>: "
                 f"{f.rows} rows, groups <code>{esc(', '.join(f.groups))}</code>, "
                 f"error column <code>{esc(f.error_column)}</code> ({esc(f.error_unit)})"
                 "; each group is fitted on its own. Runtime sections below use the file's "
                 "<code>time_ms</code> values, if any.</p>")
        return about, _groups_verdict_html(source)
    config = source.config
    data = config.get("data", {})
    recipe = config.get("recipe", {})
    base_names = [b if isinstance(b, str) else str(b.get("name") or b.get("module"))
                  for b in config.get("bases", [])]  # module-factory bases are mappings
    about = (f"""<p>Bases <code>{esc(', '.join(base_names))}</code>, strategies
<code>{esc(', '.join(config.get('strategies', [])))}</code>, flops factors
<code>{esc(', '.join(f'{f:g}' for f in config.get('factors', [])))}</code>
({esc(config.get('rounding', 'exact'))} rounding).</p>
<ul class="settings"><li><b>Data</b>: {esc(describe_data(data))}</li>
<li><b>Recipe</b>: {esc(describe_recipe(recipe))}</li>
{_bench_line(config)}{_overrides_line(config)}</ul>""")
    return about, _recommendation_html(source.trials, config, source.data_info)


def _groups_verdict_html(source: ResultsFile) -> str:
    """The verdict for a results file: the groups ranked by predicted error at the largest
    flops in the file (every group listed)."""
    done = [t for t in source.trials if t.status == "done" and t.top1_err is not None]
    if not done:
        return '<div class="box warn">No rows with a top-1 error: nothing to rank.</div>'
    target = float(max(t.flops for t in done))
    try:
        rec = recommend_groups(source, f"{target:.17g}")
    except NetscaleError as exc:
        return f'<div class="box warn">No verdict: {esc(exc)}</div>'
    c = rec.chosen
    assert c.error is not None
    head = (f'<div class="box"><b>Lowest predicted top-1 error at {fmt_count(target)} flops '
            f"(the largest model in the file): <code>{esc(c.name)}</code></b> — "
            f"{c.error.text('%')} "
            f"({c.error.level:.0%} prediction interval; {esc(c.error.source)}). "
            "<code>netscale recommend FILE --target-flops 8G</code> ranks at another target "
            "and applies params / activations / latency limits.</div>")
    rows = ["<table><thead><tr><th>rank</th><th class='l'>group</th>"
            "<th>predicted error (%)</th><th>past data</th><th class='l'>verdict</th>"
            "</tr></thead><tbody>"]
    for cand in rec.candidates:
        er = cand.error
        val = "" if er is None else er.text()
        ex = "" if er is None else ("inside" if er.extrapolation <= 1 + 1e-9
                                    else f"×{er.extrapolation:.3g}")
        rows.append(f"<tr><td>{cand.rank or ''}</td><td class='l'>{esc(cand.name)}</td>"
                    f"<td>{val}</td><td>{ex}</td><td class='l'>{esc(cand.verdict)}</td></tr>")
    rows.append("</tbody></table>")
    notes = "".join(f"<li>{esc(n)}</li>" for n in rec.notes)
    return head + "".join(rows) + (f'<ul class="small">{notes}</ul>' if notes else "")


def _wrap_tables(page: str) -> str:
    """Every table scrolls inside its own box (div.tw), so that the page never overflows
    horizontally, whatever section (including registered ones) produced the table."""
    page = re.sub(r"<table\b", '<div class="tw"><table', page)
    return page.replace("</table>", "</table></div>")


def _bench_line(config: dict[str, Any]) -> str:
    b = config.get("bench") or {}
    if not b:
        return ""
    if not b.get("enabled", True):
        return "<li><b>Runtime</b>: not measured</li>"
    what = {"infer": "inference", "train": "training step", "both": "inference and training "
            "step"}.get(b.get("mode", "infer"), b.get("mode"))
    threads = f", {b['threads']} thread(s)" if b.get("threads") else ""
    return (f"<li><b>Runtime</b>: {esc(what)} time per batch of {esc(b.get('batch_size'))}, "
            f"{esc(b.get('budget'))} s measurement budget per model{esc(threads)}</li>")


def _overrides_line(config: dict[str, Any]) -> str:
    ov = config.get("overrides") or []
    if not ov:
        return ""
    return ("<li><b>Overrides</b> (<code>--set</code>): "
            + ", ".join(f"<code>{esc(o)}</code>" for o in ov) + "</li>")
