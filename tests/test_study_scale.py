"""Studies that scale: a big study's report pages its trials table (every trial id reachable
in the embedded data) and aggregates its plots; a 2,000-trial study goes through report, fit,
recommend and export with the same verdict and fits as a per-row computation.
No timing here: the speed figures live in benchmarks/bench_study_scale.py."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from netscale.report import html as report_html
from netscale.report import plots
from netscale.report.fragments import esc
from netscale.study.store import Store
from netscale_fixtures.synthetic import synthetic_study

ALL = ("d", "w", "r", "dw", "dr", "wr", "dwr", "dWr")


def _trials(d: Path) -> list:
    with Store(d / "results.sqlite", readonly=True) as s:
        return s.trials()


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """45 trials: 4 strategies x factors 1, 2, 4 x 5 seeds (base shared), one failed."""
    d = tmp_path_factory.mktemp("small")
    return synthetic_study(d, strategies=("d", "w", "dwr", "dWr"), factors=(1, 2, 4),
                           seeds=range(5), failed=("QuickNetY|d|x2|seed3",))


def _table(page: str) -> str:
    t = page[page.index('id="trials"'):]
    return t[:t.index("</table>")]


def test_report_pages_the_trials_table_and_every_trial_is_in_it(
        small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trials = _trials(small)
    assert len(trials) == 45
    monkeypatch.setattr(report_html, "PAGE_ROWS", 10)
    page = report_html.make_report(small, tmp_path / "r").read_text()
    table = _table(page)
    assert 'data-paged="10"' in page
    rows = re.findall(r"<tr class=\"([a-z]+)\">(.*?)</tr>", table, re.S)
    assert len(rows) == 10  # the first page only, as HTML
    assert 'class="pager" data-for="trials"' in page and "rows 1–10 of 45" in page
    m = re.search(r'<script type="application/json" id="trials-data">(.*?)</script>', page,
                  re.S)
    assert m
    data = json.loads(m.group(1))
    ids = [r[1] if isinstance(r[1], str) else r[1][0] for r in data]
    assert sorted(ids) == sorted(t.id for t in trials) and len(set(ids)) == 45
    assert [r[0] for r in data] == [t.status for t in trials]
    assert sum(r[0] == "failed" for r in data) == 1
    # the embedded cells are the ones the HTML rows show: value (data-v) and text
    for (status, cells_html), row in zip(rows, data):
        assert status == row[0]
        cells = re.findall(r'<td[^>]*data-v="([^"]*)">([^<]*)</td>', cells_html)
        assert len(cells) == len(row) - 1 == len(report_html._TRIAL_HEADS)
        for (v, text), c in zip(cells, row[1:]):
            want = (c, c) if isinstance(c, str) else tuple(c)
            assert (v, text) == tuple(esc(x) for x in want)
    assert "nsRender" in page and "nsPaged" in page  # the paging script


def test_small_trials_table_is_not_paged(small: Path) -> None:
    table = report_html._trials_table(_trials(small))
    assert "data-paged" not in table and "trials-data" not in table
    assert table.count("<tr class=") == 45


def test_paged_table_escapes_what_would_end_its_script() -> None:
    tr = _trials_for_escape()
    out = report_html._trials_table(tr, page_rows=0)
    body = out[out.index('id="trials-data">'):]
    assert "</script>" not in body[:-len("</script>")]
    data = json.loads(body[len('id="trials-data">'):-len("</script>")])
    assert data[0][16] == "</script><b>x" or data[0][16][1] == "</script><b>x"


def _trials_for_escape() -> list:
    from netscale.study.store import TrialRow

    return [TrialRow(id="a|b|x1|seed0", base="a", strategy="base", factor=1.0, seed=0,
                     status="failed", attempts=1, failures=1, spec={"stages": []}, flops=1,
                     params=1, acts=1, resolution=32, error="</script><b>x")]


def test_runtime_plot_of_a_big_study_draws_one_marker_per_model(
        small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trials = _trials(small)
    timed = [t for t in trials if t.time_ms is not None]
    models = {(t.strategy, t.factor) for t in timed}
    assert len(timed) == 45 and len(models) == 9

    counted: list[int] = []

    def count(fig, path, **kw):  # type: ignore[no-untyped-def]
        for ax in fig.axes:
            counted.append(sum(len(c.get_offsets()) for c in ax.collections
                               if hasattr(c, "get_offsets")))
        return path

    monkeypatch.setattr(plots, "atomic_savefig", count)
    plots.runtime_vs_metrics(trials, tmp_path / "all.png")
    assert counted == [45, 45, 45]  # under MAX_MARKERS: every trial (rings would add more)
    counted.clear()
    monkeypatch.setattr(plots, "MAX_MARKERS", 20)
    plots.runtime_vs_metrics(trials, tmp_path / "agg.png")
    assert counted == [9, 9, 9]  # one marker per (strategy, factor)

    groups, flags = plots.aggregate_timed(timed, [False] * len(timed))
    assert len(groups) == 9 and sum(g.n for g in groups) == 45 and not any(flags)
    g = next(g for g in groups if (g.strategy, g.factor) == ("dWr", 4.0))
    times = sorted(t.time_ms for t in timed if (t.strategy, t.factor) == ("dWr", 4.0))
    assert g.n == 5 and g.time_ms == times[2]  # the median of its 5 seeds


def test_factor_labels_are_bounded() -> None:
    assert plots.factor_labels(5) == {0, 1, 2, 3, 4}
    big = plots.factor_labels(100)
    assert len(big) == plots.MAX_FACTOR_LABELS and {0, 99} <= big


# --------------------------------------------------------------------------------------------
# 2,000 trials end to end
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2,000 trials: 8 strategies x factors 1, 2, 4, 8 x 80 seeds (25 trials a seed)."""
    d = tmp_path_factory.mktemp("big")
    synthetic_study(d, strategies=ALL, factors=(1, 2, 4, 8), seeds=range(80))
    return d


