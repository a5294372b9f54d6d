"""Where a study's time goes: one timing per network shared across seeds, one setting probe
per base for short runs, worker processes kept across trials, and the time breakdown
(store, end-of-study lines, report and ``report --json``)."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import netscale.study.runner as runner
import netscale.study.worker as worker
from netscale.bench.setting import ExecSetting
from netscale.study.config import load_study_config
from netscale.study.quickstart import quickstart_base
from netscale.study.runner import plan_trials, run_study, timing_groups
from netscale.study.store import (
    Store,
    TimeBreakdown,
    record_run_times,
    run_times,
    time_breakdown,
)
from study_helpers import write_config


def _config(tmp_path: Path, **over: Any) -> Path:
    base = tmp_path / "base.yaml"
    if not base.exists():
        quickstart_base(resolution=16).save(base)
    raw: dict[str, Any] = {
        "name": "timed", "out": "out", "bases": ["base.yaml"], "strategies": ["w"],
        "factors": [1, 2], "seeds": [0, 1],
        "data": {"name": "digits", "subset": 128, "val_subset": 64},
        "recipe": {"epochs": 1, "batch_size": 64, "lr": 0.1, "warmup_epochs": 0,
                   "threads": 1},
        "bench": {"enabled": True, "mode": "infer", "batch_size": 4, "budget": 0.05,
                  "threads": 1},
        "retries": 0,
    }
    return write_config(tmp_path, raw, over)


# ------------------------------------------------------------------------ the breakdown


def _run(**parts: float) -> dict[str, float]:
    out = dict.fromkeys(("wall", "probe", "bench", "train", "steps", "evaluation"), 0.0)
    out["workers"] = 1.0
    out.update(parts)
    return out


def test_breakdown_divides_summed_worker_seconds_by_the_workers() -> None:
    b = TimeBreakdown.of([_run(wall=100, probe=2, bench=18, train=70, workers=2, steps=100,
                               evaluation=20)])
    assert b is not None
    assert (b.benchmark, b.steps, b.evaluation, b.idle, b.setup) == (20, 50, 10, 10, 10)
    assert b.overhead == 20 and b.share("overhead") == 0.2 and b.share("steps") == 0.5
    assert sum(getattr(b, p) for p in ("benchmark", "steps", "evaluation", "idle",
                                       "setup")) == b.wall


def test_breakdown_sums_runs_and_never_exceeds_a_phase() -> None:
    # a resumed study: two driver runs; the second's reported seconds exceed its phase
    b = TimeBreakdown.of([_run(wall=50, bench=10, train=30, steps=20, evaluation=5),
                          _run(wall=40, train=30, steps=45, evaluation=15)])
    assert b is not None and b.runs == 2 and b.wall == 90
    assert b.steps == pytest.approx(20 + 30 * 45 / 60)
    assert b.evaluation == pytest.approx(5 + 30 * 15 / 60)
    assert b.idle == pytest.approx(5) and b.setup == pytest.approx(10 + 10)
    assert TimeBreakdown.of([]) is None


def test_breakdown_record_and_to_dict(tmp_path: Path) -> None:
    with Store(tmp_path / "results.sqlite") as store:
        assert run_times(store) == [] and time_breakdown(store) is None  # no table yet
        rid = record_run_times(store, None, {"wall": 10, "bench": 4, "started": 1.0})
        assert record_run_times(store, rid, {"wall": 20, "bench": 4, "train": 10,
                                             "workers": 2, "steps": 12}) == rid
        b = time_breakdown(store)
    assert b is not None and b.runs == 1
    d = b.to_dict()
    assert d["wall_s"] == 20 and d["steps"] == {"seconds": 6.0, "share": 0.3}
    assert d["overhead"] == {"seconds": 10.0, "share": 0.5}
    lines = b.lines()
    assert lines[0].startswith("time: 20 s wall") and "overhead" in lines[-1]


# ------------------------------------------------------------------ one timing per network


def test_timing_groups_put_the_seeds_of_a_network_together(tmp_path: Path) -> None:
    cfg = load_study_config(_config(tmp_path, seeds=[0, 1, 2]))
    groups = timing_groups(plan_trials(cfg))
    assert [[t.seed for t in g] for g in groups] == [[0, 1, 2], [0, 1, 2]]
    assert all(len({(t.strategy, t.factor) for t in g}) == 1 for g in groups)


@pytest.fixture
def timed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the trials the workers time (each timing still runs)."""
    ids: list[str] = []
    real = worker._bench

    def counting(payload: Any, spec: Any, emit: Any) -> None:
        ids.append(payload["id"])
        real(payload, spec, emit)

    monkeypatch.setattr(worker, "_bench", counting)
    return ids


