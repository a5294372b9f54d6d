"""The HTML report in a real browser (headless Chromium): it renders offline, its figures are
inlined, every sortable table sorts itself on a header click, `#sort=COLUMN` sorts the trials
table, and nothing overflows horizontally at 1280 px. CI installs Chromium (.ci/run).

The test saves a screenshot (tmp path, printed) for a person to look at."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from netscale.report.html import make_report
from netscale.study.config import load_study_config
from netscale.study.quickstart import quickstart_base
from netscale.study.runner import run_study
from netscale.study.store import Store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") \
    or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install "
                                "chromium; .ci/run installs it)")

# Appended to a copy of the report: clicks every header of every sortable table (ascending,
# then descending) and records the cells' sort keys after each click, plus the page widths.
_PROBE = """<script>
(function(){
  var out = {scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
             bodyScrollWidth: document.body.scrollWidth, tables: []};
  function key(c){ if (!c) return ''; var v = c.getAttribute('data-v');
                   return (v === null ? c.textContent : v).trim(); }
  document.querySelectorAll('table.sortable').forEach(function(t, ti){
    var heads = t.querySelectorAll('thead th'), tab = {id: t.id, index: ti, columns: []};
    heads.forEach(function(th, col){
      var rec = {header: th.textContent.trim(), col: col};
      th.click();
      rec.asc = Array.prototype.map.call(t.tBodies[0].rows,
                                         function(r){return key(r.cells[col]);});
      rec.ascClass = th.className;
      th.click();
      rec.desc = Array.prototype.map.call(t.tBodies[0].rows,
                                          function(r){return key(r.cells[col]);});
      rec.descClass = th.className;
      tab.columns.push(rec);
    });
    out.tables.push(tab);
  });
  out.images = Array.prototype.map.call(document.querySelectorAll('img'), function(im){
    return {name: im.getAttribute('data-name'), natural: im.naturalWidth,
            shown: im.getBoundingClientRect().width};});
  var pre = document.createElement('pre'); pre.id = 'probe';
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
})();
</script>"""


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--no-first-run", "--disable-extensions", "--hide-scrollbars", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=400, check=False)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained study (several sortable tables: recommendation and trials) on digits."""
    tmp = tmp_path_factory.mktemp("browser")
    quickstart_base(resolution=16).save(tmp / "base.yaml")
    raw = {"name": "browser", "out": "out", "bases": ["base.yaml"],
           "strategies": ["d", "w", "dWr"], "factors": [1, 2, 4],
           "data": {"name": "digits", "subset": 300, "val_subset": 200},
           "recipe": {"epochs": 1, "batch_size": 64, "lr": 0.1, "warmup_epochs": 0,
                      "threads": 1},
           "bench": {"enabled": True, "mode": "infer", "batch_size": 2, "budget": 0.2}}
    (tmp / "study.yaml").write_text(yaml.safe_dump(raw))
    cfg = load_study_config(tmp / "study.yaml")
    run_study(cfg, stream=None)
    with Store(cfg.out_dir / "results.sqlite") as store:  # one flagged timing to mark
        t = next(t for t in store.trials() if t.factor == 4 and t.strategy == "d")
        store.record_bench(t.id, [{**b, "noisy": True, "time_quality": "noisy"} for b in t.bench],
                           t.time_ms)
    import matplotlib.figure
    from matplotlib.text import Text

    save = matplotlib.figure.Figure.savefig

    def recording(fig, fname, *a, **kw):  # type: ignore[no-untyped-def]
        dpi = kw.get("dpi") or fig.dpi
        sizes = [t.get_fontsize() * dpi / 72 for t in fig.findobj(Text)
                 if t.get_text().strip() and t.get_visible()]
        name = Path(str(getattr(fname, "name", fname))).name
        # an atomic write's temp file (.NAME.netscale-XXXXXXXX.tmp) becomes NAME
        name = re.sub(r"^\.(.+)\.netscale-[A-Za-z0-9_]{8}\.tmp$", r"\1", name)
        TEXT_PX[name] = min(sizes)
        return save(fig, fname, *a, **kw)

    matplotlib.figure.Figure.savefig = recording  # type: ignore[method-assign]
    try:
        return make_report(cfg.out_dir)
    finally:
        matplotlib.figure.Figure.savefig = save  # type: ignore[method-assign]


TEXT_PX: dict[str, float] = {}  # figure file -> smallest text in px at the figure's size


