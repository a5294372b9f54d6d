"""Markings the report puts on tables and plots: flagged timings (noisy or measured while the
CPU was busy) and trials that are the identical network (e.g. w and dWr at ×2 can round to
the same widths), plus readable text for the study's data and recipe settings.

The quality of a timing is read from the trial (``time_quality``) or its benchmark rows
(``time_quality``, else the ``noisy`` / ``contended`` flags of netscale.bench); identical
networks from the trial's ``same_as`` label when the study recorded one, else by comparing
the scaled specs (name ignored). Both work on older stores that have neither field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from netscale.specs.spec import network_key

FLAG_MARK = "⚑"
SAME_MARK = "≡"
_GOOD = {"", "ok", "good", "clean", "none"}


def timing_flag(trial: Any) -> str:
    """'' for a clean timing, else a short reason: 'noisy', 'busy CPU', or the stored
    quality label."""
    q = getattr(trial, "time_quality", None)
    if isinstance(q, str) and q.strip().lower() not in _GOOD:
        return _label(q)
    rows = [b for b in (getattr(trial, "bench", None) or []) if b.get("status", "ok") == "ok"]
    t = getattr(trial, "time_ms", None)
    used = [b for b in rows if t is not None and b.get("time_ms") == t] or rows
    for b in used:
        q = b.get("time_quality")
        if isinstance(q, str) and q.strip().lower() not in _GOOD:
            return _label(q)
    reasons = []
    if any(b.get("noisy") for b in used):
        reasons.append("noisy")
    if any(b.get("contended") for b in used):
        reasons.append("busy CPU")
    return ", ".join(reasons)


def _label(q: str) -> str:
    q = q.strip().lower()
    return {"contended": "busy CPU", "busy": "busy CPU"}.get(q, q)



def trial_label(trial: Any) -> str:
    return f"{trial.strategy} ×{trial.factor:g}"


def same_networks(trials: Sequence[Any]) -> dict[str, list[str]]:
    """Trial id -> labels of the other trials that are the identical network (same seed
    excluded: different seeds of one network are repeats, not duplicates)."""
    groups: dict[tuple[str, Any], list[Any]] = {}
    for t in trials:
        groups.setdefault((network_key(t.spec or {}), getattr(t, "seed", 0)), []).append(t)
    out: dict[str, list[str]] = {}
    for ts in groups.values():
        if len(ts) > 1:
            for t in ts:
                out[t.id] = [trial_label(o) for o in ts if o is not t]
    by_id = {t.id: t for t in trials}
    for t in trials:  # links recorded by the study (same_as: the trial that ran) count too
        same = getattr(t, "same_as", None)
        if same:
            ids = [same] if isinstance(same, str) else [str(s) for s in same]
            labels = [trial_label(by_id[i]) if i in by_id else i for i in ids]
            out[t.id] = sorted(set(out.get(t.id, [])) | set(labels))
    return out


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
