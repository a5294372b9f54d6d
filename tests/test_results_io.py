"""Results trained elsewhere: CSV/JSON import, `fit --at/--noise`, recommend, report and
`bench --fit --from` on files (netscale.advise.results_io, netscale.advise.groups)."""

from __future__ import annotations

import json
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pytest

from netscale.advise.results_io import load_source
from netscale.advise.study_fits import fit_study
from netscale.complexity import complexity_totals
from netscale.errors import NetscaleError
from netscale.laws.fit import FitOptions, fit_law
from netscale.specs import resolve_spec

# two exact laws err = a·x^(−b) + c (x in multiply-adds); A is better at large flops
TRUTH = {"A": (2000.0, 0.45, 0.15), "B": (300.0, 0.35, 0.20)}
SIZES = [1e8, 2e8, 4e8, 8e8, 1.6e9, 3.2e9]


def law(group: str, x: float) -> float:
    a, b, c = TRUTH[group]
    return a * x ** (-b) + c


def write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture
def exact_csv(tmp_path: Path) -> Path:
    rows = [f"{g},{x:.6g},{100 * law(g, x):.10f}" for g in TRUTH for x in SIZES]
    return write_csv(tmp_path / "exact.csv", "group,flops,top1_err_pct", rows)


# --------------------------------------------------------------------------------------------
# import: column forms
# --------------------------------------------------------------------------------------------


def test_csv_flops_percent_and_fraction_give_the_same_rows(tmp_path, exact_csv):
    pct = load_source(exact_csv)
    rows = [f"{g},{x:.6g},{law(g, x):.12f}" for g in TRUTH for x in SIZES]
    frac = load_source(write_csv(tmp_path / "f.csv", "group,flops,top1_err", rows))
    assert len(pct.trials) == len(frac.trials) == 12
    for a, b in zip(pct.trials, frac.trials):
        assert (a.strategy, a.flops, a.status) == (b.strategy, b.flops, "done")
        assert a.top1_err == pytest.approx(b.top1_err, abs=1e-11)
    assert pct.trials[0].top1_err == pytest.approx(law("A", 1e8), abs=1e-11)
    assert pct.file.error_unit == "percent"
    assert frac.file.error_unit == "fraction"
    # the same per-group fits as a study would get
    fits = fit_study(pct.trials, n_boot=20)
    assert set(fits.fits) == {"A", "B"}
    assert all(f.n_points == 6 and f.report.best == "saturating" for f in fits.fits.values())


def test_csv_model_column_is_counted_analytically(tmp_path):
    names = ["RegNetX-200MF", "RegNetX-400MF", "RegNetX-800MF"]
    rows = [f"X,{n},{e}" for n, e in zip(names, (31.088, 27.382, 24.846))]
    st = load_source(write_csv(tmp_path / "m.csv", "group,model,top1_err_pct", rows))
    for t, n in zip(st.trials, names):
        f, p, a = astuple(complexity_totals(resolve_spec(n)))
        assert (t.flops, t.params, t.acts) == (f, p, a)  # exact integer counts
        assert t.spec["name"] == n and t.resolution == 224
    assert st.trials[0].top1_err == pytest.approx(0.31088)
    assert st.file.counted_models == sorted(names)


def test_csv_flops_suffixes_and_model_fills_params(tmp_path):
    rows = ["X,RegNetX-200MF,0.2G,0.31", "X,,400M,0.27", "X,,8e8,0.25"]
    st = load_source(write_csv(tmp_path / "s.csv", "group,model,flops,top1_err_frac", rows))
    assert [t.flops for t in st.trials] == [2e8, 4e8, 8e8]  # flops wins over the model
    assert st.trials[0].params == complexity_totals(resolve_spec("RegNetX-200MF")).params
    assert st.trials[1].params == 0  # no model, no params column


