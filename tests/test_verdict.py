"""The one recommendation engine (netscale.advise): tie logic, study verdicts, report JSON,
smoke-test labelling. Synthetic groups with exact numbers: nothing here depends on training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netscale.advise import Option, decide, group_trials, is_smoke_test, study_verdict
from netscale.study.store import TrialRow

N_VAL = 2000


def trial(strategy: str, factor: float, seed: int, err: float | None, ms: float = 10.0,
          iqr: float = 0.0, noisy: bool = False, contended: bool = False,
          widths: tuple[int, ...] | None = None, same_as: str | None = None) -> TrialRow:
    spec = {"name": f"{strategy}{factor}", "stages": [
        {"depth": 1, "width": w} for w in (widths or (16, int(16 * factor), len(strategy)))]}
    bench = [{"mode": "infer", "status": "ok", "time_ms": ms, "iqr_ms": iqr, "samples": 16,
              "noisy": noisy, "contended": contended}]
    return TrialRow(id=f"B|{strategy}|x{factor:g}|seed{seed}", base="B", strategy=strategy,
                    factor=float(factor), seed=seed, status="done" if err is not None else
                    "pending", attempts=1, failures=0, spec=spec, flops=int(1e6 * factor),
                    params=1000, acts=2000, resolution=16, bench=bench, time_ms=ms,
                    top1_err=err, epochs_done=3 if err is not None else 0, same_as=same_as)


CONFIG = {"data": {"name": "fashion-mnist"}, "bench": {"batch_size": 64}}
INFO = {"val_size": N_VAL}


# ------------------------------------------------------------------ decide (the tie logic)


def test_clearly_separated_options_give_one_winner():
    opts = [Option("a", 0.10, 0.09, 0.11, 5.0, 4.9, 5.1),
            Option("b", 0.20, 0.19, 0.21, 1.0, 0.9, 1.1)]
    d = decide(opts)
    assert d.pick.name == "a" and d.best.name == "a" and d.tied == [] and not d.is_tie
    assert [o.name for o in d.separated] == ["b"]


def test_overlapping_options_tie_and_the_fastest_is_picked():
    opts = [Option("a", 0.10, 0.09, 0.11, 5.0, 4.9, 5.1),
            Option("b", 0.11, 0.10, 0.12, 1.0, 0.9, 1.1),  # 0.01 <= 0.0141: tied with a
            Option("c", 0.13, 0.12, 0.14, 0.5, 0.4, 0.6)]  # 0.03 > 0.0141: separated
    d = decide(opts)
    assert d.best.name == "a" and d.pick.name == "b" and [o.name for o in d.tied] == ["a"]
    assert [o.name for o in d.separated] == ["c"] and d.runtime_tied == []


def test_runtime_tie_and_flagged_timings_are_reported():
    from netscale.advise.verdict import explain

    opts = [Option("a", 0.10, 0.09, 0.11, 5.0, 4.0, 6.0, "contended"),
            Option("b", 0.10, 0.09, 0.11, 5.5, 4.5, 6.5, "ok")]
    d = decide(opts)
    assert d.pick.name == "a" and [o.name for o in d.runtime_tied] == ["b"]
    assert [o.name for o in d.flagged] == ["a"]
    text = explain(d, "at ×4 flops")
    assert text.startswith("tie: at ×4 flops, a, b are statistically tied")
    assert "a runtime tie too" in text and "rests on flagged timings (a: contended)" in text


def test_decide_is_deterministic_on_identical_results():
    # the same network shared by two strategies: identical numbers, the name breaks the tie
    opts = [Option("w", 0.15, 0.13, 0.17, 3.0, 3.0, 3.0), Option("dWr", 0.15, 0.13, 0.17, 3.0,
                                                                  3.0, 3.0)]
    assert decide(opts).pick.name == "dWr" and decide(opts[::-1]).pick.name == "dWr"


# ------------------------------------------------------------------ groups and study verdicts


def test_groups_carry_seeds_intervals_and_time_quality():
    trials = [trial("w", 2, s, e, ms=m, iqr=1.0, noisy=(s == 1))
              for s, e, m in ((0, 0.16, 10.0), (1, 0.18, 12.0), (2, 0.20, 11.0))]
    trials.append(trial("d", 2, 0, None))  # not finished: no error, still timed
    g = {x.strategy: x for x in group_trials(trials, N_VAL)}
    w = g["w"]
    assert w.n_seeds == 3 and w.seeds == [0, 1, 2] and not w.seeds_missing
    assert w.top1_err_mean == pytest.approx(0.18)
    # no per-image results: V_seed = 0.02²/3, V_img = 0.18·0.82/2000, one Satterthwaite t:
    # f = 2/chi2_2(0.5) = 1.4426950, df = (V_img + f V_seed)² / ((f V_seed)²/2) = 3.8290132
    q = 2.826032  # t(0.975, 3.8290132)
    assert w.seed_half == pytest.approx(q * 0.02 / 3**0.5, rel=1e-6)
    assert w.sampling_half == pytest.approx(q * (0.18 * 0.82 / N_VAL)**0.5, rel=1e-6)
    assert w.interval_method == "shared, no per-image results"
    assert w.time_ms == 11.0 and w.time_quality == "noisy"
    assert w.time_ms_low == pytest.approx(10.0 - 1.57 / 4) and w.time_ms_high == pytest.approx(
        12.0 + 1.57 / 4)
    assert g["d"].n_seeds == 0 and g["d"].top1_err_mean is None and g["d"].time_ms == 10.0
    keys = set(w.to_dict())
    assert {"base", "strategy", "factor", "n_seeds", "top1_err_mean", "top1_err_low",
            "top1_err_high", "time_ms", "time_ms_low", "time_ms_high",
            "time_quality"} <= keys


def test_study_verdict_separated_groups_one_winner():
    trials = [trial("base", 1, s, 0.30) for s in (0, 1, 2)]
    for s in (0, 1, 2):
        trials += [trial("d", 4, s, 0.25 + 0.001 * s, ms=2.0),
                   trial("w", 4, s, 0.10 + 0.001 * s, ms=9.0)]
    v = study_verdict(trials, data_info=INFO, config=CONFIG)
    assert v.recommended == "w" and v.tied == [] and v.factor == 4.0 and v.firm
    assert "w has the lowest top-1 error" in v.reason and "d is faster" in v.reason
    assert not v.smoke_test and v.to_separate == ""


def test_study_verdict_overlapping_groups_tie_and_say_what_would_separate():
    trials = []
    for s, (ed, ew) in enumerate(((0.150, 0.160), (0.170, 0.150), (0.160, 0.170))):
        trials += [trial("d", 2, s, ed, ms=8.0, iqr=0.1),
                   trial("w", 2, s, ew, ms=4.0, iqr=0.1, contended=(s == 0))]
    v = study_verdict(trials, data_info=INFO, config=CONFIG)
    assert v.recommended == "w" and v.tied == ["d"] and not v.firm
    assert v.reason.startswith("tie: at ×2 flops (multiply-adds), d, w are statistically tied")
    assert "w is the fastest of them" in v.reason and "per batch of 64" in v.reason
    assert "rests on flagged timings (w: contended)" in v.reason
    assert "more seeds (now 3 per group" in v.to_separate
    assert f"a larger validation set (now {N_VAL} images" in v.to_separate
    assert "more epochs (now 3)" in v.to_separate


def test_one_seed_verdict_says_seeds_are_missing():
    trials = [trial("d", 2, 0, 0.20, ms=2.0), trial("w", 2, 0, 0.21, ms=3.0)]
    v = study_verdict(trials, data_info=INFO, config=CONFIG)
    assert v.recommended == "d" and v.tied == ["w"]
    assert "seeds missing" in v.reason and "now 1 per group" in v.to_separate
    assert all(g.seeds_missing for g in v.groups)


def test_verdict_uses_the_largest_factor_every_strategy_finished():
    trials = [trial("d", 2, 0, 0.2), trial("w", 2, 0, 0.2), trial("d", 4, 0, 0.1),
              trial("w", 4, 0, None)]
    assert study_verdict(trials, data_info=INFO, config=CONFIG).factor == 2.0


def test_same_network_groups_are_labelled_and_carry_identical_results():
    # the store records the alias (same_as); identical widths alone do not make a link
    w = trial("w", 2, 0, 0.15, widths=(16, 32, 64))
    trials = [w, trial("dWr", 2, 0, 0.15, widths=(16, 32, 64), same_as=w.id),
              trial("d", 2, 0, 0.30, widths=(16, 32, 64))]
    v = study_verdict(trials, data_info=INFO, config=CONFIG)
    g = {x.strategy: x for x in v.groups}
    assert g["w"].same_network_as == ["dWr"] and g["dWr"].same_network_as == ["w"]
    assert g["d"].same_network_as == []
    assert v.recommended == "dWr" and v.tied == ["w"]
    assert "same network (one result): dWr = w" in v.reason


def test_no_finished_trials_has_no_recommendation():
    v = study_verdict([trial("d", 2, 0, None)], config=CONFIG)
    assert v.recommended is None and "nothing to recommend" in v.reason
    assert v.to_dict()["groups"][0]["n_seeds"] == 0


# ------------------------------------------------------------------ smoke-test labelling


def test_digits_fallback_is_labelled_a_smoke_test():
    assert is_smoke_test({"name": "digits"}) and not is_smoke_test({"name": "fashion-mnist"})
    trials = [trial("d", 2, 0, 0.05, ms=1.0), trial("w", 2, 0, 0.30, ms=2.0)]
    v = study_verdict(trials, data_info={"val_size": 180}, config={"data": {"name": "digits"}})
    d = v.to_dict()
    assert d["smoke_test"] is True and d["firm"] is False
    assert d["reason"].startswith("SMOKE TEST on digits (180 validation images): the accuracy "
                                  "verdict is not meaningful")


def test_report_json_and_box_label_the_smoke_test(run_cli, tmp_path: Path):
    from netscale.study.store import Store
    from netscale_fixtures.synthetic import synthetic_study

    d = synthetic_study(tmp_path / "s", seeds=(0, 1))
    with Store(d / "results.sqlite") as st:
        cfg = json.loads(st.get_meta("config") or "{}")
        cfg["data"] = {"name": "digits"}
        st.set_meta({"config": json.dumps(cfg), "data_info": json.dumps({"val_size": 180})})
    code, out, err = run_cli("report", str(d), "--json")
    assert code == 0, err
    v = json.loads(out)
    assert v["smoke_test"] is True and v["recommended"] in {"d", "w", "r", "dwr", "dWr"}
    assert isinstance(v["tied"], list) and v["reason"].startswith("SMOKE TEST")
    g = v["groups"][0]
    assert g["n_seeds"] == 2 and g["top1_err_low"] <= g["top1_err_mean"] <= g["top1_err_high"]
    page = (d / "report" / "index.html").read_text()
    assert "<b>Smoke test</b>" in page and "accuracy verdict is not meaningful" in page
    assert "(smoke test)</b>" in page


def test_report_json_matches_recommend_at_a_trained_factor(run_cli, tmp_path: Path):
    from netscale_fixtures.synthetic import synthetic_study

    d = synthetic_study(tmp_path / "s", seeds=(0, 1, 2))
    code, out, err = run_cli("report", str(d), "--json")
    assert code == 0, err
    v = json.loads(out)
    assert v["factor"] == 4.0 and v["smoke_test"] is False
    code, out, err = run_cli("recommend", str(d), "--target-flops", "4x", "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["recommended"] == v["recommended"] and r["tied"] == v["tied"]
    assert r["chosen"]["name"] == v["recommended"] and r["ranking"] == "measured error"


# ------------------------------------------------------------------ ./run.sh's data step


def _fake(bin_dir: Path, name: str, body: str) -> None:
    p = bin_dir / name
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(0o755)


def _ensure_data(tmp_path: Path, *, uid: int, no_apt: bool = False, present: bool = False
                 ) -> tuple[int, str, str]:
    """Runs scripts/ensure_data.sh with a fake python (data found iff a marker file exists),
    a fake `id` and a fake apt-get that logs its arguments and 'installs' the marker."""
    import os
    import subprocess

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    mark, log = tmp_path / "installed", tmp_path / "apt.log"
    if present:
        mark.write_text("")
    _fake(bin_dir, "python", f'[ -f "{mark}" ]')
    _fake(bin_dir, "id", f"echo {uid}")
    _fake(bin_dir, "apt-get", f'echo "$*" >> "{log}"; case "$1" in install) : > "{mark}";; '
                              "esac; exit 0")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "NETSCALE_PY": str(bin_dir / "python")}
    env.pop("NETSCALE_NO_APT", None)
    if no_apt:
        env["NETSCALE_NO_APT"] = "1"
    script = Path(__file__).resolve().parents[1] / "scripts" / "ensure_data.sh"
    r = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True,
                       timeout=60)
    return r.returncode, r.stderr, log.read_text() if log.is_file() else ""


def test_run_sh_installs_fashion_mnist_as_root_with_apt(tmp_path: Path):
    code, err, log = _ensure_data(tmp_path, uid=0)
    assert code == 0
    assert "installing the package dataset-fashion-mnist" in err and "NETSCALE_NO_APT=1" in err
    assert log.splitlines() == ["update", "install -y dataset-fashion-mnist"]
    assert "installed Fashion-MNIST" in err and "SMOKE TEST" not in err


def test_run_sh_without_apt_labels_the_digits_fallback(tmp_path: Path):
    for kw in ({"uid": 0, "no_apt": True}, {"uid": 1000}):
        code, err, log = _ensure_data(tmp_path, **kw)  # type: ignore[arg-type]
        assert code == 0 and log == ""
        assert "falls back to scikit-learn's digits, a SMOKE TEST whose accuracy verdict is " \
               "not meaningful" in err
        assert err.strip().endswith("Get the real data with: sudo apt-get install "
                                    "dataset-fashion-mnist")


def test_run_sh_data_present_does_nothing(tmp_path: Path):
    code, err, log = _ensure_data(tmp_path, uid=0, present=True)
    assert (code, err, log) == (0, "", "")


def test_export_rows_carry_group_statistics(run_cli, tmp_path: Path):
    import csv
    import io

    from netscale_fixtures.synthetic import synthetic_study

    d = synthetic_study(tmp_path / "s", seeds=(0, 1))
    code, out, err = run_cli("study", str(d), "--export", "json")
    assert code == 0, err
    rows = json.loads(out)
    dwr = [r for r in rows if r["strategy"] == "dwr" and r["factor"] == 4.0]
    assert len(dwr) == 2 and {r["n_seeds"] for r in dwr} == {2}
    mean = (dwr[0]["top1_err"] + dwr[1]["top1_err"]) / 2
    assert dwr[0]["top1_err_mean"] == pytest.approx(mean)
    assert dwr[0]["top1_err_low"] < mean < dwr[0]["top1_err_high"]
    assert dwr[0]["time_quality"] == "ok"
    assert dwr[0]["time_ms_low"] <= dwr[0]["time_ms_group"] <= dwr[0]["time_ms_high"]
    code, out, err = run_cli("study", str(d), "--export", "csv")
    assert code == 0, err
    head = next(csv.reader(io.StringIO(out)))
    assert head[-8:] == ["n_seeds", "top1_err_mean", "top1_err_low", "top1_err_high",
                         "time_ms_group", "time_ms_low", "time_ms_high", "time_quality"]


def test_recommend_beyond_trained_factors_uses_predictions_and_the_same_tie_logic(tmp_path):
    from netscale.advise.options import CandidateOptions
    from netscale.advise.recommend import recommend
    from netscale_fixtures.synthetic import synthetic_study

    d = synthetic_study(tmp_path / "s", seeds=(0, 1))
    rec = recommend(d, "8x", candidates=CandidateOptions(strategies=[], alphas=[]))
    assert rec.ranking == "predicted error" and rec.verdict is None
    names = {c.name: c for c in rec.candidates}
    group = [rec.chosen] + [names[n] for n in rec.tied]
    best = min((c for c in rec.candidates if c.rank is not None), key=lambda c: c.error.value)
    assert best in group and rec.chosen.time_ms == min(c.time_ms for c in group)
    assert "predicted top-1 error" in rec.reason and "predicted by the fitted laws" in rec.reason
    # every candidate outside the tied set is separated from the best by its interval
    from netscale.laws.stats import tied

    for c in rec.candidates:
        if c.rank is not None and c not in group:
            assert not tied((best.error.value, best.error.lo, best.error.hi),
                            (c.error.value, c.error.lo, c.error.hi))
