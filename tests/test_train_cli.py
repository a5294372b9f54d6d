"""`netscale train` / `netscale eval`: happy paths, resume, and every bad input (one-line
errors, exit code 2, nothing already written lost)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from netscale.data import datasets as ds_mod
from netscale_fixtures.small_specs import small_regnet

FAST = ["--data", "digits", "--subset", "192", "--val-subset", "96", "--batch-size", "64",
        "--quiet"]


def spec_file(tmp_path: Path, name: str = "tiny.yaml", **kw) -> Path:
    """A tiny RegNet-style spec with ImageNet-like head/input (1000 classes, 3 channels)."""
    args = {"num_classes": 1000, "in_channels": 3, "resolution": 16, "widths": (16, 32),
            "depths": (1, 1), **kw}
    path = tmp_path / name
    small_regnet(**args).save(path)
    return path


def one_line_error(err: str, command: str = "train") -> str:
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert "Traceback" not in err
    errors = [x for x in lines if x.startswith(f"netscale {command}: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    return errors[0]


def make_pngs(root: Path, classes=("a", "b"), per_class: int = 3) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in classes:
        d = root / "train" / c
        d.mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(
                d / f"{i}.png")


# ----------------------------------------------------------------------------- happy paths


def test_train_adapts_spec_and_reports(tmp_path: Path, run_cli) -> None:
    out = tmp_path / "run"
    code, stdout, err = run_cli("train", spec_file(tmp_path), "--data", "digits", "--subset",
                                "192", "--val-subset", "96", "--batch-size", "64",
                                "--epochs", "1", "--resolution", "12", "--out", out)
    assert code == 0, err
    assert ("note: adapted SmallRegNetY to digits: num_classes 1000 -> 10, in_channels 3 -> 1, "
            "resolution 16 -> 12") in err
    assert "epoch 1/1" in err and "img/s" in err  # progress on stderr
    assert "SmallRegNetY on digits: 1 epochs in" in stdout and "val top-1 err" in stdout
    assert {p.name for p in out.iterdir()} >= {"checkpoint.pt", "log.jsonl", "result.json",
                                                "spec.yaml"}
    assert "resolution: 12" in (out / "spec.yaml").read_text()


def test_train_json_stop_and_resume(tmp_path: Path, run_cli) -> None:
    out = tmp_path / "run"
    spec = spec_file(tmp_path)
    code, stdout, err = run_cli("train", spec, *FAST, "--epochs", "2", "--max-epochs", "1",
                                "--out", out, "--json")
    assert code == 0, err
    first = json.loads(stdout)
    assert (first["status"], first["epochs_done"], first["epochs"]) == ("stopped", 1, 2)
    assert first["spec"]["num_classes"] == 10 and err == ""  # --quiet
    # Without --resume an existing run is refused and left as it was.
    before = (out / "checkpoint.pt").read_bytes()
    code, _, err = run_cli("train", spec, *FAST, "--epochs", "2", "--out", out)
    assert code == 2
    assert "--resume" in one_line_error(err)
    assert (out / "checkpoint.pt").read_bytes() == before
    code, stdout, err = run_cli("train", spec, *FAST, "--epochs", "2", "--out", out,
                                "--resume", "--json")
    assert code == 0, err
    done = json.loads(stdout)
    assert done["status"] == "completed" and [h["epoch"] for h in done["history"]] == [1, 2]


def test_eval_text_and_json(tmp_path: Path, run_cli) -> None:
    out = tmp_path / "run"
    assert run_cli("train", spec_file(tmp_path), *FAST, "--epochs", "1", "--out", out)[0] == 0
    code, stdout, err = run_cli("eval", out)
    assert code == 0, err
    assert "SmallRegNetY (epoch 1, raw weights) on digits val (96 images, 16 px)" in stdout
    code, stdout, _ = run_cli("eval", out / "checkpoint.pt", "--data", "digits", "--json",
                              "--split", "train")
    res = json.loads(stdout)
    assert res["split"] == "train" and res["images"] == 192 and 0 <= res["top1_err"] <= 1
    hist = json.loads((out / "log.jsonl").read_text().splitlines()[0])
    code, stdout, _ = run_cli("eval", out, "--json", "--model", spec_file(tmp_path))
    assert code == 0 and json.loads(stdout)["top1_err"] == pytest.approx(hist["top1_err"])


# ----------------------------------------------------------------------------- bad input


def test_missing_dataset_says_how_to_get_it(tmp_path: Path, run_cli,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ds_mod, "data_roots", lambda: [tmp_path / "data"])
    code, _, err = run_cli("train", spec_file(tmp_path), "--data", "fashion-mnist",
                           "--out", tmp_path / "run")
    assert code == 2
    line = one_line_error(err)
    assert "dataset 'fashion-mnist' not found" in line
    assert "apt-get install dataset-fashion-mnist" in line and "--data PATH" in line
    assert not (tmp_path / "run").exists()
    code, _, err = run_cli("train", spec_file(tmp_path), "--data", tmp_path / "nowhere")
    assert code == 2 and "does not exist" in one_line_error(err)


def test_empty_class_folder(tmp_path: Path, run_cli) -> None:
    make_pngs(tmp_path / "tree")
    (tmp_path / "tree" / "train" / "c").mkdir()
    code, _, err = run_cli("train", spec_file(tmp_path), "--data", tmp_path / "tree",
                           "--out", tmp_path / "run", "--quiet")
    assert code == 2
    assert f"class folder '{tmp_path / 'tree' / 'train' / 'c'}' is empty" in one_line_error(err)


def test_corrupt_image_names_the_file(tmp_path: Path, run_cli) -> None:
    make_pngs(tmp_path / "tree", per_class=4)
    for p in (tmp_path / "tree" / "train" / "b").iterdir():  # whichever is drawn first
        p.write_bytes(b"garbage")
    code, _, err = run_cli("train", spec_file(tmp_path), "--data", tmp_path / "tree",
                           "--workers", "0", "--batch-size", "4", "--epochs", "1",
                           "--out", tmp_path / "run", "--quiet")
    assert code == 2
    line = one_line_error(err)
    assert f"cannot decode image '{tmp_path / 'tree' / 'train' / 'b'}/" in line
    assert "remove or replace" in line


def test_mismatched_checkpoint_and_spec(tmp_path: Path, run_cli) -> None:
    out = tmp_path / "run"
    assert run_cli("train", spec_file(tmp_path), *FAST, "--epochs", "1", "--out", out)[0] == 0
    other = spec_file(tmp_path, "other.yaml", widths=(16, 48))
    code, _, err = run_cli("eval", out, "--model", other)
    assert code == 2 and "written for a different network" in one_line_error(err, "eval")
    before = (out / "checkpoint.pt").read_bytes()
    code, _, err = run_cli("train", other, *FAST, "--epochs", "1", "--out", out, "--resume")
    assert code == 2 and "different network" in one_line_error(err)
    assert (out / "checkpoint.pt").read_bytes() == before
    (tmp_path / "junk.pt").write_bytes(b"\x00" * 64)
    code, _, err = run_cli("eval", tmp_path / "junk.pt")
    assert code == 2 and "cannot read checkpoint" in one_line_error(err, "eval")


def test_nan_loss_is_an_error_and_marks_the_run(tmp_path: Path, run_cli) -> None:
    out = tmp_path / "run"
    code, _, err = run_cli("train", spec_file(tmp_path), *FAST, "--epochs", "1", "--lr", "1e20",
                           "--warmup-epochs", "0", "--out", out)
    assert code == 2
    line = one_line_error(err)
    assert "training diverged: non-finite loss at epoch 1" in line and "--lr" in line
    assert json.loads((out / "result.json").read_text())["status"] == "diverged"


def test_unknown_dataset_and_bad_options(tmp_path: Path, run_cli) -> None:
    code, _, err = run_cli("train", spec_file(tmp_path), "--data", "cifar-11")
    assert code == 2 and "unknown dataset 'cifar-11'" in one_line_error(err)
    code, _, err = run_cli("train", spec_file(tmp_path), "--data", "digits", "--epochs", "0")
    assert code == 2 and "positive integer" in err
    code, _, err = run_cli("train", spec_file(tmp_path), "--data", "digits", "--epochs", "2",
                           "--warmup-epochs", "5")
    assert code == 2 and "warmup_epochs" in one_line_error(err)
