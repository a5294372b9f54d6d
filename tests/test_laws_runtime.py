"""Runtime models from complexity metrics, and learning-rate / batch-size rules."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from netscale.bench.fit import RuntimeModel, fit_runtime
from netscale.errors import NetscaleError
from netscale.train.lr_rules import lr_rule, scaled_lr


def bench_rows(seed=0, n=12, noise=0.01):
    """Synthetic benchmark: time (ms) = 0.8 + 2e-9·flops + 5e-7·acts, with relative noise.

    flops and acts vary independently enough (different strategies) to identify both costs.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        flops = float(rng.uniform(2e8, 8e9))
        acts = float(flops / 300 * rng.uniform(0.5, 2.0))
        params = float(flops / 150 * rng.uniform(0.3, 3.0))
        t = (0.8 + 2e-9 * flops + 5e-7 * acts) * math.exp(rng.normal(0, noise))
        rows.append({"flops": flops, "params": params, "acts": acts, "time_ms": t})
    return rows


def test_recovers_a_known_linear_relation_and_reports_r():
    rng = np.random.default_rng(1)
    flops = np.geomspace(1e8, 1e10, 15)
    time = 1.5 + 3e-9 * flops + rng.normal(0, 0.05, flops.size)
    rows = [{"flops": f, "params": f / 100, "acts": f ** 0.5, "time_ms": t}
            for f, t in zip(flops, time)]
    model = fit_runtime(rows, metrics=("flops",))
    fit = model.per_metric["flops"]
    assert fit.slope == pytest.approx(3e-9, rel=0.02)
    assert fit.intercept == pytest.approx(1.5, abs=0.1)
    assert fit.pearson_r == pytest.approx(np.corrcoef(flops, time)[0, 1])
    assert fit.pearson_r > 0.99 and fit.r2 == pytest.approx(fit.pearson_r**2)
    assert model.predict(flops=5e9) == pytest.approx(1.5 + 15, rel=0.01)
    assert model.best_metric == "flops"


def test_joint_fit_recovers_costs_per_metric():
    model = fit_runtime(bench_rows(noise=0.0))
    assert model.joint is not None
    assert model.joint.coefficients["flops"] == pytest.approx(2e-9, rel=1e-3)
    assert model.joint.coefficients["acts"] == pytest.approx(5e-7, rel=1e-3)
    assert model.joint.coefficients["params"] == pytest.approx(0.0, abs=1e-12)
    assert model.joint.intercept == pytest.approx(0.8, rel=1e-3)
    assert model.joint.r2 == pytest.approx(1.0)
    point = {"flops": 1.6e10, "params": 1e8, "acts": 4e7}
    assert model.predict(point) == pytest.approx(0.8 + 32 + 20, rel=1e-3)
    # noisy: still close, and joint beats any single metric
    noisy = fit_runtime(bench_rows(seed=3, noise=0.02))
    assert noisy.joint.r2 > max(f.r2 for f in noisy.per_metric.values())
    assert noisy.predict(point) == pytest.approx(52.8, rel=0.08)
    assert all(v >= 0 for v in noisy.joint.coefficients.values()) and noisy.joint.intercept >= 0


def test_power_fit_per_metric():
    acts = np.geomspace(1e6, 1e8, 10)
    rows = [{"flops": a * 300, "params": a, "acts": a, "time_ms": 4e-4 * a**0.8} for a in acts]
    model = fit_runtime(rows)
    fit = model.per_metric["acts"]
    assert fit.loglog_exponent == pytest.approx(0.8)
    assert fit.loglog_coef == pytest.approx(4e-4, rel=1e-6)
    assert fit.loglog_r == pytest.approx(1.0)
    assert model.predict(acts=1e9, using="acts:power") == pytest.approx(4e-4 * 1e9**0.8)
    lin = model.predict(acts=1e9, using="acts")
    assert lin == pytest.approx(fit.intercept + fit.slope * 1e9)


def test_few_rows_skip_the_joint_fit():
    model = fit_runtime(bench_rows(n=3))
    assert model.joint is None and any("joint fit skipped" in s for s in model.notes)
    assert model.predict(flops=1e9, params=1e7, acts=3e6) == pytest.approx(
        model.per_metric[model.best_metric].predict(
            {"flops": 1e9, "params": 1e7, "acts": 3e6}[model.best_metric]))
    with pytest.raises(NetscaleError, match="no joint runtime fit"):
        model.predict(flops=1e9, params=1e7, acts=3e6, using="joint")


def test_constant_metric_gives_undefined_r_not_a_crash():
    rows = [{"flops": f, "params": 5e6, "acts": f / 100, "time_ms": 1 + f * 1e-9}
            for f in (1e9, 2e9, 3e9, 4e9, 5e9)]
    model = fit_runtime(rows)
    r = {m: f.pearson_r for m, f in model.per_metric.items()}
    assert math.isnan(r["params"]) and r["flops"] == pytest.approx(1.0)
    assert any("params is constant" in s for s in model.notes)
    assert math.isnan(model.per_metric["params"].loglog_exponent)


