"""`netscale fit` and `netscale recommend` on synthetic studies."""

from __future__ import annotations

import json

import pytest

from netscale.complexity import complexity_totals
from netscale.laws import FitReport
from netscale.specs import resolve_spec
from netscale_fixtures.synthetic import synthetic_study


@pytest.fixture(scope="module")
def quick_dir(tmp_path_factory: pytest.TempPathFactory):
    """Quickstart-shaped: d, w, r, dwr, dWr at s = 1, 2, 4 (3 points per strategy)."""
    return synthetic_study(tmp_path_factory.mktemp("quick"))


@pytest.fixture(scope="module")
def big_dir(tmp_path_factory: pytest.TempPathFactory):
    return synthetic_study(tmp_path_factory.mktemp("big"), strategies=("dr", "dwr", "dWr", "w"),
                           factors=(1, 2, 4, 8, 16), seeds=(0, 1), noise=0.01)


def test_fit_text_table(run_cli, big_dir):
    code, out, err = run_cli("fit", big_dir)
    assert code == 0, err
    assert "top-1 error vs flops (multiply-adds)" in out
    for s in ("dr", "dwr", "dWr", "w"):
        assert f"\n{s} " in out
    assert "saturating" in out and "10 (5)" in out  # 2 seeds x 5 sizes per strategy
    assert "inside" in out or "OUTSIDE" in out  # the leave-largest-out check ran
    # 2 seeds x (the base + 4 strategies x 4 factors) = 34 trials, one benchmark row each
    assert "runtime model (joint fit on 34 benchmark rows (infer, batch 32, cpu" in out
    assert "Pearson r of time vs each metric: flops" in out


def test_fit_json_reloads(run_cli, big_dir):
    code, out, _ = run_cli("fit", big_dir, "--json", "--samples", "--n-boot", "50")
    assert code == 0
    data = json.loads(out)
    assert data["x"] == "flops" and data["units"]["flops"] == "multiply-adds"
    assert set(data["fits"]) == {"dr", "dwr", "dWr", "w"}
    f = data["fits"]["dWr"]
    assert f["law"] == "saturating" and f["fast_alpha"] == pytest.approx(0.8)
    rep = FitReport.from_dict(f["report"])
    assert rep.best_fit.n_boot == 50
    p = rep.predict(4 * rep.best_fit.x_max)
    assert p.extrapolated and p.lo < p.value < p.hi
    assert data["runtime"]["batch_size"] == 32 and set(data["runtime"]["pearson_r"]) == {
        "flops", "params", "acts"}


def test_fit_quickstart_falls_back_to_power_law(run_cli, quick_dir):
    code, out, _ = run_cli("fit", quick_dir)
    assert code == 0
    assert "power" in out and "saturating  " not in out
    assert "fitted the plain power law" in out
    code, out, _ = run_cli("fit", quick_dir, "--json")
    assert {f["law"] for f in json.loads(out)["fits"].values()} == {"power"}


def test_fit_forced_saturating_with_too_few_points(run_cli, quick_dir):
    code, _, err = run_cli("fit", quick_dir, "--law", "saturating")
    assert code == 2
    assert err.count("\n") == 1 and "no strategy could be fitted with law saturating" in err
    assert "--law power or auto" in err


@pytest.mark.parametrize("x", ["params", "acts", "epochs*flops"])
def test_fit_other_metrics(run_cli, big_dir, x):
    code, out, _ = run_cli("fit", big_dir, "--x", x, "--json", "--n-boot", "20")
    assert code == 0
    data = json.loads(out)
    assert data["x"] == x
    assert data["fits"]["dWr"]["report"]["x_metric"] == x


def test_fit_errors(run_cli, tmp_path):
    code, _, err = run_cli("fit", tmp_path)
    assert code == 2 and "not a study directory" in err and err.count("\n") == 1
    code, _, err = run_cli("fit", tmp_path / "nope")
    assert code == 2 and "does not exist" in err
    untrained = synthetic_study(tmp_path / "bench-only", train=False)
    code, _, err = run_cli("fit", untrained)
    assert code == 2 and "no trained trials" in err
    two = synthetic_study(tmp_path / "two", factors=(1, 2))
    code, _, err = run_cli("fit", two)
    assert code == 2 and "only 2 points" in err


def test_recommend_text_and_out(run_cli, big_dir, tmp_path):
    out_spec = tmp_path / "chosen.yaml"
    code, out, err = run_cli("recommend", big_dir, "--target-flops", "32x", "--out", out_spec)
    assert code == 0, err
    assert "chosen: " in out and "predicted error" in out and "[" in out
    assert "runtime: predicted" in out and "per batch of 32" in out
    assert "points predicted error vs" in out  # why the others lost
    assert f"wrote {out_spec}" in out
    spec = resolve_spec(str(out_spec))

    code, js, _ = run_cli("recommend", big_dir, "--target-flops", "32x", "--json")
    data = json.loads(js)
    assert complexity_totals(spec).flops == data["chosen"]["flops"]
    assert data["chosen"]["spec"]["stages"] == json.loads(spec.to_json())["stages"]
    assert data["target_flops"] == pytest.approx(32 * data["base_flops"])


def test_recommend_constraints(run_cli, big_dir):
    code, js, _ = run_cli("recommend", big_dir, "--target-flops", "8x", "--json")
    free = json.loads(js)["chosen"]
    limit = int(free["params"] * 0.8)
    code, js, _ = run_cli("recommend", big_dir, "--target-flops", "8x", "--max-params",
                          str(limit), "--json")
    data = json.loads(js)
    assert code == 0 and data["chosen"]["params"] <= limit
    assert data["constraints"]["max_params"] == limit
    lost = {c["name"]: c for c in data["candidates"]}[free["name"]]
    assert not lost["feasible"] and "params" in lost["verdict"]


def test_recommend_errors(run_cli, big_dir, tmp_path):
    code, _, err = run_cli("recommend", big_dir, "--target-flops", "4y")
    assert code == 2 and "--target-flops" in err and err.count("\n") == 1
    code, _, err = run_cli("recommend", big_dir, "--target-flops", "4x", "--max-params", "1k")
    assert code == 2 and "max params alone excludes every candidate" in err
    assert "closest:" in err
    code, _, err = run_cli("recommend", big_dir, "--target-flops", "4x", "--max-latency",
                           "0.0001")
    assert code == 2 and "max latency alone excludes every candidate" in err
    code, _, err = run_cli("recommend", big_dir, "--target-flops", "4x", "--max-latency", "5",
                           "--batch-size", "7")
    assert code == 2 and "--measure" in err
    code, _, err = run_cli("recommend", tmp_path, "--target-flops", "4x")
    assert code == 2 and "not a study directory" in err
    code, _, err = run_cli("recommend", "NoSuchNet-9000", "--target-flops", "4x")
    assert code == 2 and "neither a study directory" in err
    code, _, err = run_cli("recommend", big_dir, "--target-flops", "4x", "--max-params", "lots")
    assert code == 2 and "--max-params" in err


def test_recommend_base_model_without_measuring(run_cli, tmp_path):
    from netscale.study.quickstart import quickstart_base

    path = quickstart_base().save(tmp_path / "base.yaml")
    code, out, err = run_cli("recommend", path, "--target-flops", "4x", "--no-measure")
    assert code == 0, err
    assert "chosen: dWr" in out and "ranked by prior" in out
    assert "runtime: not available" in out