@pytest.mark.parametrize("form", ["flops_frac", "model_pct", "wrapped"])
def test_json_import(tmp_path, form):
    if form == "flops_frac":
        data = [{"group": g, "flops": x, "top1_err": law(g, x), "seed": 1, "epochs": 90}
                for g in TRUTH for x in SIZES]
    elif form == "model_pct":
        data = [{"group": "Y", "model": m, "top1_err_pct": e} for m, e in
                (("RegNetY-200MF", 29.658), ("RegNetY-400MF", 25.898),
                 ("RegNetY-800MF", 23.684))]
    else:
        data = {"results": [{"strategy": "w", "flops": "1G", "top1_err": 0.3}]}
    p = tmp_path / "r.json"
    p.write_text(json.dumps(data))
    st = load_source(p)
    if form == "flops_frac":
        assert len(st.trials) == 12 and st.trials[0].seed == 1
        assert st.trials[0].epochs_done == 90
        assert st.trials[0].top1_err == law("A", 1e8)
    elif form == "model_pct":
        assert st.trials[1].flops == complexity_totals(resolve_spec("RegNetY-400MF")).flops
        assert st.trials[1].top1_err == pytest.approx(0.25898)
    else:
        assert st.trials[0].strategy == "w" and st.trials[0].flops == 1e9


def test_percent_flag_and_rows_without_results(tmp_path):
    rows = ["A,1e8,40", "A,2e8,35", "A,4e8,31", "A,8e8,"]
    p = write_csv(tmp_path / "p.csv", "group,flops,top1_err", rows)
    st = load_source(p, percent=True)
    assert [t.top1_err for t in st.trials[:3]] == pytest.approx([0.40, 0.35, 0.31])
    assert st.trials[3].status == "pending" and st.trials[3].top1_err is None
    fits = fit_study(st.trials, n_boot=10)
    assert fits.fits["A"].missing == 1  # listed, not silently dropped
    assert any("without a result" in n for n in fits.fits["A"].notes)


def test_study_export_csv_round_trips(tmp_path):
    """A study's own `--export csv` is a results file: same fits as the study."""
    from netscale.study.store import Store
    from netscale_fixtures.synthetic import synthetic_study

    d = synthetic_study(tmp_path / "s", strategies=("dWr", "w"), factors=(1, 2, 4, 8))
    with Store(d / "results.sqlite") as s:
        (tmp_path / "export.csv").write_text(s.export("csv"))
        trials = s.trials()
    a = fit_study(trials, n_boot=20)
    b = fit_study(load_source(tmp_path / "export.csv").trials, n_boot=20)
    assert set(a.fits) == set(b.fits) == {"dWr", "w"}
    for k in a.fits:
        assert a.fits[k].n_points == b.fits[k].n_points == 4  # the shared base included
        assert b.fits[k].report.best_fit.b == pytest.approx(a.fits[k].report.best_fit.b)


# --------------------------------------------------------------------------------------------
# bad files: one-line errors
# --------------------------------------------------------------------------------------------


BAD = [
    ("empty.csv", "", "is empty"),
    ("head.csv", "group,flops,top1_err\n", "has a header but no rows"),
    ("nogroup.csv", "flops,top1_err\n1e8,0.3\n", "no 'group' column"),
    ("noflops.csv", "group,top1_err\nA,0.3\n", "no 'flops' (multiply-adds) or 'model'"),
    ("noerr.csv", "group,flops\nA,1e8\n", "no top-1 error column"),
    ("nan.csv", "group,flops,top1_err\nA,lots,0.3\n", "flops = 'lots' is not a number"),
    ("errnan.csv", "group,flops,top1_err\nA,1e8,abc\n", "top1_err = 'abc' is not a number"),
    ("unknown.csv", "group,model,top1_err\nA,ResNot-9000,0.3\n", "cannot count model"),
    ("ambig.csv", "group,flops,top1_err\nA,1e8,29.7\n", "looks like percent"),
    ("pctfrac.csv", "group,flops,top1_err_pct\nA,1e8,0.3\nA,2e8,0.25\n",
     "declared percent but every value is <= 1"),
    ("two.csv", "group,flops,top1_err,top1_err_pct\nA,1e8,0.3,30\n", "several top-1 error"),
    ("neg.csv", "group,flops,top1_err\nA,-5,0.3\n", "flops must be positive"),
    ("nogroupval.csv", "group,flops,top1_err\n,1e8,0.3\n", "empty group"),
    ("bad.json", "{not json", "not valid JSON"),
    ("obj.json", '{"a": 1}', "expected a list of result objects"),
    ("emptylist.json", "[]", "has no rows"),
    ("rows.json", "[1, 2]", "row 1 is not an object"),
    ("notes.txt", "x", "neither a study directory nor a results file"),
]


