"""Training, evaluation and export are never silently wrong and never die in the allocator:
--resume needs a run, a checkpoint beyond its recipe is corrupt, non-finite weights give no
error rate, and sizes that cannot fit in memory are refused in one line before any work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from netscale.cli.main import main

    out = tmp_path_factory.mktemp("train") / "run"
    assert main(["train", "ResNet-20-CIFAR", "--data", "digits", "--subset", "64",
                 "--val-subset", "32", "--epochs", "1", "--resolution", "16", "--batch-size",
                 "16", "--threads", "1", "--out", str(out), "--quiet"]) == 0
    return out


def _one_line(code: int, err: str, says: str) -> None:
    assert code == 2 and err.count("\n") == 1 and says in err, err


@pytest.mark.parametrize("kind", ["missing", "empty", "unrelated"])
def test_resume_into_a_directory_without_a_run_is_refused(tmp_path: Path, run_cli: Any,
                                                          kind: str) -> None:
    d = tmp_path / "d"
    if kind != "missing":
        d.mkdir()
    if kind == "unrelated":
        (d / "notes.txt").write_text("mine")
    code, _, err = run_cli("train", "ResNet-20-CIFAR", "--data", "digits", "--resume",
                           "--out", d)
    _one_line(code, err, {"missing": "does not exist", "empty": "is empty",
                          "unrelated": "holds no checkpoint.pt"}[kind])
    if kind == "missing":  # nothing was created in its place
        assert not d.exists()
    else:  # nothing was written into it
        assert [p.name for p in d.iterdir()] == (["notes.txt"] if kind == "unrelated" else [])


def test_resume_without_out_needs_the_default_run_directory(tmp_path: Path, run_cli: Any,
                                                              monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)  # runs/<model>-<data> does not exist here
    code, _, err = run_cli("train", "ResNet-20-CIFAR", "--data", "digits", "--subset", "64",
                           "--val-subset", "32", "--resume")
    last = err.strip().splitlines()[-1]  # after the notes on adapting the model to the data
    assert code == 2 and "does not exist" in last and "Traceback" not in err
    assert "runs" in last and not (tmp_path / "runs").exists()  # no fresh run in its place


def _crafted(run_dir: Path, tmp_path: Path, **change: Any) -> Path:
    ck = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    ck.update(change)
    out = tmp_path / "crafted"
    out.mkdir()
    torch.save(ck, out / "checkpoint.pt")
    return out


def test_a_checkpoint_beyond_its_recipe_is_refused(run_dir: Path, tmp_path: Path,
                                                   run_cli: Any) -> None:
    d = _crafted(run_dir, tmp_path, epoch=50)
    code, _, err = run_cli("train", "--resume", "--out", d)
    _one_line(code, err, "epoch 50 is beyond its recipe's 1 epochs")
    code, _, err = run_cli("eval", d)
    _one_line(code, err, "epoch 50 is beyond")


def test_eval_refuses_non_finite_weights(run_dir: Path, tmp_path: Path, run_cli: Any) -> None:
    ck = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    model = dict(ck["model"])
    name = next(k for k, v in model.items() if v.is_floating_point())
    model[name] = torch.full_like(model[name], float("nan"))
    d = _crafted(run_dir, tmp_path, model=model, ema=None)
    code, out, err = run_cli("eval", d)
    _one_line(code, err, f"non-finite weights (NaN or infinity in {name!r})")
    assert out == ""


@pytest.mark.parametrize("flags", [["--resolution", "100000"],
                                   ["--resolution", "4000", "--batch-size", "100000000"]])
def test_eval_checks_memory_before_allocating(run_dir: Path, run_cli: Any,
                                              flags: list[str]) -> None:
    code, _, err = run_cli("eval", run_dir, *flags)
    _one_line(code, err, "of memory (inference at batch size")


@pytest.mark.parametrize("flags", [["--factor", "1e12"], ["--resolution", "100000"],
                                   ["--batch-size", "100000000"]])
def test_export_checks_memory_before_allocating(tmp_path: Path, run_cli: Any,
                                                flags: list[str]) -> None:
    code, _, err = run_cli("export", "ResNet-20-CIFAR", "-f", "torchscript", "-o",
                           tmp_path / "m.pt", *flags)
    _one_line(code, err, "needs at least")
    assert list(tmp_path.iterdir()) == []


def test_the_dry_run_estimate_checks_memory(tmp_path: Path, run_cli: Any) -> None:
    cfg = {"name": "big", "bases": ["ResNet-20-CIFAR"], "strategies": ["w"],
           "factors": [1, 1e9], "data": {"name": "digits"}, "recipe": {"epochs": 1}}
    (tmp_path / "big.yaml").write_text(yaml.safe_dump(cfg))
    code, _, err = run_cli("study", tmp_path / "big.yaml", "--dry-run")
    _one_line(code, err, "the time estimate's probe of ResNet-20-CIFAR_x1e+09_w needs")
