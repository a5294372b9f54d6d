"""Runtime fits for training as well as inference: prediction intervals of the runtime fits,
`bench --fit --mode both --predict`, and `recommend --latency-mode train`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from netscale.advise.options import TimingOptions
from netscale.advise.recommend import recommend
from netscale.advise.records import Constraints
from netscale.advise.runtimes import default_measure
from netscale.bench.analysis import format_fit, format_predictions
from netscale.bench.fit import fit_joint, fit_metric, fit_runtime
from netscale.errors import NetscaleError
from netscale.study.quickstart import quickstart_base
from netscale.study.store import Store
from netscale_fixtures.synthetic import synthetic_study


def test_line_prediction_interval_is_the_ols_formula() -> None:
    x = np.array([1.0, 2.0, 3.0, 5.0, 8.0])
    y = np.array([3.1, 4.8, 7.2, 10.9, 17.2])
    f = fit_metric(x, y, "acts")
    slope, icpt = np.polyfit(x, y, 1)
    s = math.sqrt(((y - (slope * x + icpt)) ** 2).sum() / 3)
    t = 3.182446305284263  # Student t, 97.5 %, 3 degrees of freedom
    half = t * s * math.sqrt(1 + 1 / 5 + (6.0 - x.mean()) ** 2 / ((x - x.mean()) ** 2).sum())
    pred, lo, hi = f.interval(6.0)
    assert abs(pred - (slope * 6 + icpt)) < 1e-9
    assert abs(lo - (pred - half)) < 1e-9 and abs(hi - (pred + half)) < 1e-9
    # the joint fit on that one metric is the same least-squares problem: the same interval
    j = fit_joint({"acts": x}, y)
    assert j.active == ("intercept", "acts")
    jp, jlo, jhi = j.interval({"acts": 6.0})
    assert abs(jp - pred) < 1e-9 and abs(jlo - lo) < 1e-9 and abs(jhi - hi) < 1e-9
    # wider away from the data
    assert f.interval(30.0)[2] - f.interval(30.0)[1] > hi - lo


def test_prediction_intervals_cover_new_models() -> None:
    """Seeded simulation: 95 % intervals of a line fitted to 8 noisy points contain a new
    point's runtime about 95 % of the time (400 draws, fixed seed: a deterministic count)."""
    rng = np.random.default_rng(0)
    x = np.linspace(1, 10, 8)
    inside = 0
    for _ in range(400):
        y = 2.0 + 3.0 * x + rng.normal(0, 1.0, x.size)
        f = fit_metric(x, y)
        new_x = rng.uniform(1, 10)
        _, lo, hi = f.interval(new_x)
        inside += lo <= 2.0 + 3.0 * new_x + rng.normal(0, 1.0) <= hi
    assert 360 <= inside <= 392  # 90 % .. 98 %


def _rows(mode: str, k: float) -> list[dict]:
    return [{"flops": f, "params": p, "acts": a, "time_ms": k * (1 + 2e-6 * a) + 0.01 * i,
             "mode": mode}
            for i, (f, p, a) in enumerate([(1e8, 1e6, 2e6), (2e8, 2e6, 3e6), (4e8, 3e6, 6e6),
                                           (3e8, 5e6, 4e6), (8e8, 4e6, 9e6), (6e8, 8e6, 7e6)])]


def test_fit_text_has_r_r2_and_intervals_per_mode() -> None:
    from netscale.complexity import complexity

    rec = complexity(quickstart_base(), 16)
    for mode, k in (("infer", 1.0), ("train", 3.0)):
        fit = fit_runtime(_rows(mode, k))
        text = format_fit(fit, mode)
        assert f"runtime model ({mode}, 6 models" in text
        assert "Pearson r" in text and "r²" in text and "95% PI ms" in text
        assert "joint (non-negative least squares)" in text and "; r 1.000, r² 1.000" in text
        pred = format_predictions(fit, mode, [("QuickNetY", rec)])
        assert f"predicted {mode} runtime" in pred and "QuickNetY" in pred
        joint_line = next(ln for ln in pred.splitlines() if " joint " in ln)
        value = float(joint_line.split()[2])
        assert abs(value - k * (1 + 2e-6 * rec.acts)) < 0.1 * k  # the joint law is acts-only


