"""Checks that keep a resumed or evaluated run from being silently wrong.

* :func:`check_resume_dir`: ``--resume --out DIR`` needs DIR to hold a netscale checkpoint
  (a missing, empty or unrelated directory is refused, never trained into from scratch);
* :func:`check_progress`: a checkpoint whose ``epoch`` or history goes beyond its own recipe
  is corrupt (it would "complete" without training);
* :func:`check_finite_weights`: weights with NaN or infinity give no error rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from netscale.errors import NetscaleError


def check_resume_dir(out: str | Path, checkpoint_name: str) -> None:
    """Refuses (one line) ``--resume`` into a directory that holds no checkpoint."""
    p = Path(out)
    if p.is_file() and p.suffix != ".pt":
        raise NetscaleError(f"--resume --out {str(out)!r}: that is a file, not a run "
                            "directory; give the directory of the run to continue")
    if not p.exists():
        raise NetscaleError(f"--resume --out {str(out)!r}: the directory does not exist; "
                            "give the directory of the run to continue, or train without "
                            "--resume to start a new run")
    if p.is_dir() and not (p / checkpoint_name).is_file():
        what = "is empty" if not any(p.iterdir()) else \
            f"holds no {checkpoint_name} (not a netscale training run)"
        raise NetscaleError(f"--resume --out {str(out)!r}: the directory {what}; give the "
                            "directory of the run to continue, or train without --resume "
                            "into a new directory")


def check_progress(data: Mapping[str, Any], where: str) -> None:
    """Refuses a checkpoint whose ``epoch`` exceeds its recipe's ``epochs`` or whose history
    holds more entries than epochs done."""
    epoch = int(data.get("epoch", 0))
    recipe = data.get("recipe") or {}
    planned = recipe.get("epochs") if isinstance(recipe, Mapping) else None
    if isinstance(planned, int) and not isinstance(planned, bool) and epoch > planned:
        raise NetscaleError(f"checkpoint {where} is corrupt: epoch {epoch} is beyond its "
                            f"recipe's {planned} epochs; train into a new directory")
    history = data.get("history") or []
    if len(history) > epoch:
        raise NetscaleError(f"checkpoint {where} is corrupt: its history has {len(history)} "
                            f"entries for {epoch} epoch(s) done; train into a new directory")


def check_finite_weights(state: Mapping[str, Any], where: str) -> None:
    """Refuses weights holding NaN or infinity (a diverged or damaged run): no error rate
    measured with them means anything."""
    for name, t in state.items():
        if isinstance(t, torch.Tensor) and t.is_floating_point() and \
                not bool(torch.isfinite(t).all()):
            raise NetscaleError(f"{where} holds non-finite weights (NaN or infinity in "
                                f"{name!r}): the run diverged or the file is damaged; "
                                "evaluate another checkpoint")
