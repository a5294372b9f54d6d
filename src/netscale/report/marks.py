"""Markings the report puts on tables and plots: flagged timings (noisy or measured while the
CPU was busy) and trials that are the identical network (e.g. w and dWr at ×2 can round to
the same widths, as the study records in ``same_as``), plus readable text for the study's
data and recipe settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from netscale.study.store import TrialRow, same_networks

FLAG_MARK = "⚑"
SAME_MARK = "≡"


def timing_flag(trial: TrialRow) -> str:
    """'' for a clean timing, else a short reason: 'noisy' or 'busy CPU' (the quality of the
    measurement standing for the trial)."""
    q = trial.time_quality
    return "" if q in (None, "ok") else {"contended": "busy CPU"}.get(q, q)


def trial_label(trial: TrialRow) -> str:
    return f"{trial.strategy} ×{trial.factor:g}"


def same_network_labels(trials: Sequence[TrialRow]) -> dict[str, list[str]]:
    """Trial id -> labels of the other trials that are the identical network (the study's
    ``same_as`` record; different seeds of one network are repeats, not duplicates)."""
    return {tid: sorted({trial_label(o) for o in others})
            for tid, others in same_networks(trials).items()}


# --------------------------------------------------------------------------------------------
# readable settings
# --------------------------------------------------------------------------------------------

_DATA_LABELS = {"subset": "{v:,} training images (random subset)",
                "val_subset": "{v:,} validation images", "val_fraction": "{v:g} held out for "
                "validation", "resolution": "{v} px", "channels": "{v} channel(s)",
                "augment": "augmentation {v}", "flip": "flips {onoff}",
                "min_scale": "crop scale ≥ {v:g}", "crop_pct": "centre crop {v:g}",
                "normalize": "normalisation {onoff}", "workers": "{v} loader workers",
                "split_seed": "split seed {v}"}
_RECIPE_LABELS = {"epochs": "{v} epochs", "batch_size": "batch {v}", "lr": "learning rate {v:g}",
                  "ref_batch": "at reference batch {v}", "optimizer": "optimizer {v}",
                  "momentum": "momentum {v:g}", "weight_decay": "weight decay {v:g}",
                  "warmup_epochs": "warm-up {v:g} epochs", "label_smoothing":
                  "label smoothing {v:g}", "ema": "EMA {onoff}", "ema_decay": "EMA decay {v:g}",
                  "amp": "mixed precision {onoff}", "seed": "seed {v}", "threads":
                  "{v} thread(s) per trial", "scale_lr": "LR scaled with batch {onoff}",
                  "drop_path": "drop-path {v:g}", "grad_clip": "gradient clip {v:g}",
                  "min_lr": "final LR {v:g}", "nesterov": "Nesterov {onoff}"}


def _fmt(labels: Mapping[str, str], key: str, v: Any) -> str:
    if key == "epochs" and v == 1:
        return "1 epoch"
    tmpl = labels.get(key)
    if tmpl is None or v is None:
        return f"{key.replace('_', ' ')} {v}"
    try:
        return tmpl.format(v=v, onoff="on" if v else "off")
    except (ValueError, TypeError):
        return f"{key.replace('_', ' ')} {v}"


def describe_data(data: Mapping[str, Any]) -> str:
    """e.g. 'fashion-mnist: 8,000 training images (random subset), 2,000 validation images,
    augmentation none'."""
    if not data:
        return "none (runtime only)"
    name = data.get("name") or data.get("path") or "?"
    parts = [_fmt(_DATA_LABELS, k, v) for k, v in data.items() if k not in ("name", "path")]
    where = f" at {data['path']}" if data.get("path") and data.get("name") else ""
    return f"{name}{where}" + (f": {', '.join(parts)}" if parts else "")


def describe_recipe(recipe: Mapping[str, Any]) -> str:
    """e.g. '3 epochs, batch 64, learning rate 0.2, warm-up 0.3 epochs' (defaults unsaid)."""
    if not recipe:
        return "the trainer's defaults"
    return ", ".join(_fmt(_RECIPE_LABELS, k, v) for k, v in recipe.items())
