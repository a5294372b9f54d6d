"""The recommendation engine (netscale.advise.recommend) on synthetic studies."""

from __future__ import annotations

import math

import pytest

from netscale.advise.options import CandidateOptions, TimingOptions
from netscale.advise.recommend import recommend
from netscale.advise.records import Constraints
from netscale.advise.sources import load_study
from netscale.advise.study_fits import fast_alpha, fit_study, strategy_exponents
from netscale.errors import NetscaleError
from netscale.specs import NetSpec
from netscale.study.quickstart import quickstart_base
from netscale_fixtures.synthetic import synthetic_study

# truth: dwr (α=1/3) clearly best, w (α=1) worst of the family; d and r poor
TRUTH = {"dr": (0.40, 0.08), "dwr": (0.55, 0.06), "dWr": (0.50, 0.07), "w": (0.30, 0.10),
         "d": (0.25, 0.12), "r": (0.20, 0.14)}


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory):
    """6 strategies x s in 1..16 x 2 seeds: enough points for the saturating law."""
    return synthetic_study(tmp_path_factory.mktemp("big"), strategies=tuple(TRUTH),
                           factors=(1, 2, 4, 8, 16), seeds=(0, 1), truth=TRUTH, noise=0.01)


@pytest.fixture(scope="module")
def quick_dir(tmp_path_factory: pytest.TempPathFactory):
    """Like the quickstart: d, w, r, dwr, dWr at s = 1, 2, 4, one seed."""
    return synthetic_study(tmp_path_factory.mktemp("quick"), truth=TRUTH)


def fake_timer(calls: list[str] | None = None, per: str = "acts"):
    """A deterministic 'measurement': 1 ms + 1 µs per activation (or parameter), at the
    requested batch."""

    def run(spec: NetSpec, batch: int | None, device: str | None):
        from netscale.complexity import complexity_totals

        if calls is not None:
            calls.append(spec.name)
        counts = complexity_totals(spec)
        v = counts.acts if per == "acts" else counts.params
        return 1.0 + 1e-6 * v, batch or 8, device or "cpu"

    return run


def by_name(rec):
    return {c.name: c for c in rec.candidates}


def test_fast_family_identified_by_exponents_not_names():
    assert fast_alpha(strategy_exponents("dr")) == pytest.approx(0.0)
    assert fast_alpha(strategy_exponents("dwr")) == pytest.approx(1 / 3)
    assert fast_alpha(strategy_exponents("dWr")) == pytest.approx(0.8)
    assert fast_alpha(strategy_exponents("w")) == pytest.approx(1.0)
    assert fast_alpha(strategy_exponents("e_d=0.25,e_w=0.25,e_r=0.125")) == pytest.approx(0.5)
    for name in ("d", "r", "dw", "wr"):
        assert fast_alpha(strategy_exponents(name)) is None


def test_ranks_by_predicted_error_and_explains_losers(study_dir):
    rec = recommend(study_dir, "32x")
    assert rec.mode == "study" and rec.ranking == "predicted error"
    ranked = [c for c in rec.candidates if c.rank is not None]
    errs = [c.error.value for c in ranked[1:]]
    assert errs == sorted(errs)
    # the truth makes dwr (or an α right next to it) best and d / r worst
    best = min(ranked, key=lambda c: c.error.value)
    assert best.alpha is not None and abs(best.alpha - 1 / 3) <= 0.15
    # the chosen one is the fastest of those statistically tied with the best
    names = by_name(rec)
    tied = [rec.chosen] + [names[n] for n in rec.tied]
    assert best in tied and rec.chosen.name not in rec.tied
    assert rec.chosen.time_ms == min(c.time_ms for c in tied)
    assert rec.chosen.alpha is not None and abs(rec.chosen.alpha - 1 / 3) <= 0.2
    assert names["r"].error.value > names["dwr"].error.value
    assert "points predicted error vs" in names["d"].verdict
    assert rec.chosen.error.lo <= rec.chosen.error.value <= rec.chosen.error.hi
    # the spec really is scaled to the target with exact rounding
    assert rec.chosen.flops_factor == pytest.approx(32, rel=0.03)
    spec = rec.chosen_spec()
    assert isinstance(spec, NetSpec)
    # extrapolating 2x past the largest trained model is reported
    assert rec.chosen.error.extrapolation > 1.5
    assert any("extrapolated" in n for n in rec.notes)
    # untrained strategies outside the fast family have no data
    assert names["dw"].error is None and "no data" in names["dw"].verdict