def test_round_trip_json():
    model = fit_runtime(bench_rows())
    back = RuntimeModel.from_dict(json.loads(json.dumps(model.to_dict())))
    pt = {"flops": 3e9, "params": 2e7, "acts": 1e7}
    assert back.predict(pt) == pytest.approx(model.predict(pt))
    assert back.predict(pt, using="flops:power") == pytest.approx(
        model.predict(pt, using="flops:power"))
    assert {m: f.pearson_r for m, f in back.per_metric.items()} == pytest.approx(
        {m: f.pearson_r for m, f in model.per_metric.items()})


def test_interval_extrapolation_and_formula_of_the_one_model():
    model = fit_runtime(bench_rows(noise=0.02))
    pt = {"flops": 3e9, "params": 2e7, "acts": 1e7}
    y, lo, hi = model.interval(pt)
    assert model.predictor == "joint" and lo < y < hi
    assert (y, lo, hi) == pytest.approx(model.joint.interval(pt))
    assert model.interval(pt, using="acts") == pytest.approx(
        model.per_metric["acts"].interval(1e7))
    assert math.isnan(model.interval(pt, using="acts:power")[1])
    back = RuntimeModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert back.interval(pt) == pytest.approx((y, lo, hi))
    # extrapolation: the factor past the measured range of any metric (1.0 inside)
    f_lo, f_hi = model.ranges["flops"]
    a_lo, _ = model.ranges["acts"]
    assert model.extrapolation(pt) == 1.0
    assert model.extrapolation(flops=2 * f_hi, acts=1e7) == pytest.approx(2.0)
    assert model.extrapolation(flops=f_lo, acts=a_lo / 4) == pytest.approx(4.0)
    # the formula, in the target's unit, optionally per a unit of the metric
    rows = [{"acts": a, "time_ms": 2 + 3e-6 * a} for a in (1e6, 2e6, 4e6, 5e6)]
    line = fit_runtime(rows, metrics=("acts",))
    assert line.formula("acts", {"acts": (1e6, "M")}) == "time_ms = 2 + 3·acts[M]"
    assert line.formula("joint") == "time_ms = 2 + 3e-06·acts"


@pytest.mark.parametrize("rows, words", [
    ([], "at least 3"),
    ([{"flops": 1e9, "params": 1, "acts": 1, "time_ms": 1.0}], "at least 3"),
    ([{"flops": 1e9, "params": 1, "acts": 1, "time_ms": 1.0}, {"flops": 2e9, "params": 1}],
     "no 'acts'"),
    ([{"flops": 1e9, "params": 1, "acts": 1, "time_ms": 1.0},
      {"flops": 2e9, "params": 1, "acts": 1, "time_ms": float("nan")}], "NaN"),
    ([{"flops": 1e9, "params": 1, "acts": 1, "time_ms": 1.0},
      {"flops": 2e9, "params": 1, "acts": 1, "time_ms": 0.0}], "must be > 0"),
    ([{"flops": 1e9, "params": 1, "acts": 1, "time_ms": 1.0},
      {"flops": -2e9, "params": 1, "acts": 1, "time_ms": 2.0}], ">= 0"),
])
def test_bad_runtime_rows_raise_clear_errors(rows, words):
    with pytest.raises(NetscaleError) as exc:
        fit_runtime(rows)
    assert words in str(exc.value)


def test_bad_predict_arguments():
    model = fit_runtime(bench_rows())
    with pytest.raises(NetscaleError, match="needs 'acts'"):
        model.predict(flops=1e9, params=1e7)
    with pytest.raises(NetscaleError, match="unknown runtime predictor"):
        model.predict(flops=1e9, using="latency")


def test_custom_metrics_and_target():
    rows = [{"epoch_flops": f, "ms": 2 * f} for f in (1.0, 2.0, 3.0)]
    model = fit_runtime(rows, metrics=("epoch_flops",), target="ms")
    assert model.target == "ms" and model.predict(epoch_flops=10) == pytest.approx(20)


# --------------------------------------------------------------------------------------------
# learning-rate rules


def test_linear_rule_for_sgd_and_sqrt_for_adam():
    assert scaled_lr(0.1, 1024, 256, "sgd") == pytest.approx(0.4)
    assert scaled_lr(0.1, 64, 256, "SGD") == pytest.approx(0.025)
    assert scaled_lr(1e-3, 1024, 256, "adamw") == pytest.approx(2e-3)
    assert scaled_lr(1e-3, 64, 256, "Adam") == pytest.approx(5e-4)
    assert scaled_lr(0.1, 256, 256, "rmsprop") == 0.1
    assert lr_rule("momentum") == "linear" and lr_rule("lamb") == "sqrt"
    assert scaled_lr(0.1, 1024, 256, "adamw", rule="linear") == pytest.approx(0.4)
    assert scaled_lr(0.1, 1024, 256, "anything", rule="none") == 0.1


@pytest.mark.parametrize("args, kw, words", [
    ((0.1, 512, 256, "adagrad"), {}, "no learning-rate scaling rule"),
    ((0.0, 512, 256), {}, "positive"),
    ((0.1, 0, 256), {}, "batch size"),
    ((0.1, 512, 25.5), {}, "reference batch size"),
    ((0.1, 512, 256), {"rule": "cubic"}, "unknown learning-rate rule"),
])
def test_lr_rule_errors(args, kw, words):
    with pytest.raises(NetscaleError) as exc:
        scaled_lr(*args, **kw)
    assert words in str(exc.value)
