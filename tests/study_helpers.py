"""Shared helpers of the study tests: writing a study config file."""

from __future__ import annotations

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