def test_untrained_alpha_is_interpolated_between_family_members(study_dir):
    rec = recommend(study_dir, "8x", candidates=CandidateOptions(strategies=[], alphas=[0.5, 0.9]))
    names = by_name(rec)
    c = names["fast:0.5"]
    assert c.same_as is None and c.error.method == "interpolated"
    assert "dwr" in c.error.source and "dWr" in c.error.source
    # log-linear in α between the neighbours' laws, evaluated at this candidate's flops
    fits = fit_study(load_study(study_dir).trials)
    p1 = fits.fits["dwr"].report.predict(c.flops)
    p2 = fits.fits["dWr"].report.predict(c.flops)
    t = (0.5 - 1 / 3) / (0.8 - 1 / 3)
    assert c.error.value == pytest.approx(p1.value ** (1 - t) * p2.value**t, rel=1e-9)
    assert c.error.lo == pytest.approx(p1.lo ** (1 - t) * p2.lo**t, rel=1e-9)
    assert min(p1.value, p2.value) <= c.error.value <= max(p1.value, p2.value)
    c9 = names["fast:0.9"]
    assert c9.same_as is None and "dWr" in c9.error.source and "w (" in c9.error.source


def test_alpha_outside_trained_family_has_no_data(quick_dir):
    # the quickstart trains dwr (1/3), dWr (0.8), w (1): α = 0.1 cannot be interpolated
    rec = recommend(quick_dir, "4x", candidates=CandidateOptions(strategies=[], alphas=[0.1]))
    c = by_name(rec)["fast:0.1"]
    assert c.same_as is None
    assert c.error is None and "outside the trained fast-compound members" in c.verdict
    assert c.rank is None


def test_quickstart_sized_study_uses_power_law(quick_dir):
    rec = recommend(quick_dir, "8x")
    # a fitted or interpolated (power/power) prediction: the power law either way
    assert rec.chosen.error is not None and set(rec.chosen.error.law.split("/")) == {"power"}
    assert all(f["law"] == "power" for f in rec.fits.values())
    assert rec.runtime is not None and rec.runtime["batch_size"] == 32
    assert "batch 32" in rec.runtime_basis
    d = rec.to_dict()
    assert d["chosen"]["spec"]["stages"] and d["units"]["flops"] == "multiply-adds"


def test_params_constraint_excludes_and_says_why(study_dir):
    free = recommend(study_dir, "16x")
    limit = free.chosen.params * 0.9
    rec = recommend(study_dir, "16x", constraints=Constraints(max_params=limit))
    assert rec.chosen.params <= limit
    loser = by_name(rec)[free.chosen.name]
    assert not loser.feasible and "params" in loser.verdict and "> max" in loser.verdict
    # a constraint can only remove options: nothing beats the unconstrained best error
    free_best = min(c.error.value for c in free.candidates if c.rank is not None)
    assert rec.chosen.error.value >= free_best


def test_latency_constraint_uses_runtime_model(study_dir):
    free = recommend(study_dir, "16x")
    times = sorted(c.time_ms for c in free.candidates if c.feasible)
    limit = (times[0] + times[-1]) / 2
    rec = recommend(study_dir, "16x", constraints=Constraints(max_latency_ms=limit))
    assert rec.chosen.time_ms <= limit
    slow = [c for c in rec.candidates if c.usable and c.time_ms > limit]
    assert slow and all("latency" in c.verdict for c in slow)
    assert rec.constraints.batch_size == 32  # the study's benchmark batch size


def test_infeasible_constraints_name_the_constraint_and_closest(study_dir):
    with pytest.raises(NetscaleError, match=r"max params alone excludes every candidate.*"
                                            r"closest: \S+ \(params .* > max 1k"):
        recommend(study_dir, "4x", constraints=Constraints(max_params=1000))
    with pytest.raises(NetscaleError, match="max latency alone excludes every candidate"):
        recommend(study_dir, "4x", constraints=Constraints(max_latency_ms=1e-3))


def test_tie_breaks_by_runtime(study_dir):
    rec = recommend(study_dir, "16x", tie=0.05)  # 5 points: many candidates tie
    close = [c for c in rec.candidates if c.rank is not None
             and c.error.value <= min(x.error.value for x in rec.candidates
                                      if x.rank is not None) + 0.05]
    assert len(close) > 1
    assert rec.chosen.time_ms == min(c.time_ms for c in close)


def test_measure_overrides_predicted_runtime(study_dir):
    calls: list[str] = []
    rec = recommend(study_dir, "4x", timing=TimingOptions(measure=True,
                    measure_fn=fake_timer(calls)), constraints=Constraints(max_params=2e6))
    assert calls  # every statically feasible candidate was timed
    assert rec.chosen.measured_ms is not None
    assert rec.chosen.measured_source.startswith("measured here")
    assert rec.chosen.runtime_ms is not None  # the prediction is still shown
    assert "measured here" in rec.runtime_basis


