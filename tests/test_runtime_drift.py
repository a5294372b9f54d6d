"""The runtime model past its fitted range and between runs (netscale.bench.fit): the log-space
fit, the leave-one-out choice of predictor and the between-run drift in the intervals."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from netscale.bench.fit import RuntimeModel, drift_of, fit_runtime
from netscale.errors import NetscaleError


def _rows(factors, noise=0.0, seed=0):
    """Models whose runtime is 3e-7 · flops^0.8 (more multiply-adds per ms when larger, as
    wide convolutions are on a CPU); params and acts grow with them."""
    rng = np.random.default_rng(seed)
    out = []
    for f in factors:
        flops, params, acts = 2e8 * f, 3e6 * f, 1e6 * math.sqrt(f)
        t = 3e-7 * flops**0.8 * math.exp(noise * rng.standard_normal())
        out.append({"flops": flops, "params": params, "acts": acts, "time_ms": t})
    return out


def test_log_fit_follows_a_sublinear_runtime_past_the_fitted_range():
    model = fit_runtime(_rows([1, 1.5, 2, 2.5, 3, 3.5, 4], noise=0.01))
    assert model.log is not None and model.joint is not None
    wide = _rows([8])[0]
    pt = {k: wide[k] for k in ("flops", "params", "acts")}
    truth = wide["time_ms"]
    joint = model.predict(pt, using="joint")
    log = model.predict(pt, using="log")
    assert joint > 1.05 * truth  # the line over-predicts the large model
    assert log == pytest.approx(truth, rel=0.03)
    assert model.log.loo_rel_rmse < 0.8 * model.joint.loo_rel_rmse
    assert model.predictor == "log"
    _, lo, hi = model.interval(pt)
    assert lo < truth < hi
    assert model.formula().startswith("time_ms = ")
    back = RuntimeModel.from_dict(model.to_dict())
    assert back.interval(pt) == pytest.approx(model.interval(pt))


def test_linear_data_keeps_the_joint_fit():
    rows = [{"flops": 1e8 * f, "params": 1e6 * f, "acts": 5e5 * f * f,
             "time_ms": 1.0 + 2e-8 * 1e8 * f + 4e-7 * 5e5 * f * f} for f in range(1, 8)]
    assert fit_runtime(rows).predictor == "joint"


def test_drift_is_the_log_spread_of_the_reference_and_widens_intervals():
    assert drift_of([10.0, 11.0]) == pytest.approx(abs(math.log(1.1)) / math.sqrt(2))
    model = fit_runtime(_rows([1, 2, 3, 4, 5, 6], noise=0.02, seed=1))
    pt = {"flops": 6e8, "params": 9e6, "acts": 1.7e6}
    y, lo, hi = model.interval(pt, using="joint")
    d = model.with_drift(0.05)
    y2, lo2, hi2 = d.interval(pt, using="joint")
    extra = 1.959963984540054 * 0.05 * y  # normal quantile: the drift is not estimated from n
    assert y2 == y
    assert hi2 - y == pytest.approx(math.hypot(hi - y, extra), rel=1e-5)
    assert y - lo2 == pytest.approx(math.hypot(y - lo, extra), rel=1e-5)
    assert RuntimeModel.from_dict(d.to_dict()).drift == 0.05
    assert fit_runtime(_rows([1, 2, 3, 4, 5, 6]), drift=0.05).drift == 0.05


@pytest.mark.parametrize("bad", [[10.0], [10.0, -1.0], [10.0, float("nan")]])
def test_drift_needs_two_positive_timings(bad):
    with pytest.raises(NetscaleError, match="at least 2 positive"):
        drift_of(bad)
    with pytest.raises(NetscaleError, match="drift must be"):
        fit_runtime(_rows([1, 2, 3, 4, 5, 6])).with_drift(-0.1)


def test_bench_fit_re_times_the_first_model_and_reports_the_drift(run_cli, tmp_path):
    fast = ("--budget", "0.15", "--warmup", "1", "--batch-size", "2", "--resolution", "16",
            "--threads", "1")
    plot = tmp_path / "fit.png"
    code, out, err = run_cli("bench", "--fit", "--base", "ResNet-20-CIFAR", "--strategies",
                             "d,w", "--factors", "1,2", "--plot", str(plot), *fast)
    assert code == 0, err
    fit = json.loads(plot.with_suffix(".json").read_text())["fits"]["infer"]
    assert fit["n"] == 3 and math.isfinite(fit["drift"]) and fit["drift"] >= 0
    assert "drift: the first model re-timed at the end of the run moved" in out or (
        fit["drift"] == 0)
    assert "[3/3]" in err and "[4/" not in err  # the re-timing is not a result row


def test_drift_from_repeats_pools_the_log_spread_within_networks():
    from netscale.bench.fit import drift_from_repeats

    # network A timed 10 and 12.1 ms (log spread: ln 1.21 / √2 each side), B 5 and 5 (a
    # mirrored row: counts once), C once
    got = drift_from_repeats([[10.0, 12.1], [5.0, 5.0], [7.0]])
    assert got == pytest.approx(math.log(1.21) / math.sqrt(2))
    two = drift_from_repeats([[10.0, 12.1], [20.0, 24.2, 22.0]])
    lx = [math.log(v) for v in (20.0, 24.2, 22.0)]
    m = sum(lx) / 3
    ss = (math.log(1.21) ** 2) / 2 + sum((v - m) ** 2 for v in lx)
    assert two == pytest.approx(math.sqrt(ss / 3))
    assert drift_from_repeats([[5.0], [5.0, 5.0]]) == 0.0
