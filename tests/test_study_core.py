"""Study config validation, dry run, the results store, executors and reports
(trials here only benchmark; training studies are in test_study_train.py)."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from netscale.errors import NetscaleError
from netscale.study import executors
from netscale.study.config import load_study_config, parse_study_config
from netscale.study.planning import plan_trials
from netscale.study.runner import run_study
from netscale.study.store import Store
from study_helpers import timing_only, write_config


def _config(tmp_path: Path, **over: object) -> Path:
    raw = {
        "name": "tiny",
        "out": "out",
        "bases": ["ResNet-56-CIFAR"],
        "base_overrides": {"resolution": 16},
        "strategies": ["d", "w", "dWr"],
        "factors": [1, 2],
        **timing_only(batch_size=4, budget=0.2, retries=1),
    }
    return write_config(tmp_path, raw, over)


def test_plan_shares_the_base_trial(tmp_path: Path) -> None:
    cfg = load_study_config(_config(tmp_path))
    plan = plan_trials(cfg)
    assert [(t.strategy, t.factor) for t in plan] == [("base", 1.0), ("d", 2.0), ("w", 2.0),
                                                      ("dWr", 2.0)]
    base = plan[0]
    assert base.resolution == 16 and base.flops_factor == 1.0
    for t in plan[1:]:
        assert abs(t.flops / base.flops / 2 - 1) <= 0.02
    assert len({t.id for t in plan}) == len(plan)


def test_dry_run_table(run_cli, tmp_path: Path) -> None:
    code, out, _ = run_cli("study", str(_config(tmp_path)), "--dry-run")
    assert code == 0
    assert "4 trials" in out and "flops (M MACs)" in out and "dWr" in out
    assert not (tmp_path / "out").exists()  # nothing run, nothing written
    code, out, _ = run_cli("study", str(_config(tmp_path)), "--dry-run", "--json")
    rows = json.loads(out)
    assert {"flops", "params", "acts", "strategy", "factor", "status"} <= set(rows[0])


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"strategies": ["d", "zz"]}, "strategies: unknown strategy 'zz'"),
        ({"factors": [1, -2]}, "factors must be positive"),
        ({"factors": "many"}, "factors must be numbers"),
        ({"bases": ["NoNet-1"]}, "bases: unknown model 'NoNet-1'"),
        ({"colour": "red"}, "unknown key(s) colour"),
        ({"rounding": "up"}, "rounding must be one of"),
        ({"bench": {"mode": "fly"}}, "bench.mode must be"),
        ({"train": True}, "data needs 'name'"),
        ({"base_overrides": {"stages": []}}, "base_overrides: unknown key(s) stages"),
        ({"retries": -1}, "retries must be a non-negative integer"),
    ],
)
def test_bad_configs(run_cli, tmp_path: Path, over: dict, message: str) -> None:
    code, _, err = run_cli("study", str(_config(tmp_path, **over)), "--dry-run")
    assert code == 2 and message in err and err.count("\n") == 1


def test_missing_and_malformed_config_files(run_cli, tmp_path: Path) -> None:
    code, _, err = run_cli("study", str(tmp_path / "nope.yaml"))
    assert code == 2 and "study config" in err and "does not exist" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("bases: [\n")
    code, _, err = run_cli("study", str(bad))
    assert code == 2 and "not valid YAML" in err
    bad.write_text("- just\n- a list\n")
    with pytest.raises(NetscaleError, match="a study config is a mapping"):
        load_study_config(bad)


def test_bench_only_study_runs_resumes_and_exports(run_cli, tmp_path: Path) -> None:
    cfg_path = _config(tmp_path)
    code, out, err = run_cli("study", str(cfg_path))
    assert code == 0, err
    assert "4 done, 0 failed" in out and "[study]" in err and "ETA" in err
    db = tmp_path / "out" / "results.sqlite"
    with Store(db) as store:
        trials = store.trials()
        assert {t.status for t in trials} == {"done"}
        assert all(t.time_ms and t.time_ms > 0 and t.bench[0]["mode"] == "infer"
                   for t in trials)
        assert all(t.attempts == 1 for t in trials)
    # a second run finds nothing to do and adds no rows
    code, _, err = run_cli("study", str(cfg_path))
    assert code == 0 and "nothing to do" in err
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM trials").fetchone() == (4, 4)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    code, out, _ = run_cli("study", str(tmp_path / "out"), "--export", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 4 and "time_ms" in rows[0] and "flops" in rows[0]
    code, out, _ = run_cli("study", str(cfg_path), "--export", "json")
    data = json.loads(out)
    assert len(data) == 4 and isinstance(data[0]["bench"], list)


def test_retry_then_fail_and_the_study_goes_on(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_study_config(_config(tmp_path, retries=2))
    bad = next(t.id for t in plan_trials(cfg) if t.strategy == "w")
    real_run_trial = executors.run_trial

    def failing_run_trial(payload: Any, emit: Any) -> Any:  # the in-process executor's call
        if payload["id"] == bad:
            raise RuntimeError("synthetic failure")
        return real_run_trial(payload, emit)

    monkeypatch.setattr(executors, "run_trial", failing_run_trial)
    counts = run_study(cfg, stream=None)
    assert counts == {"pending": 0, "running": 0, "done": 3, "failed": 1}
    with Store(cfg.out_dir / "results.sqlite") as store:
        t = next(t for t in store.trials() if t.id == bad)
        assert t.status == "failed" and t.failures == 3 and t.attempts == 3
        assert "RuntimeError: synthetic failure" in t.error
        kinds = [e["kind"] for e in store.events() if e["trial_id"] == bad]
        assert kinds == ["start", "retry", "start", "retry", "start", "failed"]
    # --retry-failed gives it another round; now it succeeds
    monkeypatch.setattr(executors, "run_trial", real_run_trial)
    counts = run_study(cfg, retry_failed=True, stream=None)
    assert counts["done"] == 4 and counts["failed"] == 0


def test_changed_config_is_refused(tmp_path: Path) -> None:
    run_study(load_study_config(_config(tmp_path)), stream=None)
    cfg2 = load_study_config(_config(tmp_path, factors=[1, 4]))
    with pytest.raises(NetscaleError, match="holds results of a different config"):
        run_study(cfg2, stream=None)


def test_local_worker_processes(tmp_path: Path) -> None:
    cfg = load_study_config(_config(tmp_path))
    counts = run_study(cfg, workers=2, stream=None)
    assert counts["done"] == 4
    with Store(cfg.out_dir / "results.sqlite") as store:
        assert len({t.worker for t in store.trials()}) >= 1
        assert all(t.time_ms for t in store.trials())


def test_report(run_cli, tmp_path: Path) -> None:
    cfg = load_study_config(_config(tmp_path))
    run_study(cfg, stream=None)
    code, _out, _ = run_cli("report", str(cfg.out_dir))
    assert code == 0
    page = (cfg.out_dir / "report" / "index.html").read_text()
    assert "<table class=\"sortable\"" in page and "Runtime on this machine" in page
    assert "data:image/png;base64," in page  # figures inlined: the page is self-contained
    assert "http://" not in page and "https://" not in page
    assert (cfg.out_dir / "report" / "runtime_vs_metrics.png").is_file()
    assert (cfg.out_dir / "report" / "growth.png").is_file()
    assert (cfg.out_dir / "report" / "trials.csv").read_text().count("\n") == 5


def test_report_of_a_non_study(run_cli, tmp_path: Path) -> None:
    code, _, err = run_cli("report", str(tmp_path))
    assert code == 2 and "is not a study directory" in err


def test_corrupt_store_is_a_clear_error(run_cli, tmp_path: Path) -> None:
    cfg_path = _config(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.sqlite").write_bytes(b"this is not sqlite" * 100)
    code, _, err = run_cli("study", str(cfg_path))
    assert code == 2 and "not a readable SQLite database" in err
    assert (out / "results.sqlite").read_bytes().startswith(b"this is not sqlite")


def test_parse_config_programmatically(tmp_path: Path) -> None:
    cfg = parse_study_config(
        {"bases": "ResNet-20-CIFAR", "strategies": "dWr", "factors": 2, "train": False},
        base_dir=tmp_path)
    assert cfg.bases == ("ResNet-20-CIFAR",) and cfg.factors == (2.0,)
    assert cfg.out_dir == tmp_path / "studies" / "study"