def test_batch_size_mismatch_needs_measure(study_dir):
    with pytest.raises(NetscaleError, match=r"batch 32.*not at batch 8.*--measure"):
        recommend(study_dir, "4x", constraints=Constraints(max_latency_ms=10, batch_size=8))
    rec = recommend(study_dir, "4x", constraints=Constraints(max_latency_ms=1e4, batch_size=8),
                    timing=TimingOptions(measure=True, measure_fn=fake_timer()))
    assert rec.runtime_batch == 8 and rec.chosen.measured_ms is not None


def test_absolute_target_and_bad_targets(study_dir):
    st = load_study(study_dir)
    base_flops = next(t.flops for t in st.trials if t.strategy == "base")
    rec = recommend(study_dir, f"{4 * base_flops / 1e6:.6f}M")
    assert rec.factor == pytest.approx(4, rel=1e-4)
    for bad in ("4y", "-2x", "0x"):
        with pytest.raises(NetscaleError):
            recommend(study_dir, bad)


def test_no_study_ranks_by_prior_and_measures(tmp_path):
    calls: list[str] = []
    rec = recommend(quickstart_base(), "4x", timing=TimingOptions(measure_fn=fake_timer(calls)))
    assert rec.mode == "base" and rec.ranking == "prior"
    assert calls and rec.chosen.measured_ms is not None
    assert rec.chosen.alpha == pytest.approx(0.8)  # dWr: the paper's recommendation
    assert rec.chosen.error is None
    # a latency limit below dWr's time moves the choice to the feasible candidate with α
    # closest to 0.8 (time grows with params here, and params grow with α)
    slow = recommend(quickstart_base(), "4x",
                     timing=TimingOptions(measure_fn=fake_timer(per="params")))
    dwr_ms = slow.chosen.measured_ms
    rec2 = recommend(quickstart_base(), "4x",
                     constraints=Constraints(max_latency_ms=dwr_ms * 0.999),
                         timing=TimingOptions(measure_fn=fake_timer(per="params")))
    assert rec2.chosen.name != "dWr" and rec2.chosen.measured_ms < dwr_ms
    assert "latency" in by_name(rec2)["dWr"].verdict
    feasible_alphas = [c.alpha for c in rec2.candidates if c.feasible and c.alpha is not None]
    assert abs(rec2.chosen.alpha - 0.8) == min(abs(a - 0.8) for a in feasible_alphas)


def test_no_study_without_measurement_refuses_latency():
    with pytest.raises(NetscaleError, match="needs measured runtimes"):
        recommend(quickstart_base(), "4x", constraints=Constraints(max_latency_ms=5),
                  timing=TimingOptions(measure=False))


def test_real_bench_harness_measures_one_candidate():
    base = quickstart_base(resolution=8)
    rec = recommend(base, "2x", candidates=CandidateOptions(strategies=["dWr"], alphas=[]),
                    constraints=Constraints(batch_size=1), timing=TimingOptions(budget_s=0.1))
    assert rec.chosen.measured_ms is not None and rec.chosen.measured_ms > 0
    assert math.isfinite(rec.chosen.measured_ms)


def test_bad_sources(tmp_path):
    with pytest.raises(NetscaleError, match="not a study directory"):
        recommend(tmp_path, "4x")
    with pytest.raises(NetscaleError, match="neither a study directory"):
        recommend("no-such-model-xyz", "4x")
    empty = synthetic_study(tmp_path / "untrained", train=False)
    with pytest.raises(NetscaleError, match="no trained trials"):
        recommend(empty, "4x")


def test_constraints_validate():
    with pytest.raises(NetscaleError):
        Constraints(max_latency_ms=-1).validate()
    with pytest.raises(NetscaleError):
        Constraints(batch_size=0).validate()
    assert "params <= 25M" in Constraints(max_params=25e6).text()


def test_measured_candidates_are_timed_in_the_runtime_models_setting(monkeypatch) -> None:
    from types import SimpleNamespace

    from netscale.advise import runtimes
    from netscale.specs import resolve_spec

    seen: list[tuple[str, str]] = []

    def fake_bench(spec, cfg):  # records the setting the harness was asked for
        seen.append((cfg.memory_format, cfg.precision))
        return SimpleNamespace(status="ok", time_ms=1.5, batch_size=2, device="cpu")

    monkeypatch.setattr(runtimes, "bench_spec", fake_bench)
    spec = resolve_spec("ResNet-20-CIFAR")
    assert TimingOptions().timer("channels_last+fp32")(spec, 2, "cpu") == (1.5, 2, "cpu")
    assert TimingOptions().timer()(spec, 2, "cpu") == (1.5, 2, "cpu")
    assert seen == [("channels_last", "fp32"), ("contiguous", "fp32")]
