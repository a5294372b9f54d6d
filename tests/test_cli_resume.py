"""`netscale train --resume --out RUN_DIR` continues with the settings stored in the checkpoint:
no flags repeated, contradicting flags refused in one line naming them, a larger --epochs
extends the run."""

from __future__ import annotations

import json
from pathlib import Path

from netscale.train import load_checkpoint
from netscale_fixtures.small_specs import small_regnet

FAST = ["--data", "digits", "--subset", "192", "--val-subset", "96", "--batch-size", "64",
        "--lr", "0.05", "--quiet"]


def _spec(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    small_regnet(num_classes=10, in_channels=1, resolution=12, widths=(16, 32),
                 depths=(1, 1)).save(path)
    return path


def _one_line(err: str) -> str:
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("netscale train: error:"), err
    assert "Traceback" not in err
    return lines[0]


def test_resume_with_only_out_uses_stored_settings(tmp_path: Path, run_cli) -> None:
    out = tmp_path / "run"
    code, stdout, err = run_cli("train", _spec(tmp_path), *FAST, "--epochs", "2",
                                "--max-epochs", "1", "--out", out, "--json")
    assert code == 0, err
    assert json.loads(stdout)["epochs_done"] == 1
    code, stdout, err = run_cli("train", "--resume", "--out", out, "--json")
    assert code == 0, err
    res = json.loads(stdout)
    assert res["status"] == "completed" and [h["epoch"] for h in res["history"]] == [1, 2]
    ck = load_checkpoint(out)
    assert ck["recipe"]["lr"] == 0.05 and ck["recipe"]["batch_size"] == 64
    assert ck["data"]["subset"] == 192 and ck["data"]["name"] == "digits"


def test_contradicting_flags_are_refused_by_name(tmp_path: Path, run_cli) -> None:
    out = tmp_path / "run"
    spec = _spec(tmp_path)
    assert run_cli("train", spec, *FAST, "--epochs", "2", "--max-epochs", "1", "--out",
                   out)[0] == 0
    before = (out / "checkpoint.pt").read_bytes()
    cases = [
        (["--lr", "0.1"], "--lr 0.1 contradicts the run", "--lr 0.05"),
        (["--batch-size", "32"], "--batch-size 32 contradicts", "--batch-size 64"),
        (["--data", "mnist"], "--data mnist contradicts", "--data digits"),
        (["--subset", "500"], "--subset 500 contradicts", "--subset 192"),
        (["--resolution", "16"], "--resolution 16 contradicts", "--resolution 12"),
        (["--optimizer", "adamw"], "--optimizer adamw contradicts", "--optimizer sgd"),
        (["--ema"], "--ema contradicts", "ema False"),
        (["--epochs", "1"], "--epochs 1 is fewer than the run's 2 epochs (1 done)", ""),
    ]
    for flags, said, stored in cases:
        code, _, err = run_cli("train", "--resume", "--out", out, *flags)
        line = _one_line(err)
        assert code == 2 and said in line and stored in line, (flags, line)
    other = tmp_path / "other.yaml"
    small_regnet(num_classes=10, in_channels=1, resolution=12, widths=(24, 48),
                 depths=(1, 1)).save(other)
    code, _, err = run_cli("train", other, "--resume", "--out", out)
    assert code == 2 and "a different network from the one trained in" in _one_line(err)
    assert (out / "checkpoint.pt").read_bytes() == before  # nothing touched
    # the same command with --resume (flags agree with the stored ones) continues
    code, stdout, err = run_cli("train", spec, *FAST, "--epochs", "2", "--out", out,
                                "--resume", "--threads", "1", "--json")
    assert code == 0, err
    assert json.loads(stdout)["epochs_done"] == 2


def test_larger_epochs_extends_a_finished_run(tmp_path: Path, run_cli) -> None:
    out = tmp_path / "run"
    assert run_cli("train", _spec(tmp_path), *FAST, "--epochs", "1", "--out", out)[0] == 0
    code, stdout, err = run_cli("train", "--resume", "--out", out, "--epochs", "3", "--json",
                                "--max-epochs", "2")
    assert code == 0, err
    res = json.loads(stdout)
    assert (res["epochs_done"], res["epochs"], res["status"]) == (2, 3, "stopped")
    assert load_checkpoint(out)["recipe"]["epochs"] == 3
    code, stdout, err = run_cli("train", "--resume", "--out", out)
    assert code == 0, err
    assert "3 epochs in" in stdout and "completed" in stdout
    assert [json.loads(x)["epoch"] for x in (out / "log.jsonl").read_text().splitlines()
            if '"epoch"' in x][-3:] == [1, 2, 3]


def test_missing_model_or_data_says_how(tmp_path: Path, run_cli) -> None:
    code, _, err = run_cli("train", "--data", "digits")
    assert code == 2 and "MODEL_OR_SPEC" in _one_line(err) and "--resume --out" in err
    code, _, err = run_cli("train", "--resume", "--out", tmp_path / "nothing")
    assert code == 2 and "the directory does not exist" in _one_line(err)
