"""The runtime model past its fitted range and between runs (netscale.bench.fit): the log-space
fit, the leave-one-out choice of predictor, and the between-run drift and scatter in the
intervals (their estimators, the quadrature sum, the JSON, ``bench --fit``'s re-timing pass and
the study's repeats)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from netscale.advise.study_fits import network_timings, study_runtime
from netscale.bench.analysis import retime_order
from netscale.bench.fit import (
    RuntimeModel,
    drift_of,
    fit_runtime,
    scatter_from_repeats,
    scatter_of,
)
from netscale.errors import NetscaleError
from netscale.study.store import TrialRow

Z95 = 1.959963984540054  # the normal quantile of a 95 % interval


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


def test_bench_fit_re_times_the_models_and_reports_drift_and_scatter(run_cli, tmp_path):
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
    # 3 models, fewer than the default 6: every one re-timed, in reverse order
    assert fit["scatter_n"] == 3 and math.isfinite(fit["scatter"]) and fit["scatter"] >= 0
    assert "between-run scatter: " in out and "(relative standard deviation; 3 models " \
        "re-timed)" in out
    assert "[3/3]" in err and "[4/" not in err  # the re-timings are not result rows


def test_bench_fit_retime_zero_measures_no_drift_or_scatter(run_cli, tmp_path):
    fast = ("--budget", "0.1", "--warmup", "1", "--batch-size", "2", "--resolution", "16",
            "--threads", "1")
    plot = tmp_path / "fit.png"
    code, out, err = run_cli("bench", "--fit", "--retime", "0", "--base", "ResNet-20-CIFAR",
                             "--strategies", "d,w", "--factors", "1,2", "--plot", str(plot),
                             *fast)
    assert code == 0, err
    fit = json.loads(plot.with_suffix(".json").read_text())["fits"]["infer"]
    assert (fit["drift"], fit["scatter"], fit["scatter_n"]) == (0.0, 0.0, 0)
    assert "between-run scatter" not in out


@pytest.mark.parametrize(("args", "message"), [
    (("ResNet-20-CIFAR", "--retime", "2"), "--retime needs --fit"),
    (("--fit", "--base", "ResNet-20-CIFAR", "--retime", "-1"), "--retime must be from 0"),
])
def test_retime_flag_errors(run_cli, args, message):
    code, _, err = run_cli("bench", *args)
    assert code == 2 and message in err and "Traceback" not in err


def test_retime_order_spreads_the_models_and_ends_with_the_reference():
    assert retime_order(21, 6) == [20, 16, 12, 8, 4, 0]
    assert retime_order(17, 6) == [16, 13, 10, 6, 3, 0]
    assert retime_order(3, 6) == [2, 1, 0]
    assert retime_order(5, 1) == [0]
    assert retime_order(5, 0) == [] and retime_order(0, 6) == []


def test_scatter_of_pools_the_pairs_around_their_common_shift():
    # log-changes 0.15, -0.05, 0.05: mean 0.05 (the drift of the second pass), deviations
    # 0.1, -0.1, 0: scatter² = 0.02 / (2·2)
    first = [10.0, 20.0, 40.0]
    second = [10.0 * math.exp(0.15), 20.0 * math.exp(-0.05), 40.0 * math.exp(0.05)]
    assert scatter_of(first, second) == pytest.approx(math.sqrt(0.02 / 4))
    # a common shift alone is drift, not scatter
    assert scatter_of(first, [v * 1.07 for v in first]) == pytest.approx(0.0, abs=1e-12)
    # two models: one degree of freedom, |d1 − d2| / 2
    assert scatter_of([1.0, 1.0], [math.exp(0.1), math.exp(-0.1)]) == pytest.approx(0.1)


def test_scatter_of_recovers_a_known_scatter():
    rng = np.random.default_rng(7)
    s, k = 0.04, 20_000
    true = np.exp(rng.uniform(0, 4, k))
    first = true * np.exp(s * rng.standard_normal(k))
    second = true * 1.03 * np.exp(s * rng.standard_normal(k))  # + a 3 % drift
    assert scatter_of(first, second) == pytest.approx(s, rel=0.02)


@pytest.mark.parametrize(("first", "second", "message"), [
    ([10.0, 11.0], [10.0], "pairs of timings"),
    ([10.0], [11.0], "at least 2 models"),
    ([10.0, -1.0], [10.0, 11.0], "at least 2 models"),
    ([10.0, 11.0], [10.0, float("nan")], "at least 2 models"),
])
def test_scatter_of_needs_pairs_of_positive_timings(first, second, message):
    with pytest.raises(NetscaleError, match=message):
        scatter_of(first, second)


def test_scatter_from_repeats_pools_the_log_spread_within_networks():
    # network A timed 10 and 12.1 ms (log spread: ln 1.21 / √2 each side), B 5 and 5 (a
    # mirrored row: counts once), C once
    got, n = scatter_from_repeats([[10.0, 12.1], [5.0, 5.0], [7.0]])
    assert got == pytest.approx(math.log(1.21) / math.sqrt(2)) and n == 1
    two, n2 = scatter_from_repeats([[10.0, 12.1], [20.0, 24.2, 22.0]])
    lx = [math.log(v) for v in (20.0, 24.2, 22.0)]
    m = sum(lx) / 3
    ss = (math.log(1.21) ** 2) / 2 + sum((v - m) ** 2 for v in lx)
    assert two == pytest.approx(math.sqrt(ss / 3)) and n2 == 2
    assert scatter_from_repeats([[5.0], [5.0, 5.0]]) == (0.0, 0)


def test_drift_and_scatter_add_in_quadrature():
    model = fit_runtime(_rows([1, 2, 3, 4, 5, 6, 7, 8], noise=0.02, seed=2))
    pt = {"flops": 5e8, "params": 7.5e6, "acts": 1.6e6}
    d, s = 0.03, 0.04
    both = model.with_drift(d).with_scatter(s, 6)
    assert both.between_run_sd == pytest.approx(0.05)
    y, lo, hi = model.interval(pt, using="joint")
    y2, lo2, hi2 = both.interval(pt, using="joint")
    extra = Z95 * 0.05 * y  # √(d² + s²) = 0.05
    assert y2 == y
    assert hi2 - y == pytest.approx(math.hypot(hi - y, extra), rel=1e-9)
    assert y - lo2 == pytest.approx(math.hypot(y - lo, extra), rel=1e-9)
    # the log fit's interval is symmetric in log time: the terms add there
    y, lo, hi = model.interval(pt, using="log")
    y2, lo2, hi2 = both.interval(pt, using="log")
    h = math.log(hi / y)
    assert math.log(hi2 / y2) == pytest.approx(math.hypot(h, Z95 * 0.05), rel=1e-9)
    assert math.log(y2 / lo2) == pytest.approx(math.hypot(h, Z95 * 0.05), rel=1e-9)
    # a single metric's line, and another level
    y, lo, hi = model.interval(pt, using="flops", level=0.9)
    _, _, hi2 = both.interval(pt, using="flops", level=0.9)
    assert hi2 - y == pytest.approx(math.hypot(hi - y, 1.6448536269514722 * 0.05 * y), rel=1e-9)
    # scatter alone, through fit_runtime
    alone = fit_runtime(_rows([1, 2, 3, 4, 5, 6, 7, 8], noise=0.02, seed=2), scatter=s,
                        scatter_n=4)
    y, lo, hi = model.interval(pt, using="joint")
    _, _, hi3 = alone.interval(pt, using="joint")
    assert (alone.scatter, alone.scatter_n, alone.drift) == (s, 4, 0.0)
    assert hi3 - y == pytest.approx(math.hypot(hi - y, Z95 * s * y), rel=1e-9)


def test_scatter_round_trips_through_json_and_older_json_reads_as_zero():
    model = fit_runtime(_rows([1, 2, 3, 4, 5, 6]), drift=0.01, scatter=0.035, scatter_n=6)
    d = json.loads(json.dumps(model.to_dict()))
    assert (d["scatter"], d["scatter_n"], d["drift"]) == (0.035, 6, 0.01)
    back = RuntimeModel.from_dict(d)
    assert (back.scatter, back.scatter_n, back.drift) == (0.035, 6, 0.01)
    pt = {"flops": 5e8, "params": 7.5e6, "acts": 1.6e6}
    assert back.interval(pt) == pytest.approx(model.interval(pt))
    older = {k: v for k, v in d.items() if k not in ("scatter", "scatter_n")}
    old = RuntimeModel.from_dict(older)
    assert (old.scatter, old.scatter_n, old.drift) == (0.0, 0, 0.01)


@pytest.mark.parametrize(("scatter", "n", "message"), [
    (-0.01, 3, "scatter must be"), (float("nan"), 3, "scatter must be"),
    (0.02, -1, "re-timed models must be"),
])
def test_with_scatter_rejects_bad_values(scatter, n, message):
    with pytest.raises(NetscaleError, match=message):
        fit_runtime(_rows([1, 2, 3, 4, 5, 6])).with_scatter(scatter, n)


def _study_trial(tid: str, seed: int, width: int, time_ms: float, timed_as: str | None = None
                 ) -> TrialRow:
    flops = 1e6 * width
    row = {"mode": "infer", "status": "ok", "time_ms": time_ms, "batch_size": 8,
           "device": "cpu", "flops": flops, "params": flops / 10, "acts": flops / 5}
    if timed_as:
        row["timed_as"] = timed_as
    return TrialRow(id=tid, base="b", strategy="w", factor=float(width), seed=seed,
                    status="done", attempts=1, failures=0, spec={"width": width},
                    flops=int(flops), params=int(flops / 10), acts=int(flops / 5),
                    resolution=8, bench=[row])


def _time(width: int) -> float:
    return 2.0 + 0.5 * width + 0.01 * width**2


def test_study_runtime_takes_the_scatter_from_networks_timed_twice():
    # a timing-only study: every seed of a network timed in its own process
    trials = []
    for w in range(1, 7):
        trials.append(_study_trial(f"w{w}s0", 0, w, _time(w)))
        trials.append(_study_trial(f"w{w}s1", 1, w, _time(w) * math.exp(0.05 * (-1) ** w)))
    rt = study_runtime(trials)
    assert rt is not None and rt.model.drift == 0.0
    # every network: log-change ±0.05 between its two timings, so 0.05 / √2
    assert rt.model.scatter == pytest.approx(0.05 / math.sqrt(2)) and rt.model.scatter_n == 6


def test_study_runtime_shared_timings_are_not_repeats():
    # a study that trains: each network timed once, its other seed shares the timing
    trials = []
    for w in range(1, 7):
        trials.append(_study_trial(f"w{w}s0", 0, w, _time(w)))
        trials.append(_study_trial(f"w{w}s1", 1, w, _time(w), timed_as=f"w{w}s0"))
    rt = study_runtime(trials)
    assert rt is not None and (rt.model.scatter, rt.model.scatter_n) == (0.0, 0)
    rows = [{"spec": {"width": 1}, "id": "a", "time_ms": 3.0},
            {"spec": {"width": 1}, "id": "b", "time_ms": 3.0, "timed_as": "a"},
            {"spec": {"width": 1}, "id": "c", "time_ms": 3.3},
            {"spec": {"width": 2}, "id": "d", "time_ms": 5.0}]
    assert sorted(map(sorted, network_timings(rows).values())) == [[3.0, 3.3], [5.0]]