@pytest.mark.parametrize("name,text,msg", BAD, ids=[b[0] for b in BAD])
def test_bad_files_one_line_error(tmp_path, run_cli, name, text, msg):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(NetscaleError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        load_source(p)
    code, out, err = run_cli("fit", p)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and msg in err and "Traceback" not in err


def test_percent_flag_conflicts(tmp_path, run_cli):
    p = write_csv(tmp_path / "c.csv", "group,flops,top1_err_frac", ["A,1e8,0.3"])
    code, _, err = run_cli("fit", p, "--percent")
    assert code == 2 and "says fraction but --percent was given" in err
    assert err.count("\n") == 1
    p = write_csv(tmp_path / "d.csv", "group,flops,top1_err_pct", ["A,1e8,30"])
    with pytest.raises(NetscaleError, match="says percent but --fraction"):
        load_source(p, percent=False)
    code, _, err = run_cli("fit", tmp_path / "missing.csv")
    assert code == 2 and "does not exist" in err


# --------------------------------------------------------------------------------------------
# fit --at on known laws
# --------------------------------------------------------------------------------------------


def test_fit_at_predicts_known_truth(run_cli, exact_csv):
    at = [6.4e9, 1.28e10]  # x2 and x4 past the largest fitted model
    code, out, err = run_cli("fit", exact_csv, "--at", "6.4G,12.8G", "--json")
    assert code == 0, err
    preds = json.loads(out)["predictions"]
    assert preds["units"] == {"error": "fraction", "flops": "multiply-adds"}
    for g in TRUTH:
        rows = preds["groups"][g]["predictions"]
        assert [r["x"] for r in rows] == at
        for r, x in zip(rows, at):
            truth = law(g, x)
            assert r["value"] == pytest.approx(truth, abs=2e-4)  # exact data: tight
            assert r["lo"] <= truth <= r["hi"]
            assert r["extrapolation"] == pytest.approx(x / 3.2e9)
            assert r["warning"] is None  # not past x4
    code, out, _ = run_cli("fit", exact_csv, "--at", "64G")
    assert code == 0
    assert "errors in percentage points" in out
    assert "warning: A at 64G: more than x4 past the fitted sizes" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("A ") and "64G" in ln)
    assert f"{100 * law('A', 6.4e10):.2f}" in line and "x20" in line


def test_fit_table_is_in_points(run_cli, exact_csv):
    code, out, _ = run_cli("fit", exact_csv)
    assert code == 0
    assert "all errors in percentage points (pts)" in out
    assert "c [CI] (pts)" in out and "RMSE (pts)" in out
    row = next(ln for ln in out.splitlines() if ln.startswith("A "))
    assert " 15.00 [" in row  # c = 0.15 shown as 15.00 points, not 0.15


def test_c_interval_never_exceeds_lowest_error():
    rng = np.random.default_rng(3)
    x = np.array([1e8, 2e8, 4e8, 8e8, 1.6e9])
    for k in range(12):
        # curves that flatten fast: c sits near the lowest error
        y = (0.05 * (x / 1e8) ** -1.5 + 0.2) * np.exp(rng.normal(0, 0.01, x.size))
        f = fit_law(x, y, "saturating", FitOptions(n_boot=100, seed=k))
        lo, hi = f.intervals["c"]
        assert 0 <= lo <= f.c <= hi <= y.min()
        assert f.param_interval("c")[1] <= y.min()


def test_noise_floor_widens_intervals_of_exact_power_law(tmp_path, run_cli):
    # 3 points of an exact power law: residuals ~0, so intervals collapse without --noise
    rows = [f"P,{x:.6g},{0.9 * (x / 1e6) ** -0.2:.12f}" for x in (1e8, 2e8, 4e8)]
    p = write_csv(tmp_path / "p.csv", "group,flops,top1_err", rows)
    width = {}
    for noise in (None, "1pt"):
        args = ["fit", p, "--at", "4e8", "--json"] + (["--noise", noise] if noise else [])
        code, out, err = run_cli(*args)
        assert code == 0, err
        d = json.loads(out)
        r = d["predictions"]["groups"]["P"]["predictions"][0]
        width[noise] = r["hi"] - r["lo"]
        assert d["predictions"]["groups"]["P"]["fallback_power"] is True
    assert width[None] < 0.002
    assert width["1pt"] >= 2 * 1.5 * 0.01  # about ±1.96 points at a known 1-point noise
    code, out, _ = run_cli("fit", p, "--at", "8e8", "--noise", "0.01")
    assert code == 0 and "known noise 1.00 points" in out
    assert "underpredicts" in out  # the 3-point power-law fallback says so


@pytest.mark.parametrize("text,want", [("0.3pt", 0.003), ("0.5%", 0.005), ("0.004", 0.004),
                                       ("1 pts", 0.01)])