def test_big_study_store(big: Path) -> None:
    with Store(big / "results.sqlite", readonly=True) as s:
        assert s.counts() == {"pending": 0, "running": 0, "done": 2000, "failed": 0}
        n_epochs = s.conn.execute("SELECT COUNT(*) FROM epochs").fetchone()[0]
        n_attempts = s.conn.execute("SELECT COUNT(*) FROM attempts WHERE outcome = 'ok'"
                                    ).fetchone()[0]
        idx = {r[0] for r in s.conn.execute("SELECT name FROM sqlite_master WHERE "
                                            "type = 'index'")}
    assert n_epochs == 6000 and n_attempts == 2000
    assert "attempts_by_trial" in idx


def test_big_study_verdict_and_fits_unchanged(big: Path) -> None:
    """The verdict and the fitted laws of the 2,000-trial study are those the code gave before
    the fits worked per distinct x (recorded with it: dwr at x8, alone; b and c per strategy
    at the precision the CLI prints)."""
    from netscale.advise import verdict_for_study_dir
    from netscale.advise.sources import load_study
    from netscale.advise.study_fits import fit_study

    v = verdict_for_study_dir(big)
    assert (v.recommended, list(v.tied), v.factor) == ("dwr", [], 8.0)
    fits = fit_study(load_study(big).trials)
    got = {k: (f.report.best, round(f.report.best_fit.b, 3), round(f.report.best_fit.c, 4))
           for k, f in fits.fits.items() if f.report is not None}
    assert got == {"d": ("saturating", 0.335, 0.1151), "dWr": ("saturating", 0.481, 0.0697),
                   "dr": ("saturating", 0.369, 0.0714), "dw": ("saturating", 0.391, 0.0753),
                   "dwr": ("saturating", 0.499, 0.0696), "r": ("saturating", 0.28, 0.1362),
                   "w": ("saturating", 0.341, 0.0844), "wr": ("saturating", 0.421, 0.0796)}
    assert all(f.report is not None and f.report.best_fit.loo_rmse_log is not None
               for f in fits.fits.values())  # leave-one-out on a subset of 320 points


def test_big_study_report_recommend_export(big: Path, tmp_path: Path) -> None:
    from netscale.advise.recommend import recommend

    page = report_html.make_report(big, tmp_path / "report").read_text()
    assert "Recommended: scale by <code>dwr</code>" in page
    assert f'data-paged="{report_html.PAGE_ROWS}"' in page
    table = _table(page)
    assert table.count("<tr class=") == report_html.PAGE_ROWS
    data = json.loads(re.search(r'id="trials-data">(.*?)</script>', page, re.S).group(1))
    assert len(data) == 2000
    with (tmp_path / "report" / "trials.csv").open() as f:
        assert sum(1 for _ in csv.DictReader(f)) == 2000

    rec = recommend(str(big), "8x")  # a trained factor: the study's verdict
    assert (rec.recommended, rec.tied) == ("dwr", [])

    with Store(big / "results.sqlite", readonly=True) as s:
        rows = list(csv.DictReader(io.StringIO(s.export("csv"))))
        js = json.loads(s.export("json"))
    assert len(rows) == len(js) == 2000
    assert {r["id"] for r in rows} == {r["id"] for r in js}
    assert all(len(r["epochs"]) == 3 for r in js)


