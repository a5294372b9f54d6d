"""The Ray executor on a local Ray instance (bench-only trials, so it stays quick)."""

from __future__ import annotations

from pathlib import Path

import ray  # a dev dependency (netscale[dev]); the Ray executor is tested, never skipped
import yaml

from netscale.study.config import load_study_config
from netscale.study.runner import run_study
from netscale.study.store import Store


def test_ray_executor_local_cluster(tmp_path: Path) -> None:
    raw = {
        "name": "ray-tiny", "out": "out", "bases": ["ResNet-20-CIFAR"],
        "base_overrides": {"resolution": 16}, "strategies": ["w", "dWr"], "factors": [1, 4],
        "train": False, "bench": {"batch_size": 4, "budget": 0.2},
        "resources": {"cpus": 1},
    }
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(raw))
    cfg = load_study_config(tmp_path / "s.yaml")
    counts = run_study(cfg, executor="ray", workers=2, stream=None)
    assert counts["done"] == 3 and counts["failed"] == 0
    with Store(cfg.out_dir / "results.sqlite") as store:
        trials = store.trials()
        assert all(t.time_ms and t.bench for t in trials)
        # results came back from Ray worker processes, not the driver
        import os

        assert all(t.env.get("pid") != os.getpid() for t in trials)
    assert not ray.is_initialized()  # the executor shut down the Ray instance it started