def test_parse_noise(text, want):
    from netscale.cli.laws import parse_noise

    assert parse_noise(text) == pytest.approx(want)


@pytest.mark.parametrize("text", ["0.3", "abc", "20pt", "-1pt"])
def test_parse_noise_refuses(text, run_cli, exact_csv):
    code, _, err = run_cli("fit", exact_csv, "--noise", text)
    assert code == 2 and err.count("\n") == 1 and "--noise" in err


# --------------------------------------------------------------------------------------------
# recommend and report over imported groups
# --------------------------------------------------------------------------------------------


def test_recommend_ranks_groups_and_lists_every_group(tmp_path, run_cli):
    per = {"A": 100, "B": 1000}  # flops per parameter
    rows = [f"{g},{x:.6g},{law(g, x):.10f},{x / per[g]:.6g}" for g in TRUTH for x in SIZES]
    rows += ["C,1e8,0.5,1e6", "C,2e8,0.45,2e6"]  # too few points to fit
    p = write_csv(tmp_path / "g.csv", "group,flops,top1_err,params", rows)
    code, out, err = run_cli("recommend", p, "--target-flops", "10G", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["chosen"]["name"] == "A"  # lower true error at 10G
    assert law("A", 1e10) < law("B", 1e10)
    names = [c["name"] for c in d["candidates"]]
    assert sorted(names) == ["A", "B", "C"]
    c = next(c for c in d["candidates"] if c["name"] == "C")
    assert c["rank"] is None and "not fitted" in c["verdict"]
    a = d["chosen"]
    assert a["error"]["lo"] <= law("A", 1e10) <= a["error"]["hi"]
    assert a["params"] == pytest.approx(1e8, rel=1e-6)  # params = flops / 100, log-log line
    # a params limit excludes A (estimated 100M params at 10G; B 10M) and B wins
    code, out, _ = run_cli("recommend", p, "--target-flops", "10G", "--max-params", "50M")
    assert code == 0 and "chosen: B" in out
    assert "params 100M > max 50M" in out  # A is listed with the reason
    code, _, err = run_cli("recommend", p, "--target-flops", "10G", "--max-params", "5M")
    assert code == 2 and "max params 5M excludes 3 of 3" in err
    code, out, _ = run_cli("recommend", p, "--target-flops", "10G")
    assert "chosen: A" in out and "not fitted" in out
    code, _, err = run_cli("recommend", p, "--target-flops", "4x")
    assert code == 2 and "give absolute flops" in err and err.count("\n") == 1
    code, _, err = run_cli("recommend", p, "--target-flops", "10G", "--out", tmp_path / "o.yaml")
    assert code == 2 and "--out" in err


def test_report_over_an_imported_csv(tmp_path, run_cli, exact_csv):
    out_dir = tmp_path / "rep"
    code, out, err = run_cli("report", exact_csv, "--out", out_dir)
    assert "wrote" in out
    assert code == 0, err
    page = (out_dir / "index.html").read_text()
    assert "Results trained elsewhere" in page and "top1_err_pct" in page
    assert "<h1>Results: exact</h1>" in page
    assert "Lowest predicted top-1 error at 3.2G flops" in page
    assert "<code>A</code>" in page  # the verdict names the better group at 3.2G
    assert law("A", 3.2e9) < law("B", 3.2e9)
    assert "Scaling laws" in page and "saturating" in page
    assert (out_dir / "trials.csv").read_text().startswith("group,model,flops")
    code, _, _ = run_cli("report", exact_csv)  # default: FILE_report next to the file
    assert code == 0 and (exact_csv.parent / "exact_report" / "index.html").is_file()


# --------------------------------------------------------------------------------------------
# bench --fit --from
# --------------------------------------------------------------------------------------------


def test_bench_fit_from_outside_timings(tmp_path, run_cli):
    rows = [f"x,{f:.6g},{2 + 10 * f / 1e9:.9g},8,T4" for f in (1e8, 2e8, 4e8, 8e8)]
    p = write_csv(tmp_path / "t.csv", "group,flops,time_ms,batch_size,device", rows)
    code, out, err = run_cli("bench", "--fit", "--from", p, "--json")
    assert code == 0, err
    fit = json.loads(out)["fits"]["infer, batch 8, T4"]
    assert fit["metrics"] == ["flops"] and fit["n"] == 4
    assert fit["per_metric"]["flops"]["slope"] == pytest.approx(1e-8)
    assert fit["per_metric"]["flops"]["intercept"] == pytest.approx(2.0)
    code, out, _ = run_cli("bench", "--fit", "--from", p)
    assert code == 0 and "10 ms per G multiply-adds" in out
    q = write_csv(tmp_path / "n.csv", "group,flops,top1_err", ["x,1e8,0.3"])
    code, _, err = run_cli("bench", "--fit", "--from", q)
    assert code == 2 and "no row has a time_ms" in err and err.count("\n") == 1
    code, _, err = run_cli("bench", "--from", p)
    assert code == 2 and "add --fit" in err


def test_recommend_file_noise_and_refused_flags(tmp_path, run_cli, exact_csv):
    code, out, _ = run_cli("recommend", exact_csv, "--target-flops", "6.4G", "--json")
    assert code == 0
    plain = json.loads(out)["chosen"]["error"]
    code, out, _ = run_cli("recommend", exact_csv, "--target-flops", "6.4G", "--json",
                           "--noise", "1pt")
    assert code == 0
    wide = json.loads(out)["chosen"]["error"]
    assert wide["hi"] - wide["lo"] > plain["hi"] - plain["lo"]
    for flag in (["--base", "x"], ["--strategies", "d"], ["--device", "cpu"], ["--measure"]):
        code, _, err = run_cli("recommend", exact_csv, "--target-flops", "6.4G", *flag)
        assert code == 2 and err.count("\n") == 1
    code, _, err = run_cli("recommend", "RegNetY-200MF", "--target-flops", "2x", "--percent")
    assert code == 2 and "apply to a results file" in err


def test_loader_counts_spec_files_without_torch(tmp_path):
    """The loader is pure: counting a `model` (a spec file relative to the results file)
    never imports torch."""
    import subprocess
    import sys

    resolve_spec("RegNetY-200MF").save(tmp_path / "mine.yaml")
    write_csv(tmp_path / "r.csv", "group,model,top1_err_pct",
              ["Y,mine.yaml,29.7", "Y,RegNetY-400MF,25.9"])
    code = ("import sys; from netscale.advise.results_io import load_source; "
            f"s = load_source({str(tmp_path / 'r.csv')!r}); "
            "print(s.trials[0].flops, 'torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True)
    flops = complexity_totals(resolve_spec("RegNetY-200MF")).flops
    assert r.stdout.split() == [str(flops), "False"]


def test_fit_json_lists_groups_that_cannot_be_fitted(tmp_path, run_cli, exact_csv):
    p = tmp_path / "plus.csv"
    p.write_text(exact_csv.read_text() + "C,1e8,40\nC,2e8,35\n")
    code, out, err = run_cli("fit", p, "--at", "1G", "--json")
    assert code == 0, err
    g = json.loads(out)["predictions"]["groups"]
    assert set(g) == {"A", "B", "C"}
    assert g["C"]["predictions"] == [] and "only 2 points" in g["C"]["skipped"]
    code, out, _ = run_cli("fit", p, "--at", "1G")
    assert "no prediction: C: not fitted (only 2 points" in out


def test_bench_fit_from_a_bench_out_file_of_named_models(tmp_path, run_cli):
    # `netscale bench A B --out f.csv` leaves `strategy` empty: each named model is its group
    rows = [f",M{i},ok,{f:.6g},{f / 100:.6g},{f / 50:.6g},{2 + 10 * f / 1e9:.9g},8,cpu"
            for i, f in enumerate((1e8, 2e8, 4e8, 8e8))]
    rows.append(",M9,oom,1.6e9,1.6e7,3.2e7,,8,cpu")  # bench statuses: ok and oom (no time)
    p = write_csv(tmp_path / "b.csv",
                  "strategy,model,status,flops,params,acts,time_ms,batch_size,device", rows)
    code, out, err = run_cli("bench", "--fit", "--from", p, "--json")
    assert code == 0, err
    fit = json.loads(out)["fits"]["infer, batch 8, cpu"]
    assert fit["n"] == 4 and fit["per_metric"]["flops"]["slope"] == pytest.approx(1e-8)
    q = write_csv(tmp_path / "e.csv", "strategy,flops,time_ms", [",1e8,2.0"])
    code, _, err = run_cli("bench", "--fit", "--from", q)  # no group and no model: refused
    assert code == 2 and "every row needs a group name" in err and err.count("\n") == 1
