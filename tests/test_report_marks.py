"""Report markings without a browser: flagged timings (the quality of the measurement
standing for the trial), identical networks (the study's `same_as` record), readable settings,
unconstrained law parameters, plain log ticks."""

from __future__ import annotations

from typing import Any

from netscale.report.laws_section import _ci, _wide
from netscale.report.marks import describe_data, describe_recipe, same_network_labels, timing_flag
from netscale.study.store import TrialRow


def _t(tid: str, strategy: str = "w", factor: float = 2.0, seed: int = 0,
       bench: list[dict[str, Any]] | None = None, same_as: str | None = None) -> TrialRow:
    return TrialRow(id=tid, base="B", strategy=strategy, factor=factor, seed=seed,
                    status="done", attempts=1, failures=0, spec={"name": tid}, flops=1, params=1,
                    acts=1, resolution=8, bench=bench or [], time_ms=1.0, same_as=same_as)


def test_timing_flag_reads_the_quality_of_the_standing_measurement() -> None:
    assert timing_flag(_t("a", bench=[{"time_ms": 1.0, "noisy": False}])) == ""
    assert timing_flag(_t("a", bench=[{"time_ms": 1.0, "noisy": True}])) == "noisy"
    # the worst flag of the row: other processes on the CPU outrank a wide spread
    assert timing_flag(_t("a", bench=[{"time_ms": 1.0, "contended": True,
                                       "noisy": True}])) == "busy CPU"
    # the row that gave time_ms decides (a noisy train-mode row does not flag inference)
    rows = [{"mode": "train", "time_ms": 3.0, "noisy": True}, {"mode": "infer", "time_ms": 1.0}]
    assert timing_flag(_t("a", bench=rows)) == ""
    assert timing_flag(_t("a", bench=[{"time_ms": 1.0, "time_quality": "contended"}])) == \
        "busy CPU"
    assert timing_flag(_t("a", bench=[{"time_ms": 1.0, "time_quality": "ok",
                                       "noisy": True}])) == ""
    assert timing_flag(_t("a", bench=[{"status": "oom"}])) == ""


def test_same_networks_come_from_the_studys_record() -> None:
    w = _t("w2", "w")
    dwr = _t("dWr2", "dWr", same_as="w2")
    r = _t("r2", "r", same_as="w2")
    d = _t("d2", "d")  # an equal spec without a recorded link is not marked
    other_seed = _t("w2s1", "w", seed=1)
    assert same_network_labels([w, dwr, d, other_seed]) == {"w2": ["dWr ×2"],
                                                            "dWr2": ["w ×2"]}
    assert same_network_labels([w, dwr, r])["r2"] == ["dWr ×2", "w ×2"]
    # the trial an alias mirrors may be filtered out: the aliases still link each other
    assert same_network_labels([dwr, r]) == {"dWr2": ["r ×2"], "r2": ["dWr ×2"]}


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
