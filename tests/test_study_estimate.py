"""Wall-time estimates: the dry run's estimate (with and without the data present) and the
progress ETA, checked on a simulated clock (no timing in the test)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from netscale.data.config import DataConfig
from netscale.study.estimate import (
    TRIAL_OVERHEAD_S,
    EtaModel,
    StudyWork,
    bench_seconds,
    data_sizes,
    estimate_study,
)


@dataclass
class _Trial:
    id: str
    flops: int
    acts: int = 0
    status: str = "pending"
    epochs_done: int = 0
    bench: list = field(default_factory=list)
    time_ms: float | None = None


def test_data_sizes_use_subsets_and_known_sets() -> None:
    assert data_sizes(DataConfig(name="fashion-mnist"), None) == (60_000, 10_000)
    assert data_sizes(DataConfig(name="fashion-mnist", subset=8000, val_subset=2000),
                      None) == (8000, 2000)
    assert data_sizes(DataConfig(name="x"), {"train_size": 500, "val_size": 50}) == (500, 50)
    assert data_sizes(DataConfig(name="x", subset=900), {"train_size": 500,
                                                          "val_size": 50}) == (500, 50)
    assert data_sizes(DataConfig(path="/nowhere"), None) == (None, None)


def test_estimate_study_arithmetic() -> None:
    plan = [_Trial("a", 100, acts=10), _Trial("b", 400, acts=30), _Trial("c", 200, acts=20)]
    probes = {"a": (0.002, 0.001), "b": (0.006, 0.003)}
    work = StudyWork(epochs=2, n_train=1000, n_val=100, bench_enabled=True, bench_budget=1.0,
                     train=True, workers=2, batch_size=64)
    est = estimate_study(plan, {p.id: p.id for p in plan}, work,
                         probe=lambda spec, batch: probes[spec])
    by = {t.id: t for t in est.trials}
    assert by["a"].train_s == 2 * (1000 * 0.002 + 100 * 0.001) + TRIAL_OVERHEAD_S
    assert by["b"].train_s == 2 * (1000 * 0.006 + 100 * 0.003) + TRIAL_OVERHEAD_S
    # c is interpolated in activations half-way between a and b
    assert abs(by["c"].train_s - (2 * (1000 * 0.004 + 100 * 0.002) + TRIAL_OVERHEAD_S)) < 1e-9
    assert est.bench_total_s == 3 * bench_seconds(1.0)
    total_train = sum(t.train_s for t in est.trials)
    assert est.train_total_s == max(total_train / 2, by["b"].train_s)
    assert est.total_s == est.bench_total_s + est.train_total_s


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _simulate(slowdown: float, workers: int, startup: float = 3.0
              ) -> list[tuple[float, float]]:
    """A study whose real epochs take `slowdown` x the model's prediction (a busier or slower
    machine than the benchmark suggested). Returns (ETA, true remaining) after every finished
    epoch from the first finished trial on."""
    clock = _Clock()
    flops = [1e6, 2e6, 4e6, 2e6, 4e6]
    trials = [_Trial(f"t{i}", int(f)) for i, f in enumerate(flops)]
    epochs, n_train, n_val, batch = 3, 1000, 200, 32
    work = StudyWork(epochs=epochs, n_train=n_train, n_val=n_val, bench_enabled=True,
                     bench_budget=1.0, bench_batch=batch, bench_mode="infer", train=True,
                     workers=workers)
    model = EtaModel(trials, work, clock=clock)
    # benchmark phase: one at a time, 2.5 s each; inference time proportional to flops
    assert model.remaining() is not None  # an ETA from the first second, not "?"
    for t in trials:
        model.started(t.id, "bench")
        clock.now += 2.5
        model.bench_done(t.id, time_ms=t.flops / 1e6 * 4.0)
    # the per-trial cost model is itself off by up to +-40 % (data loading, small-model overhead)
    mismatch = dict(zip([t.id for t in trials], [1.4, 0.7, 1.2, 0.6, 1.0]))
    true_epoch = {t.id: slowdown * mismatch[t.id] * model.epoch_seconds(t.id) for t in trials}
    start_cost = slowdown * startup  # process start, imports, data set-up
    # training: a simple event simulation of `workers` slots
    queue = list(trials)
    running: dict[str, list[float]] = {}  # id -> [times of the remaining epoch ends]
    events: list[tuple[float, str, int]] = []
    finished_any = False
    samples: list[tuple[float, list]] = []
    while queue or running:
        while queue and len(running) < workers:
            t = queue.pop(0)
            model.started(t.id, "train")
            ends = [clock.now + start_cost + (k + 1) * true_epoch[t.id] for k in range(epochs)]
            running[t.id] = ends
        tid, end = min(((k, v[0]) for k, v in running.items()), key=lambda kv: kv[1])
        clock.now = end
        ends = running[tid]
        ends.pop(0)
        model.epoch_done(tid, epochs - len(ends))
        if not ends:
            del running[tid]
            model.finished(tid)
            finished_any = True
        if finished_any:
            samples.append((clock.now, model.remaining()))
        events.append((clock.now, tid, epochs - len(ends)))
    t_end = clock.now
    return [(eta, t_end - now) for now, eta in samples if t_end - now > 0]


def test_eta_is_within_2x_from_the_first_finished_trial() -> None:
    for slowdown in (0.3, 1.0, 5.0, 10.0):
        for workers, startup in ((1, 3.0), (2, 3.0), (2, 20.0), (1, 0.5)):
            pairs = _simulate(slowdown, workers, startup)
            assert pairs
            for eta, truth in pairs:
                assert truth / 2 <= eta <= 2 * truth, (slowdown, workers, startup, eta, truth)


def _study(tmp_path: Path, data: dict) -> Path:
    raw = {"out": "out", "bases": ["ResNet-20-CIFAR"], "base_overrides": {"resolution": 16},
           "strategies": ["w"], "factors": [1, 2], "data": data,
           "recipe": {"epochs": 2, "batch_size": 32},
           "bench": {"enabled": True, "batch_size": 4, "budget": 0.5}}
    p = tmp_path / "study.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def test_dry_run_prints_an_estimate_without_the_data(tmp_path: Path, run_cli) -> None:
    cfg = _study(tmp_path, {"name": "cifar10", "path": str(tmp_path / "no-such-dir"),
                            "subset": 500, "val_subset": 100})
    code, stdout, err = run_cli("study", cfg, "--dry-run")
    assert code == 0, err
    assert "data missing:" in stdout and "no-such-dir" in stdout
    assert "estimated wall time (an ESTIMATE" in stdout
    assert "500 training + 100 val images x 2 epochs" in stdout and "probe:" in stdout
    assert not (tmp_path / "out").exists()  # nothing was run or written
    code, stdout, err = run_cli("study", cfg, "--dry-run", "--json")
    rows = json.loads(stdout)
    assert code == 0 and len(rows) == 2
    assert all(r["estimate_s"]["train"] > TRIAL_OVERHEAD_S for r in rows)
    assert all(r["estimate_s"]["bench"] == round(bench_seconds(0.5), 1) for r in rows)


def test_dry_run_refuses_a_misspelled_dataset_but_plans_without_missing_data(
        tmp_path: Path, run_cli) -> None:
    """A dataset name that is neither known nor a folder can never work: refused in one line.
    A known dataset or a folder that is not on this machine may be on the one that runs the
    study: the plan goes on and says the training time is not estimated."""
    code, stdout, err = run_cli("study", _study(tmp_path, {"name": "cifar11"}), "--dry-run")
    assert code == 2 and stdout == ""
    assert len(err.strip().splitlines()) == 1
    assert "unknown dataset 'cifar11'" in err and "did you mean 'cifar10'" in err
    code, stdout, err = run_cli("study", _study(tmp_path, {"path": str(tmp_path / "gone")}),
                                "--dry-run")
    assert code == 0, err
    assert "data missing: data path" in stdout and "gone" in stdout
    assert "training 0s (not estimated: the data is missing" in stdout
    assert not (tmp_path / "out").exists()
