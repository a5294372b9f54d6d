"""Timing harness, result rows, runtime fit and runtime analysis (`netscale.bench`).

No timing asserts: the timing engine is tested with a fake clock and fake block runners; real
measurements on tiny models are checked for structure only.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import astuple

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from netscale.bench import (
    CSV_FIELDS,
    SCHEMA,
    BenchConfig,
    BenchResult,
    TimingPolicy,
    bench_module,
    bench_spec,
    empty_model,
    fit_runtime,
    generate_models,
    load_results,
    measure_runtime,
    pearson_r,
    plot_runtime,
    resolve_device,
    summarize,
    to_csv,
    write_results,
)
from netscale.bench.fit import fit_joint, fit_metric
from netscale.bench.setting import ExecSetting
from netscale.complexity import complexity_totals
from netscale.errors import NetscaleError
from netscale.specs import get_spec

FAST = TimingPolicy(warmup_iters=1, warmup_s=0.0, min_samples=3, max_samples=5, budget_s=0.2,
                    min_block_s=0.002)


def tiny_spec():
    return get_spec("ResNet-20-CIFAR").replace(resolution=16, name="tiny")


# --------------------------------------------------------------------------- timing engine


class FakeClock:
    """A clock that only moves when the fake model 'runs'."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def fake_runner(clock: FakeClock, per_iter: list[float], phases: tuple[str, ...] = ("forward",),
                per_block: bool = False):
    """Runs a block of n iterations whose per-iteration time cycles through ``per_iter``
    (per iteration, or per block with ``per_block``); the time is split evenly over
    ``phases``."""
    state = {"i": 0, "calls": []}

    def run(n: int) -> dict[str, float]:
        total = 0.0
        if per_block:
            total = n * per_iter[len(state["calls"]) % len(per_iter)]
        for _ in range(n):
            if not per_block:
                total += per_iter[state["i"] % len(per_iter)]
            state["i"] += 1
        clock.t += total
        state["calls"].append(n)
        return {p: total / len(phases) for p in phases}

    return run, state


def test_summarize_quartiles() -> None:
    s = summarize([0.001, 0.002, 0.003, 0.004, 0.005])  # seconds -> ms
    assert (s.median_ms, s.q1_ms, s.q3_ms, s.iqr_ms) == pytest.approx((3, 2, 4, 2))
    assert s.samples == 5 and s.min_ms == pytest.approx(1) and s.max_ms == pytest.approx(5)
    assert s.rel_iqr == pytest.approx(2 / 3)
    # same quartiles as numpy's default (linear) method
    xs = [0.7, 0.1, 0.5, 0.33, 0.9, 0.2]
    s = summarize(xs)
    assert s.q1_ms == pytest.approx(np.percentile(xs, 25) * 1e3)
    assert s.q3_ms == pytest.approx(np.percentile(xs, 75) * 1e3)


def test_steady_timing_converges_and_is_not_noisy() -> None:
    clock = FakeClock()
    run, state = fake_runner(clock, [0.010])
    policy = TimingPolicy(warmup_iters=3, warmup_s=0.0, min_samples=5, max_samples=50,
                          budget_s=10, min_block_s=0.05)
    m = measure_runtime(run, policy, clock)
    assert m.stop_reason == "converged" and not m.noisy
    assert m.warmup_iters == 3 and state["calls"][:3] == [1, 1, 1]
    assert m.iters_per_sample == 5  # ceil(0.05 s / 0.010 s)
    assert all(n == 5 for n in state["calls"][3:])
    assert m.total.samples == 5 and m.total.median_ms == pytest.approx(10.0)
    assert m.total.iqr_ms == pytest.approx(0.0)
    assert set(m.phases) == {"forward"}


def test_jittery_timing_is_flagged_noisy() -> None:
    clock = FakeClock()
    # alternating fast / slow blocks: relative IQR far above the 5% threshold
    run, _ = fake_runner(clock, [0.010, 0.020], per_block=True)
    policy = TimingPolicy(warmup_iters=0, warmup_s=0.0, min_samples=5, max_samples=40,
                          budget_s=0.5, min_block_s=0.015, noisy_threshold=0.05)
    m = measure_runtime(run, policy, clock)
    assert m.noisy and m.total.rel_iqr > 0.05
    assert m.stop_reason == "budget"  # kept sampling until the (fake) budget was spent
    assert clock.t >= 0.5 and m.total.samples >= 5