def _is_num(x: str) -> bool:
    return bool(re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", x))


def _cmp(x: str, y: str) -> int:
    """The page's order: numbers numerically, other values by code point, empty cells last."""
    if x == "" or y == "":
        return 0 if (x == "") == (y == "") else (1 if x == "" else -1)
    if _is_num(x) and _is_num(y):
        return (float(x) > float(y)) - (float(x) < float(y))
    return (x > y) - (x < y)


def _ordered(values: list[str], asc: bool) -> bool:
    filled = [v for v in values if v != ""]
    if values != filled + [""] * (len(values) - len(filled)):
        return False  # empty cells last in both directions
    sign = 1 if asc else -1
    return all(sign * _cmp(a, b) <= 0 for a, b in itertools.pairwise(filled))


def _column(dom: str, table_id: str, header: str) -> list[str]:
    """The data-v keys of the column whose header starts with `header`, in DOM order."""
    table = dom[dom.index(f'id="{table_id}"'):]
    table = table[:table.index("</table>")]
    heads = [re.sub(r"<[^>]+>", "", h).strip()
             for h in re.findall(r"<th[^>]*>(.*?)</th>", table, re.S)]
    col = next(i for i, h in enumerate(heads) if h.split(" (")[0] == header)
    body = table[table.index("<tbody>"):]
    return [re.findall(r'<td[^>]*data-v="([^"]*)"', row)[col]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


_PROBED: dict[str, dict] = {}


def _probe(report: Path, tmp_path: Path) -> dict:
    """The probe's result (run once per report: clicking every header is the same each time)."""
    if str(report) not in _PROBED:
        _PROBED[str(report)] = _run_probe(report)
    return _PROBED[str(report)]


def _run_probe(report: Path) -> dict:
    page = report.read_text().replace("</body>", _PROBE + "</body>")
    probed = report.parent / "probe.html"  # next to the report: same relative resources
    probed.write_text(page)
    try:
        dom = _chromium("--window-size=1280,2000", "--dump-dom", probed.as_uri()).stdout
    finally:
        probed.unlink()
    m = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert m, dom[-2000:]
    import html

    return json.loads(html.unescape(m.group(1)))


def test_report_renders_in_chromium(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    r = _chromium(f"--screenshot={shot}", "--window-size=1280,2400", report.as_uri())
    assert shot.is_file() and shot.stat().st_size > 20_000, r.stderr[-2000:]
    print(f"screenshot of the report: {shot}")
    from PIL import Image

    with Image.open(shot) as im:
        colours = im.convert("RGB").resize((64, 120)).getcolors(64 * 120)
    assert colours is not None and len(colours) > 20  # text, tables and plots, not a blank page
    plain = _chromium("--dump-dom", report.as_uri()).stdout
    assert "Recommendation" in plain and plain.count("data:image/png;base64,") >= 4


def test_every_header_of_every_table_sorts_its_own_column(report: Path,
                                                          tmp_path: Path) -> None:
    probe = _probe(report, tmp_path)
    tables = probe["tables"]
    ids = [t["id"] for t in tables]
    # the trials table is not the first sortable table: its columns must not be offset
    assert len(tables) >= 2 and "trials" in ids and ids.index("trials") > 0, ids
    checked = 0
    for t in tables:
        for c in t["columns"]:
            where = f"table {t['index']} ({t['id'] or 'no id'}), column {c['header']!r}"
            assert _ordered(c["asc"], True), (where, c["asc"])
            assert _ordered(c["desc"], False), (where, c["desc"])
            assert "sorted-asc" in c["ascClass"] and "sorted-desc" in c["descClass"], where
            checked += 1
    assert checked == sum(len(t["columns"]) for t in tables) >= 20


def test_hash_sorts_the_trials_table(report: Path) -> None:
    plain = _chromium("--dump-dom", report.as_uri()).stdout
    unsorted = [float(v) for v in _column(plain, "trials", "acts")]
    asc = [float(v) for v in _column(_chromium("--dump-dom", report.as_uri() + "#sort=acts")
                                     .stdout, "trials", "acts")]
    desc_dom = _chromium("--dump-dom", report.as_uri() + "#sort=flops-desc").stdout
    desc = [float(v) for v in _column(desc_dom, "trials", "flops")]
    assert len(asc) == 7 and sorted(unsorted) == asc and asc != unsorted
    assert desc == sorted(desc, reverse=True)
    top1 = _column(_chromium("--dump-dom", report.as_uri() + "#sort=top-1 err").stdout,
                   "trials", "top-1 err")
    assert _ordered(top1, True) and len(top1) == 7


def test_no_horizontal_overflow_at_1280px(report: Path, tmp_path: Path) -> None:
    probe = _probe(report, tmp_path)
    assert probe["innerWidth"] == 1280
    assert probe["scrollWidth"] <= 1280 and probe["bodyScrollWidth"] <= 1280, probe


def test_plot_text_is_legible_at_the_displayed_size(report: Path, tmp_path: Path) -> None:
    """Every text of every figure is >= 10 px as the page shows it at 1280 px (native text
    size x displayed width / natural width)."""
    probe = _probe(report, tmp_path)
    shown = {im["name"]: im["shown"] / im["natural"] for im in probe["images"] if im["name"]}
    assert len(shown) >= 6 and set(shown) <= set(TEXT_PX), (shown, TEXT_PX)
    for name, scale in shown.items():
        assert TEXT_PX[name] * scale >= 10.0, (name, TEXT_PX[name], scale)


def test_marks_header_and_base_rows(report: Path) -> None:
    dom = _chromium("--dump-dom", report.as_uri()).stdout
    head = dom[:dom.index("<h2>")]
    assert "Data</b>: digits: 300 training images (random subset), 200 validation images" in head
    assert "Recipe</b>: batch 64, 1 epoch, learning rate 0.1, 1 thread(s) per trial" in head
    assert '{"' not in head  # readable text, not raw JSON
    trials = dom[dom.index('id="trials"'):]
    trials = trials[:trials.index("</table>")]
    # the flagged timing is marked (contended wins over noisy in its time_quality)
    assert re.search(r"⚑ (noisy|busy CPU)(, busy CPU)? timing", trials)
    # w and dWr at x2 round to the same network for this base: marked as identical
    assert "≡ same network as" in trials
    model_tables = [t for t in re.findall(r"<table.*?</table>", dom, re.S)
                    if re.search(r"<th[^>]*>strategy</th>", t)]
    assert len(model_tables) >= 4  # by strategy, laws, laws recommendation, all trials
    for table in model_tables:  # the base (s = 1) in every table of models
        if "<tbody>" in table:
            assert re.search(r">base( \(s = 1\))?<", table), table[:300]
    runtime = re.sub(r"<[^>]+>", " ", dom.split("Runtime on")[1].split("<h2>")[0])
    assert "ms per G multiply-adds" in runtime and "e-0" not in runtime  # one unit, no 3.5e-08