def test_bench_cli_fits_both_modes_and_predicts(run_cli, tmp_path) -> None:
    code, _, err = run_cli("bench", "ResNet-20-CIFAR", "--predict", "ResNet-32-CIFAR")
    assert code == 2 and "--predict needs --fit" in err
    code, out, err = run_cli(
        "bench", "--fit", "--base", "ResNet-20-CIFAR", "--strategies", "w", "--factors",
        "1,2,4", "--resolution", "8", "--mode", "both", "--batch-size", "2", "--budget", "0.05",
        "--retries", "0", "--predict", "ResNet-32-CIFAR", "--plot", tmp_path / "fit.png")
    assert code in (0, 1), err  # 1: a measurement was flagged; the fits are still printed
    for mode in ("infer", "train"):
        assert f"runtime model ({mode}, 3 models" in out
        assert f"predicted {mode} runtime (ms per batch) with 95% prediction intervals" in out
    saved = json.loads((tmp_path / "fit.json").read_text())
    assert set(saved["fits"]) == {"infer", "train"}


@pytest.fixture(scope="module")
def study_with_train_rows(tmp_path_factory: pytest.TempPathFactory):
    """A synthetic study whose trials also have training-step rows (3x inference + 5 ms)."""
    truth = {"dwr": (0.55, 0.06), "w": (0.30, 0.10), "d": (0.25, 0.12)}
    path = synthetic_study(tmp_path_factory.mktemp("train"), strategies=tuple(truth),
                           factors=(1, 2, 4, 8), truth=truth)
    with Store(path / "results.sqlite") as store:
        for t in store.trials():
            rows = list(t.bench)
            rows += [{**r, "mode": "train", "time_ms": 3 * r["time_ms"] + 5.0} for r in t.bench]
            store.record_bench(t.id, rows, t.time_ms)
    return path


def test_recommend_latency_mode_train_uses_training_step_times(study_with_train_rows) -> None:
    infer = recommend(study_with_train_rows, "8x")
    train = recommend(study_with_train_rows, "8x", timing=TimingOptions(latency_mode="train"))
    ti = {c.name: c.time_ms for c in infer.candidates if c.time_ms is not None}
    tt = {c.name: c.time_ms for c in train.candidates if c.time_ms is not None}
    assert ti and set(ti) == set(tt)
    for name in ti:  # the training rows are 3x + 5 ms, whichever model predicts them
        assert tt[name] > 2.5 * ti[name]
    # a limit between the two: every candidate fits for inference, none for training
    limit = max(ti.values()) * 1.01
    assert recommend(study_with_train_rows, "8x",
                     constraints=Constraints(max_latency_ms=limit)).chosen is not None
    with pytest.raises(NetscaleError, match="max latency alone excludes every candidate"):
        recommend(study_with_train_rows, "8x", constraints=Constraints(max_latency_ms=limit),
                  timing=TimingOptions(latency_mode="train"))


def test_latency_mode_train_without_train_rows_says_so(tmp_path) -> None:
    path = synthetic_study(tmp_path, truth={"w": (0.3, 0.1), "d": (0.25, 0.12)},
                           strategies=("w", "d"))
    with pytest.raises(NetscaleError, match="no train runtime measurements"):
        recommend(path, "4x", constraints=Constraints(max_latency_ms=100),
                  timing=TimingOptions(latency_mode="train"))
    with pytest.raises(NetscaleError, match="latency mode must be infer or train"):
        recommend(path, "4x", timing=TimingOptions(latency_mode="both"))


def test_default_measure_times_a_training_step() -> None:
    spec = quickstart_base()
    res = default_measure(0.05, mode="train")(spec, 2, "cpu")
    assert res is not None and res[0] > 0 and res[1] == 2