def test_each_network_is_timed_once_and_its_timing_shared(
        tmp_path: Path, timed: list[str]) -> None:
    cfg = load_study_config(_config(tmp_path))
    err = io.StringIO()
    assert run_study(cfg, stream=err)["done"] == 4
    assert sorted(timed) == ["base|base|x1|seed0", "base|w|x2|seed0"]
    with Store(cfg.out_dir / "results.sqlite", readonly=True) as store:
        by_id = {t.id: t for t in store.trials()}
        b = time_breakdown(store)
    for tid in ("base|base|x1|seed1", "base|w|x2|seed1"):
        twin = by_id[tid.replace("seed1", "seed0")]
        assert by_id[tid].time_ms == twin.time_ms
        assert [r["timed_as"] for r in by_id[tid].bench] == [twin.id]
        assert by_id[tid].status == "done" and by_id[tid].top1_err is not None
    assert all("timed_as" not in r for r in by_id["base|base|x1|seed0"].bench)
    # the breakdown is recorded and printed at the end
    assert b is not None and b.runs == 1 and b.steps > 0 and b.benchmark > 0
    assert "[study] time:" in err.getvalue() and "training steps" in err.getvalue()


def test_a_timing_from_an_earlier_run_is_shared_not_repeated(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_study_config(_config(tmp_path, factors=[1]))
    assert run_study(cfg, stream=None)["done"] == 2
    db = cfg.out_dir / "results.sqlite"
    con = sqlite3.connect(db)  # as if the driver died before sharing: seed 1 untimed
    con.execute("UPDATE trials SET bench = NULL, time_ms = NULL, status = 'pending', "
                "epochs_done = 0 WHERE seed = 1")
    con.commit()
    con.close()
    timed: list[str] = []
    monkeypatch.setattr(worker, "_bench", lambda p, s, e: timed.append(p["id"]))
    assert run_study(cfg, stream=None)["done"] == 2
    assert timed == []
    with Store(db, readonly=True) as store:
        t0, t1 = sorted(store.trials(), key=lambda t: t.seed)
        assert t1.time_ms == t0.time_ms and t1.bench[0]["timed_as"] == t0.id
        assert len(run_times(store)) == 2  # one row per driver run


def test_a_timing_only_study_times_every_seed(tmp_path: Path, timed: list[str]) -> None:
    cfg = load_study_config(_config(tmp_path, factors=[1], train=False))
    assert run_study(cfg, stream=None)["done"] == 2
    assert sorted(timed) == ["base|base|x1|seed0", "base|base|x1|seed1"]


# --------------------------------------------------------- one setting probe for short runs


def _payload(steps_epochs: int, train_size: int = 640) -> dict[str, Any]:
    return {"id": "b|base|x1|seed0", "base": "b", "seed": 0, "train": True,
            "train_size": train_size, "spec": quickstart_base().to_dict(),
            "recipe": {"epochs": steps_epochs, "batch_size": 64}, "device": "cpu"}


@pytest.mark.parametrize(("runs", "probed"), [(1, False), (3, False), (200, True)])
def test_one_probe_stands_for_the_runs_of_a_base(monkeypatch: pytest.MonkeyPatch,
                                                 runs: int, probed: bool) -> None:
    # 10 steps a run: too short to probe alone; together the runs pay for a probe only
    # when they are many (auto's rule over their total steps)
    monkeypatch.setattr("netscale.bench.setting.native_bf16", lambda device="cpu": False)
    calls: list[str] = []

    def fake_probe(payload: Any, spec: Any) -> ExecSetting:
        calls.append(payload["id"])
        return ExecSetting("channels_last", "fp32", requested="auto+auto", reason="probed")

    monkeypatch.setattr(worker, "_probe_setting", fake_probe)
    assert worker._short_run(_payload(1)) is not None  # each run alone is too short
    s = worker.study_probe(_payload(1), runs)
    if not probed:
        assert s is None and calls == []
        return
    assert calls == ["b|base|x1|seed0"] and s.label == "channels_last+fp32"
    assert s.reason.startswith("probed; one probe on b|base|x1|seed0 for the 200 runs")
    assert "2,000 steps together" in s.reason


def test_a_long_run_probes_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "_probe_setting", lambda p, s: pytest.fail("probed"))
    assert worker.study_probe(_payload(100, train_size=6400), 5) is None  # 10,000 steps


