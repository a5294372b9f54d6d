"""The quickstart study: a small RegNet-style base on data that ships offline.

Fashion-MNIST from the Debian package ``dataset-fashion-mnist`` when it is installed,
scikit-learn's ``digits`` otherwise (a smoke test: its accuracy verdict is not meaningful);
the base is scaled by d, w, r, dwr and dWr at s = 1, 2, 4, each model trained with three
seeds (``--seeds``), timed, and the verdict (netscale.advise) printed and reported.

Budget (Fashion-MNIST, 2 workers of 1 thread on 2 cores): a trial's cost is about (train
images + val images / 3) × its flops factor. 33 trials (3 seeds) train for 2 epochs × 5,000
images and are evaluated twice on 3,000 images; each of the 11 distinct networks is timed
once (its seeds share the timing): about 3.5 min on a quiet 2-vCPU machine, plus ~1 min of
set-up from a fresh clone (docs/study-time.md). Three seeds and 3,000 validation images
(±1.4 points of sampling error at 18 % error per group; differences are compared image by
image, which cancels most of it) make the intervals honest; strategies that cannot be told
apart are reported as tied. The verdict is written to ``VERDICT_FILE`` in the study directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from netscale.data import DataConfig, describe
from netscale.errors import NetscaleError
from netscale.specs import NetSpec, StageSpec, StemSpec
from netscale.study.config import StudyConfig, parse_study_config

QUICKSTART_STRATEGIES = ("d", "w", "r", "dwr", "dWr")
QUICKSTART_FACTORS = (1, 2, 4)
QUICKSTART_SEEDS = (0, 1, 2)
VERDICT_FILE = "verdict.json"  # in the study directory: the verdict as JSON (report --json's)


def quickstart_base(resolution: int = 16, in_channels: int = 1,
                    num_classes: int = 10) -> NetSpec:
    """A RegNetY-style base (SE bottlenecks, group width 8) small enough to train in seconds."""
    stages = (
        StageSpec("bottleneck", 1, 16, stride=1, group_width=8, se_ratio=0.25),
        StageSpec("bottleneck", 2, 32, stride=2, group_width=8, se_ratio=0.25),
        StageSpec("bottleneck", 2, 64, stride=2, group_width=8, se_ratio=0.25),
    )
    return NetSpec(
        name="QuickNetY", stem=StemSpec("cifar", 16), stages=stages,
        num_classes=num_classes, resolution=resolution, in_channels=in_channels,
        family="anynet",
    ).validate()


def default_dataset() -> str:
    """fashion-mnist when its files are found (Debian package or NETSCALE_DATA), else digits."""
    try:
        describe(DataConfig(name="fashion-mnist"))
    except NetscaleError:
        return "digits"
    return "fashion-mnist"


def quickstart_settings(data: str) -> dict[str, Any]:
    """Recipe and data sizes chosen so the whole study fits in ~4 minutes on 2 cores."""
    if data == "digits":
        return {"data": {"name": "digits"},
                "recipe": {"epochs": 8, "batch_size": 64, "lr": 0.1, "warmup_epochs": 1},
                "resolution": 16}
    # Two short epochs (78 steps each at batch 64) on 5,000 images, 3 seeds, 3,000 validation
    # images (see the module docstring for the budget): no augmentation and no label
    # smoothing (both slow down a run this short; measured: base 19% vs 26% top-1 error with
    # them), a short warm-up.
    return {"data": {"name": data, "subset": 5000, "val_subset": 3000, "augment": "none"},
            "recipe": {"epochs": 2, "batch_size": 64, "lr": 0.2, "warmup_epochs": 0.3,
                       "label_smoothing": 0.0},
            "resolution": 16}


def quickstart_config(out: Path, *, data: str | None = None, epochs: int | None = None,
                      bench_budget: float = 1.5, seeds: Sequence[int] | None = None,
                      files_dir: Path | None = None) -> StudyConfig:
    """Writes the base spec and the study config into ``files_dir`` (default: ``out``,
    created) and returns the config (a dry run passes a temporary directory: nothing is
    written into ``out``)."""
    out = Path(out).resolve()
    data = data or default_dataset()
    settings = quickstart_settings(data)
    describe(DataConfig.from_dict(settings["data"]))  # a missing dataset fails before any write
    files = Path(files_dir).resolve() if files_dir is not None else out
    files.mkdir(parents=True, exist_ok=True)
    base_path = files / "quickstart_base.yaml"
    quickstart_base(resolution=settings["resolution"]).save(base_path)
    recipe = dict(settings["recipe"])
    if epochs:
        recipe["epochs"] = epochs
    raw = {
        "name": "quickstart",
        "description": "netscale quickstart: which way to scale a small RegNetY-style net",
        "out": str(out),
        "bases": [str(base_path)],
        "strategies": list(QUICKSTART_STRATEGIES),
        "factors": list(QUICKSTART_FACTORS),
        "rounding": "exact",
        "resolution_multiple": 2,
        "seeds": [int(x) for x in (seeds if seeds else QUICKSTART_SEEDS)],
        "data": settings["data"],
        "recipe": recipe,
        "bench": {"enabled": True, "mode": "infer", "batch_size": 64, "budget": bench_budget,
                  "threads": 1, "retries": 2},
        "retries": 1,
    }
    import yaml

    (files / "quickstart.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return parse_study_config(raw, source=str(files / "quickstart.yaml"), base_dir=out)