def test_small_jitter_below_threshold_is_not_noisy() -> None:
    clock = FakeClock()
    run, _ = fake_runner(clock, [0.0100, 0.0101, 0.0099, 0.0100], per_block=True)
    policy = TimingPolicy(warmup_iters=1, warmup_s=0.0, min_samples=8, max_samples=8,
                          budget_s=100, min_block_s=0.0, target_spread=0.0)
    m = measure_runtime(run, policy, clock)
    assert m.stop_reason == "max_samples" and m.total.samples == 8
    assert not m.noisy and 0 < m.total.rel_iqr < 0.05


def test_timing_per_phase_and_threshold_option() -> None:
    clock = FakeClock()
    run, _ = fake_runner(clock, [0.030, 0.033], phases=("forward", "backward", "step"),
                         per_block=True)
    strict = TimingPolicy(warmup_iters=1, warmup_s=0.0, min_samples=6, max_samples=6,
                          min_block_s=0.0, noisy_threshold=0.01)
    m = measure_runtime(run, strict, clock)
    assert set(m.phases) == {"forward", "backward", "step"}
    assert m.phases["forward"].median_ms == pytest.approx(m.total.median_ms / 3)
    assert m.noisy  # ±5% alternation exceeds a 1% threshold ...
    lax = TimingPolicy(**{**strict.to_dict(), "noisy_threshold": 0.2})
    assert not measure_runtime(run, lax, clock).noisy  # ... but not a 20% one


def test_policy_validation() -> None:
    with pytest.raises(NetscaleError, match="budget"):
        TimingPolicy(budget_s=0).validate()
    with pytest.raises(NetscaleError):
        TimingPolicy(min_samples=10, max_samples=5).validate()


# --------------------------------------------------------------------------- runtime fit


def _rows(n: int = 9, seed: int = 0) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    return [{"flops": float(f), "params": float(p), "acts": float(a)}
            for f, p, a in zip(rng.uniform(1e8, 4e9, n), rng.uniform(1e6, 4e7, n),
                               rng.uniform(1e6, 3e7, n))]


def test_fit_recovers_a_known_linear_runtime_model() -> None:
    rows = _rows()
    for r in rows:  # runtime driven by activations only: 3 ms per M acts + 5 ms
        r["time_ms"] = 3e-6 * r["acts"] + 5.0
    fit = fit_runtime(rows)
    acts = fit.per_metric["acts"]
    assert acts.pearson_r == pytest.approx(1.0) and acts.r2 == pytest.approx(1.0)
    assert acts.slope == pytest.approx(3e-6) and acts.intercept == pytest.approx(5.0)
    assert fit.best_metric == "acts" and fit.ranking()[0] == "acts"
    assert abs(fit.per_metric["flops"].pearson_r) < 0.99
    assert fit.joint is not None and fit.joint.r2 == pytest.approx(1.0)
    assert fit.joint.coefficients["acts"] == pytest.approx(3e-6)
    assert fit.joint.coefficients["flops"] == pytest.approx(0.0, abs=1e-15)
    assert fit.joint.intercept == pytest.approx(5.0)


def test_joint_fit_recovers_coefficients_of_all_metrics() -> None:
    rows = _rows(12, seed=1)
    for r in rows:
        r["time_ms"] = 1.0 + 2e-9 * r["flops"] + 5e-7 * r["params"] + 4e-6 * r["acts"]
    j = fit_runtime(rows).joint
    assert j is not None and j.rank == 3
    assert j.coefficients == pytest.approx({"flops": 2e-9, "params": 5e-7, "acts": 4e-6})
    assert j.intercept == pytest.approx(1.0)
    assert j.predict({"flops": 1e9, "params": 1e6, "acts": 1e6}) == pytest.approx(7.5)


def test_joint_fit_is_non_negative_least_squares() -> None:
    from scipy.optimize import nnls

    rng = np.random.default_rng(3)
    a = rng.uniform(1, 10, 12)
    b = a * 2 + rng.normal(0, 0.1, 12)  # nearly collinear with a
    c = rng.uniform(1, 10, 12)
    y = 3 * a - 0.5 * b + 0.2 * c + 1 + rng.normal(0, 0.05, 12)  # OLS would make b negative
    j = fit_joint({"a": a, "b": b, "c": c}, y)
    assert all(v >= 0 for v in j.coefficients.values()) and j.intercept >= 0
    assert j.unused == ["b"]
    ref, _ = nnls(np.column_stack([np.ones(12), a, b, c]), y)  # oracle
    assert [j.intercept, *j.coefficients.values()] == pytest.approx(ref, rel=1e-6, abs=1e-9)


