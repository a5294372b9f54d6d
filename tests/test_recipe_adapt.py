"""The default recipe adapts to small data: batch size from the dataset size, warm-up from
the run length; an explicit value always wins and the choice is printed and recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netscale.data import DataConfig, describe
from netscale.errors import NetscaleError
from netscale.train import Recipe, train
from netscale.train.recipe import (
    AUTO_BATCH_MAX,
    AUTO_BATCH_MIN,
    MIN_STEPS_PER_EPOCH,
    auto_batch_size,
    auto_warmup_epochs,
)


@pytest.mark.parametrize(
    ("n", "batch"),
    [
        (1617, 32),    # digits' train split: 50 steps (batch 64 would give 25)
        (1600, 32),    # exactly 50 steps
        (1599, 16),    # 49 steps at 32: one step short
        (6400, 128),   # 50 steps at the reference batch
        (6399, 64),
        (8000, 128),   # the quickstart's Fashion-MNIST subset
        (50_000, 128),  # CIFAR-10: never above the reference batch
        (200, 8),      # tiny data: the floor (25 steps; smaller batches starve BN)
        (1, 8),
    ],
)
def test_auto_batch_size(n: int, batch: int) -> None:
    assert auto_batch_size(n) == batch


def test_auto_batch_size_rule_holds_everywhere() -> None:
    for n in range(1, 20_000, 7):
        b = auto_batch_size(n)
        assert AUTO_BATCH_MIN <= b <= AUTO_BATCH_MAX and b & (b - 1) == 0
        assert b == AUTO_BATCH_MIN or n // b >= MIN_STEPS_PER_EPOCH  # enough steps...
        assert b == AUTO_BATCH_MAX or n // (2 * b) < MIN_STEPS_PER_EPOCH  # ...largest such


def test_auto_batch_size_is_a_multiple_of_the_processes() -> None:
    assert auto_batch_size(1617, world=2) == 32
    assert auto_batch_size(1617, world=3) == 33


def test_auto_warmup() -> None:
    assert auto_warmup_epochs(5) == pytest.approx(0.5)
    assert auto_warmup_epochs(3) == pytest.approx(0.3)
    assert auto_warmup_epochs(10) == 1.0 and auto_warmup_epochs(90) == 1.0


def test_defaults_are_automatic_and_explicit_values_win() -> None:
    r = Recipe(epochs=5)
    assert r.batch_size == 0 and r.warmup_epochs is None and not r.is_resolved
    assert Recipe.from_dict(r.to_dict()) == r
    with pytest.raises(NetscaleError, match="automatic"):
        _ = r.effective_lr
    done, notes = r.for_dataset(1617)
    assert (done.batch_size, done.warmup_epochs) == (32, pytest.approx(0.5))
    assert done.is_resolved and done.effective_lr == pytest.approx(0.1 * 32 / 128)
    assert "batch size 32 chosen for 1,617 training images (50 steps an epoch" in notes[0]
    explicit, notes = Recipe(epochs=5, batch_size=128, warmup_epochs=1).for_dataset(1617)
    assert (explicit.batch_size, explicit.warmup_epochs) == (128, 1) and notes == []
    with pytest.raises(NetscaleError, match="batch_size must be a non-negative integer"):
        Recipe(batch_size=-1)


def test_trainer_records_the_chosen_batch_and_resumes(tmp_path: Path) -> None:
    from netscale.specs import NetSpec, StageSpec, StemSpec

    spec = NetSpec(name="tiny", stem=StemSpec("cifar", 8),
                   stages=(StageSpec("basic", 1, 8, stride=1),), num_classes=10,
                   resolution=8, in_channels=1, family="cifar").validate()
    data = DataConfig(name="digits", subset=900, val_subset=100)
    n_train = describe(data).train_size
    want = auto_batch_size(n_train)
    r = train(spec, data, Recipe(epochs=2), tmp_path / "run", quiet=True, max_epochs=1)
    assert r.status == "stopped" and r.batch_size == want
    assert r.recipe["batch_size"] == want and r.recipe["warmup_epochs"] == pytest.approx(0.2)
    assert r.history[0]["images"] == n_train // want * want  # full batches only
    # resuming with the same (automatic) recipe resolves to the same choice
    r = train(spec, data, Recipe(epochs=2), tmp_path / "run", quiet=True)
    assert r.status == "completed" and r.batch_size == want
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["batch_size"] == want


def test_cli_prints_the_choice_and_explicit_batch_wins(run_cli, tmp_path: Path) -> None:
    args = ("train", "ResNet-20-CIFAR", "--data", "digits", "--subset", "900",
            "--val-subset", "100", "--epochs", "1", "--max-epochs", "1", "--resolution", "8",
            "--json")
    n_train = describe(DataConfig(name="digits", subset=900, val_subset=100)).train_size
    want = auto_batch_size(n_train)
    code, out, err = run_cli(*args, "--out", str(tmp_path / "a"))
    assert code == 0, err
    assert f"note: batch size {want} chosen for {n_train:,} training images" in err
    assert json.loads(out)["batch_size"] == want
    code, out, err = run_cli(*args, "--batch-size", "64", "--out", str(tmp_path / "b"))
    assert code == 0, err
    assert "chosen for" not in err
    assert json.loads(out)["batch_size"] == 64
