"""Shared helpers of the study tests: writing a study config file, running a small study of a
zoo base."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml


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