_PAGER_PROBE = """<script>
(function(){
  var t = document.getElementById('trials'), out = {};
  function col(i){ return Array.prototype.map.call(t.tBodies[0].rows,
    function(r){ return r.cells[i].getAttribute('data-v'); }); }
  out.page1 = col(0);
  var next = document.querySelector('.pager button[data-go="1"]');
  next.click(); out.page2 = col(0);
  next.click(); next.click(); next.click(); next.click(); out.last = col(0);
  out.pos = document.querySelector('.pager .pos').textContent;
  var th = t.querySelectorAll('thead th')[3]; th.click(); th.click(); out.flopsDesc = col(3);
  var box = document.querySelector('.pager input');
  box.value = '|seed3'; box.dispatchEvent(new Event('input')); out.filtered = col(0);
  var pre = document.createElement('pre'); pre.id = 'probe';
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
})();
</script>"""


def test_paged_table_in_chromium(small: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Next pages through every trial; a header click sorts all trials (not only the page);
    the filter box searches all of them."""
    import shutil
    import subprocess

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("needs Chromium (apt-get install chromium; .ci/run installs it)")
    monkeypatch.setattr(report_html, "PAGE_ROWS", 10)
    page = report_html.make_report(small, tmp_path / "r")
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text().replace("</body>", _PAGER_PROBE + "</body>"))
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                          "--disable-dev-shm-usage", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=300, check=False).stdout
    m = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert m, dom[-2000:]
    import html

    out = json.loads(html.unescape(m.group(1)))
    trials = _trials(small)
    ids = [t.id for t in trials]
    assert out["page1"] == ids[:10] and out["page2"] == ids[10:20]
    assert out["last"] == ids[40:] and out["pos"] == "rows 41–45 of 45"  # stops at the end
    flops = sorted((t.flops for t in trials), reverse=True)
    assert [int(v) for v in out["flopsDesc"]] == flops[:10]  # sorted over all 45 trials
    assert sorted(out["filtered"]) == sorted(i for i in ids if i.endswith("|seed3"))


def test_leave_one_out_holds_out_evenly_spread_points_above_the_cap(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Up to the cap every point is held out once; above it, the cap's evenly spread points
    are, each refit on all the others: the same as exact leave-one-out restricted to them."""
    import numpy as np

    from netscale.laws import fit as lawfit

    rng = np.random.default_rng(3)
    x = np.repeat([1e6, 2e6, 4e6, 8e6, 16e6], 8)  # 5 models x 8 seeds
    y = (0.1 + 0.5 * (x / 1e6) ** -0.4) * np.exp(rng.normal(0, 0.03, x.size))
    x_ref = float(np.exp(np.mean(np.log(x))))
    prob = lawfit._Problem("saturating", np.log(x / x_ref), lawfit.DEFAULT_HUBER_SCALE)
    theta = prob.solve_best(y, prob.starts(y)[None])[0]

    def held_out_error(i: int) -> float:  # one refit without point i, its log error at i
        mask = np.ones(x.size)
        mask[i] = 0.0
        alt = prob.starts(y)[[4]]
        th = prob.full(prob.solve_best(y[None], np.stack([theta[None], alt], axis=1),
                                       mask[None]))[0]
        pred = th[0] * np.exp(-th[1] * prob.logxn[i]) + th[2]
        return float(np.log(pred) - np.log(y[i]))

    exact = lawfit._loo(prob, y, theta)
    assert exact == pytest.approx(
        np.sqrt(np.mean([held_out_error(i) ** 2 for i in range(x.size)])), rel=1e-6)
    monkeypatch.setattr(lawfit, "LOO_MAX_HELD_OUT", 7)
    held = [0, 6, 13, 20, 26, 32, 39]  # 7 evenly spread of 40 (rounded half to even)
    assert lawfit._loo(prob, y, theta) == pytest.approx(
        np.sqrt(np.mean([held_out_error(i) ** 2 for i in held])), rel=1e-6)
