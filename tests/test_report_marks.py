"""Report markings without a browser: flagged timings (with and without the `time_quality`
field), identical networks (`same_as` or equal specs), readable settings, unconstrained law
parameters, plain log ticks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netscale.report.laws_section import _ci, _wide
from netscale.report.marks import describe_data, describe_recipe, same_networks, timing_flag


@dataclass
class _T:
    id: str
    strategy: str = "w"
    factor: float = 2.0
    seed: int = 0
    spec: dict[str, Any] = field(default_factory=dict)
    bench: list[dict[str, Any]] = field(default_factory=list)
    time_ms: float | None = 1.0


def test_timing_flag_reads_quality_or_bench_flags() -> None:
    assert timing_flag(_T("a", bench=[{"time_ms": 1.0, "noisy": False}])) == ""
    assert timing_flag(_T("a", bench=[{"time_ms": 1.0, "noisy": True}])) == "noisy"
    assert timing_flag(_T("a", bench=[{"time_ms": 1.0, "contended": True,
                                       "noisy": True}])) == "noisy, busy CPU"
    # the row that gave time_ms decides (a noisy train-mode row does not flag inference)
    rows = [{"mode": "infer", "time_ms": 1.0}, {"mode": "train", "time_ms": 3.0, "noisy": True}]
    assert timing_flag(_T("a", bench=rows)) == ""
    assert timing_flag(_T("a", bench=[{"time_ms": 1.0, "time_quality": "contended"}])) == \
        "busy CPU"
    t = _T("a", bench=[{"time_ms": 1.0}])
    t.time_quality = "noisy"  # type: ignore[attr-defined]  # the field helper D adds
    assert timing_flag(t) == "noisy"
    t.time_quality = "ok"  # type: ignore[attr-defined]
    assert timing_flag(t) == ""


def test_same_networks_by_spec_and_by_label() -> None:
    a = _T("w2", "w", 2, spec={"name": "x_w", "stages": [1, 2]})
    b = _T("dWr2", "dWr", 2, spec={"name": "x_dWr", "stages": [1, 2]})
    c = _T("d2", "d", 2, spec={"name": "x_d", "stages": [2, 2]})
    other_seed = _T("w2s1", "w", 2, seed=1, spec={"name": "x_w", "stages": [1, 2]})
    same = same_networks([a, b, c, other_seed])
    assert same == {"w2": ["dWr ×2"], "dWr2": ["w ×2"]}
    c.same_as = "r ×2"  # type: ignore[attr-defined]
    assert same_networks([a, b, c])["d2"] == ["r ×2"]


def test_readable_settings() -> None:
    assert describe_data({"name": "fashion-mnist", "subset": 8000, "val_subset": 2000,
                          "augment": "none"}) == (
        "fashion-mnist: 8,000 training images (random subset), 2,000 validation images, "
        "augmentation none")
    assert describe_recipe({"epochs": 3, "batch_size": 64, "lr": 0.2, "warmup_epochs": 0.3,
                            "label_smoothing": 0.0}) == (
        "3 epochs, batch 64, learning rate 0.2, warm-up 0.3 epochs, label smoothing 0")
    assert describe_recipe({}) == "the trainer's defaults"
    assert describe_data({}) == "none (runtime only)"


def test_unconstrained_intervals_leave_the_table() -> None:
    assert not _wide((1.0, 50.0)) and not _wide(None)
    assert _wide((1e-20, 1e10)) and _wide((0.0, 0.4)) and _wide((1.0, float("inf")))
    assert _ci(2.0, (1e-20, 1e10)) == "2 (unconstrained*)"
    assert _ci(2.0, (1.0, 3.0)) == "2 [1, 3]"


def test_plain_log_ticks() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from netscale.report.plots import plain_log_ticks

    fig, ax = plt.subplots()
    ax.set_xscale("log")
    ax.set_xlim(1.6, 6.7)
    plain_log_ticks(ax, "x", " M")
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels == ["2 M", "3 M", "4 M", "6 M"]
    plt.close(fig)