def test_loglog_fit_and_pearson() -> None:
    x = np.array([1e8, 2e8, 4e8, 8e8, 1.6e9])
    f = fit_metric(x, 0.5 * (x / 1e6) ** 0.7, "flops")
    assert f.loglog_exponent == pytest.approx(0.7)
    assert f.loglog_coef == pytest.approx(0.5 * 1e-6**0.7)
    assert f.loglog_r == pytest.approx(1.0)
    assert 0.95 < f.pearson_r < 1.0  # a power law is not exactly linear
    assert pearson_r([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(pearson_r([1, 1, 1], [1, 2, 3]))
    assert pearson_r([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(np.corrcoef(
        [1, 2, 3, 4], [1, 3, 2, 4])[0, 1])


def test_fit_skips_failed_rows_and_needs_three() -> None:
    rows = _rows(4)
    for i, r in enumerate(rows):
        r["time_ms"] = None if i == 0 else 1e-9 * r["flops"]
    fit = fit_runtime(rows)
    assert fit.n == 3 and fit.joint is None and "joint fit skipped" in fit.note
    assert fit.best_metric == "flops"
    with pytest.raises(NetscaleError, match="at least 3"):
        fit_runtime(rows[:3])


def test_constant_metric_and_collinearity() -> None:
    rows = [{"flops": 1e9 * k, "params": 5e6, "acts": 2e6 * k, "time_ms": 10.0 * k}
            for k in (1, 2, 3, 4, 5)]
    fit = fit_runtime(rows)
    assert math.isnan(fit.per_metric["params"].pearson_r)
    assert fit.best_metric in ("flops", "acts") and fit.ranking()[-1] == "params"
    assert fit.joint is not None and fit.joint.rank < 3 and "collinear" in fit.note
    json.dumps(fit.to_dict())  # nan -> null, serialisable
    assert fit.to_dict()["per_metric"]["params"]["pearson_r"] is None


def test_fit_joint_direct() -> None:
    j = fit_joint({"a": [1, 2, 3, 4], "b": [1, 0, 1, 0]}, [6, 5, 10, 9])  # y = 2a + 3b + 1
    assert j.coefficients == pytest.approx({"a": 2.0, "b": 3.0}) and j.n == 4
    assert j.intercept == pytest.approx(1.0) and j.r2 == pytest.approx(1.0) and j.rank == 2


# --------------------------------------------------------------------------- harness


def test_bench_spec_infer_structure_and_json_schema(tmp_path) -> None:
    spec = tiny_spec()
    r = bench_spec(spec, BenchConfig(batch_size=2, device="cpu", policy=FAST, threads=1))
    flops, params, acts = astuple(complexity_totals(spec))
    assert r.ok and r.status == "ok" and r.mode == "infer" and r.device == "cpu"
    assert (r.model, r.flops, r.params, r.acts, r.resolution) == ("tiny", flops, params, acts,
                                                                  16)
    assert r.batch_size == r.requested_batch_size == 2
    assert r.time_ms > 0 and r.iqr_ms >= 0 and r.samples >= 3 and r.iters_per_sample >= 1
    assert set(r.phases) == {"forward"} and r.phases["forward"].median_ms == r.time_ms
    assert r.images_per_s == pytest.approx(2 / (r.time_ms / 1e3))
    assert r.flops_per_batch == flops * 2
    assert r.gflops_per_s == pytest.approx(flops * 2 / (r.time_ms / 1e3) / 1e9)
    assert r.peak_mem_mib is not None and r.peak_mem_mib >= 0 and r.mem_method
    assert r.env is not None and r.env.torch_version == torch.__version__
    assert r.env.threads >= 1 and r.env.dtype == "float32" and r.env.cpu_model

    d = json.loads(json.dumps(r.to_dict()))
    assert d["schema"] == SCHEMA
    for key, typ in [("model", str), ("mode", str), ("device", str), ("batch_size", int),
                     ("flops", int), ("params", int), ("acts", int), ("time_ms", float),
                     ("iqr_ms", float), ("samples", int), ("noisy", bool),
                     ("images_per_s", float), ("phases", dict), ("env", dict)]:
        assert isinstance(d[key], typ), key
    assert set(d["phases"]["forward"]) >= {"median_ms", "iqr_ms", "samples"}
    assert d["units"]["flops"].startswith("multiply-adds")
    assert BenchResult.from_dict(d) == r  # round trip (the study runner stores these)

    path = write_results(tmp_path / "rows.json", [r])
    assert load_results(path) == [r]
    rows = list(csv.DictReader(io.StringIO(to_csv([r]))))
    assert list(rows[0]) == CSV_FIELDS and rows[0]["model"] == "tiny"
    assert float(rows[0]["time_ms"]) == pytest.approx(r.time_ms)
    with pytest.raises(NetscaleError, match=r"\.json or \.csv"):
        write_results(tmp_path / "rows.txt", [r])


def test_train_timing_restores_weights_and_bn_statistics() -> None:
    spec = tiny_spec()
    from netscale.models import build_model

    model = build_model(spec)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    steps = {"n": 0}
    # count optimizer steps to prove training really happened during timing
    hook = register_optimizer_step_post_hook(
        lambda *a: steps.__setitem__("n", steps["n"] + 1))
    try:
        r = bench_module(model, name="tiny", in_channels=3, resolution=16, num_classes=10,
                         config=BenchConfig(mode="train", batch_size=4, policy=FAST, threads=1))
    finally:
        hook.remove()
    assert steps["n"] >= 4  # warm-up + timed blocks ran optimizer steps ...
    after = model.state_dict()
    assert after.keys() == before.keys()
    for k in before:  # ... yet weights, BN running stats and num_batches_tracked are restored
        assert torch.equal(after[k], before[k]), k
    assert not model.training  # train/eval flag restored
    assert all(p.grad is None for p in model.parameters())
    assert set(r.phases) == {"forward", "backward", "step"}
    # each sample's total is the sum of its phases
    assert sum(p.min_ms for p in r.phases.values()) <= r.time_ms * (1 + 1e-9)
    assert r.time_ms <= sum(p.max_ms for p in r.phases.values()) * (1 + 1e-9)
    assert r.flops_per_batch == 3 * r.flops * 4


def test_harness_overhead_on_empty_model() -> None:
    for mode in ("infer", "train"):
        r = bench_module(empty_model(10), name="empty", resolution=8,
                         config=BenchConfig(mode=mode, batch_size=2, policy=FAST, threads=1))
        assert r.ok and r.model == "empty" and r.flops == 0 and r.gflops_per_s is None
        assert r.time_ms > 0 and r.samples >= 3 and r.iters_per_sample >= 1
        assert r.stop_reason in ("converged", "budget", "max_samples")
        assert set(r.phases) == ({"forward"} if mode == "infer"
                                 else {"forward", "backward", "step"})


class _OOMOverBatch(nn.Module):
    """Raises an out-of-memory error for batches larger than ``limit``."""

    def __init__(self, limit: int, cuda_style: bool = True) -> None:
        super().__init__()
        self.limit = limit
        self.cuda_style = cuda_style
        self.fc = nn.Linear(3, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > self.limit:
            if self.cuda_style:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to "
                               "allocate 1000000000 bytes")
        return self.fc(x.mean((2, 3)))


def test_oom_reported_and_retried_at_half_batch() -> None:
    r = bench_module(_OOMOverBatch(2), name="big", resolution=8,
                     config=BenchConfig(batch_size=8, policy=FAST, threads=1))
    assert r.status == "oom" and not r.ok and r.time_ms is None
    assert "out of memory at batch size 8" in r.note and "--retry-oom" in r.note
    assert json.loads(json.dumps(r.to_dict()))["status"] == "oom"

    r = bench_module(_OOMOverBatch(2, cuda_style=False), name="big", resolution=8,
                     config=BenchConfig(batch_size=8, retry_oom=True, policy=FAST, threads=1))
    assert r.ok and r.batch_size == 2 and r.requested_batch_size == 8
    assert "batch size 8, 4" in r.note and "measured at batch size 2" in r.note


def test_contention_is_flagged_and_retried(monkeypatch) -> None:
    from netscale.bench import harness
    from netscale.bench.contention import CpuShare

    shares = [0.6, 0.3, 0.01]  # other processes' CPU share in successive attempts

    class FakeMonitor:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.share = CpuShare(others=shares.pop(0) if shares else 0.01, steal=0.0,
                                  own=0.5)

    monkeypatch.setattr(harness, "CpuMonitor", FakeMonitor)
    never_noisy = TimingPolicy(**{**FAST.to_dict(), "noisy_threshold": 1e9})
    r = bench_spec(tiny_spec(), BenchConfig(batch_size=2, policy=never_noisy, threads=1,
                                            retries=0))  # the default re-measures (2)
    assert r.contended and r.cpu_others == pytest.approx(0.6) and r.attempts == 1
    assert "contended: other processes used 60%" in r.note
    r = bench_spec(tiny_spec(), BenchConfig(batch_size=2, policy=never_noisy, threads=1,
                                            retries=3))
    # retried until uncontended (0.3 is still contended, 0.01 is not), kept that attempt
    assert not r.contended and r.cpu_others == pytest.approx(0.01) and r.attempts == 2
    assert "best of 2 attempts" in r.note


def test_cpu_monitor_sees_own_work() -> None:
    from netscale.bench.contention import CpuMonitor

    with CpuMonitor() as m:
        x = torch.randn(256, 256)
        for _ in range(200):
            x = torch.tanh(x @ x)
    assert m.share.own is not None and m.share.own > 0 and m.share.others >= 0


def test_other_errors_are_not_swallowed() -> None:
    class Broken(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise ValueError("bug in the model")

    with pytest.raises(ValueError, match="bug in the model"):
        bench_module(Broken(), name="broken", resolution=8, num_classes=2,
                     config=BenchConfig(batch_size=1, policy=FAST, threads=1))


def test_compile_failure_is_one_clear_error(monkeypatch) -> None:
    def failing_compile(model, *a, **k):
        def call(*args, **kwargs):
            raise RuntimeError("InductorError: C++ compile error\nlong traceback ...")
        return call

    monkeypatch.setattr(torch, "compile", failing_compile)
    with pytest.raises(NetscaleError) as exc:
        bench_spec(tiny_spec(), BenchConfig(batch_size=1, compile=True, policy=FAST, threads=1))
    msg = str(exc.value)
    assert "torch.compile failed" in msg and "without --compile" in msg and "\n" not in msg


def test_cuda_requested_without_cuda(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(NetscaleError, match="CUDA is not available"):
        resolve_device("cuda")
    assert resolve_device(None) == "cpu"
    with pytest.raises(NetscaleError, match="unknown device"):
        resolve_device("tpu")


def test_setting_and_threads_recorded_and_restored() -> None:
    threads = torch.get_num_threads()
    setting = ExecSetting(memory_format="channels_last", precision="bf16")
    r = bench_spec(tiny_spec(), BenchConfig(batch_size=2, setting=setting, threads=1,
                                            policy=FAST))
    assert r.ok and r.env.amp and r.env.amp_dtype == "bfloat16" and r.env.channels_last
    assert r.env.threads == 1 and torch.get_num_threads() == threads


def test_config_validation() -> None:
    with pytest.raises(NetscaleError, match="mode"):
        BenchConfig(mode="both").validate()
    with pytest.raises(NetscaleError, match="resolution"):
        BenchConfig(resolution=4).validate()


# --------------------------------------------------------------------------- analysis


def test_generate_models_labels_and_factors() -> None:
    base = get_spec("RegNetY-200MF")
    entries = generate_models(base, ["w", "dWr"], [1, 2, 4])
    assert [e.strategy for e in entries] == ["base", "w", "w", "dWr", "dWr"]
    assert entries[0].spec == base and entries[0].factor == 1.0
    f0 = complexity_totals(base).flops
    for e in entries[1:]:
        assert e.base == "RegNetY-200MF"
        assert complexity_totals(e.spec).flops / f0 == pytest.approx(e.factor, rel=0.03)
    with pytest.raises(NetscaleError):
        generate_models(base, ["w"], [0])


def test_plot_runtime_writes_png(tmp_path) -> None:
    from netscale.bench.analysis import format_fit

    rows = []
    for i, (s, k) in enumerate([("base", 1), ("w", 2), ("w", 4), ("d", 2), ("d", 4)]):
        rows.append(BenchResult(model=f"m{i}", mode="infer", device="cpu", batch_size=8,
                                requested_batch_size=8, resolution=224, flops=int(2e8 * k),
                                params=int(3e6 * k), acts=int(2e6 * k ** (0.5 + (s == "d"))),
                                time_ms=10.0 * k, iqr_ms=0.3, samples=7, strategy=s,
                                factor=float(k), noisy=(i == 2)))
    fits = {"infer": fit_runtime(rows)}
    path = plot_runtime(rows, fits, tmp_path / "fig.png", title="test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = format_fit(fits["infer"], "infer")
    assert "Pearson r" in text and "best single predictor" in text and "flops" in text
    with pytest.raises(NetscaleError, match="png"):
        plot_runtime(rows, fits, tmp_path / "fig.txt")
