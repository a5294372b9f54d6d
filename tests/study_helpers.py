"""Shared helpers of the study tests: writing a study config file, running a small study of a
zoo base, the tiny digits study of the crash and signal tests and what of its results must not
depend on interruptions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from netscale.study.config import load_study_config
from netscale.study.quickstart import quickstart_base
from netscale.study.runner import run_study
from netscale.study.store import Store

#: Epochs of each trial of :func:`tiny_study_config`'s study.
TINY_EPOCHS = 2
#: Per-epoch timings differ between runs; everything else in an epoch row must not.
TIMING_KEYS = {"train_time", "eval_time", "images_per_sec", "wall_time"}


def timing_only(*, batch_size: int, budget: float, retries: int) -> dict[str, Any]:
    """The config keys of a study that only times inference (no training)."""
    return {
        "train": False,
        "bench": {"enabled": True, "mode": "infer", "batch_size": batch_size, "budget": budget},
        "retries": retries,
    }


def write_config(tmp_path: Path, raw: dict[str, Any], over: dict[str, Any]) -> Path:
    """Writes ``raw`` with the keys of ``over`` replaced to ``tmp_path/study.yaml``."""
    p = tmp_path / "study.yaml"
    p.write_text(yaml.safe_dump({**raw, **over}))
    return p


def run_zoo_study(run_cli: Callable[..., tuple[int, str, str]], tmp_path: Path, base: str,
                  strategies: list[str], factors: list[float]) -> Path:
    """Runs ``netscale study`` on a zoo ``base`` at 32 px (one epoch on 64 digits, untimed)
    with results in ``tmp_path/out``; returns the config file."""
    raw = {"name": "zoo-study", "out": "out", "bases": [base],
           "base_overrides": {"resolution": 32}, "strategies": strategies, "factors": factors,
           "data": {"name": "digits", "subset": 64, "val_subset": 32},
           "recipe": {"epochs": 1, "batch_size": 32, "lr": 0.1, "warmup_epochs": 0,
                      "threads": 1},
           "bench": {"enabled": False}, "retries": 0}
    cfg = write_config(tmp_path, raw, {})
    code, _, err = run_cli("study", str(cfg))
    assert code == 0, err
    return cfg


def tiny_study_config(tmp_path: Path, name: str = "study.yaml", **over: Any) -> Path:
    """A study of 2 trials (a 16 px quickstart base at x1 and x2 width) x 2 epochs on 256
    digits, benchmarked and trained with 1 thread, results in ``tmp_path/out``; the keys of
    ``over`` replace the config's. Returns the config file ``tmp_path/NAME``."""
    base = tmp_path / "base.yaml"
    if not base.exists():
        quickstart_base(resolution=16).save(base)
    raw: dict[str, Any] = {
        "name": "crash", "out": "out", "bases": ["base.yaml"], "strategies": ["w"],
        "factors": [1, 2],
        "data": {"name": "digits", "subset": 256, "val_subset": 128},
        "recipe": {"epochs": TINY_EPOCHS, "batch_size": 64, "lr": 0.1, "warmup_epochs": 0,
                   "threads": 1},
        "bench": {"enabled": True, "mode": "infer", "batch_size": 4, "budget": 0.05,
                  "threads": 1},
        "retries": 1, "resources": {"cpus": 1},
    }
    raw.update(over)
    p = tmp_path / name
    p.write_text(yaml.safe_dump(raw))
    return p


def study_results(db: Path) -> dict[str, Any]:
    """What must not depend on kills or signals: per trial its status, metrics and epoch rows
    (timings left out)."""
    with Store(db, readonly=True) as store:
        out = {}
        for t in store.trials():
            out[t.id] = {
                "status": t.status, "top1_err": t.top1_err, "top5_err": t.top5_err,
                "loss": t.loss, "epochs_done": t.epochs_done,
                "epochs": [{k: v for k, v in e.items() if k not in TIMING_KEYS}
                           for e in t.epochs]}
        return out


def uninterrupted_results(tmp_path: Path) -> dict[str, Any]:
    """The tiny study run to the end in this process, without a fault: the results every
    interrupted-and-resumed run must equal (:func:`study_results`)."""
    cfg = load_study_config(tiny_study_config(tmp_path))
    assert run_study(cfg, stream=None)["done"] == 2
    return study_results(cfg.out_dir / "results.sqlite")