def test_the_study_setting_is_written_for_every_trial_of_the_base(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    probed = ExecSetting("channels_last", "fp32", requested="auto+auto", reason="probed")
    monkeypatch.setattr(runner, "study_probe", lambda payload, runs: probed)
    cfg = load_study_config(_config(tmp_path, recipe={
        "epochs": 1, "batch_size": 64, "lr": 0.1, "warmup_epochs": 0, "threads": 1}))
    assert run_study(cfg, stream=None)["done"] == 4
    files = sorted((cfg.out_dir / "trials").glob("*/setting.json"))
    assert len(files) == 4
    assert {json.loads(f.read_text())["memory_format"] for f in files} == {"channels_last"}
    with Store(cfg.out_dir / "results.sqlite", readonly=True) as store:
        assert json.loads(store.get_meta("setting:base") or "{}")["reason"] == "probed"
        assert {t.env["setting"]["memory_format"] for t in store.trials()} == {"channels_last"}


# -------------------------------------------------------------- workers kept across trials


def test_worker_processes_run_many_trials(tmp_path: Path) -> None:
    cfg = load_study_config(_config(tmp_path, seeds=[0, 1, 2],
                                    bench={"enabled": False}))
    assert run_study(cfg, workers=2, stream=None)["done"] == 6
    with Store(cfg.out_dir / "results.sqlite", readonly=True) as store:
        pids = {t.env["pid"] for t in store.trials()}
    assert 1 <= len(pids) <= 2  # 6 trials, at most 2 processes


# ---------------------------------------------------------------------------- the report


def test_report_shows_the_breakdown(run_cli, tmp_path: Path) -> None:
    cfg = load_study_config(_config(tmp_path, seeds=[0], factors=[1]))
    assert run_study(cfg, stream=None)["done"] == 1
    code, out, _ = run_cli("report", str(cfg.out_dir), "--json")
    assert code == 0
    parts = json.loads(out)["time_breakdown"]
    assert set(parts) >= {"wall_s", "benchmark", "steps", "evaluation", "setup", "idle",
                          "overhead"}
    page = (cfg.out_dir / "report" / "index.html").read_text()
    assert "Where the time went" in page and "training steps" in page


def test_the_estimate_counts_one_timing_per_network(tmp_path: Path) -> None:
    from netscale.study.estimate import StudyWork, bench_seconds, estimate_study

    cfg = load_study_config(_config(tmp_path, seeds=[0, 1, 2]))
    plan = plan_trials(cfg)
    specs = {p.id: p.spec for p in plan}
    for train, timings in ((True, 2), (False, 6)):
        work = StudyWork(epochs=1, n_train=128, n_val=64, train=train, bench_budget=1.0)
        est = estimate_study(plan, specs, work, probe=lambda spec, batch: (0.001, 0.0005))
        assert len(plan) == 6 and est.bench_total_s == timings * bench_seconds(1.0)
