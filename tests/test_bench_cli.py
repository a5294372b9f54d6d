"""`netscale bench` command line (tiny models, tiny budgets; structure, never timings)."""

from __future__ import annotations

import csv
import io
import json

import pytest
import torch

from netscale.bench import CSV_FIELDS, SCHEMA, load_results

# one thread: a 2-thread OpenMP run on a busy 2-core machine can stall for seconds
FAST = ("--budget", "0.15", "--warmup", "1", "--batch-size", "2", "--resolution", "16",
        "--threads", "1")


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text("base: ResNet-20-CIFAR\nname: tiny\nnum_classes: 5\n")
    return str(path)


def test_human_output_states_units(run_cli, tiny) -> None:
    code, out, err = run_cli("bench", tiny, *FAST)
    assert code == 0, err
    assert "device cpu" in out and f"torch {torch.__version__}" in out and "threads" in out
    for unit in ("ms/batch", "IQR ms", "images/s", "GFLOP/s", "peak MiB", "flops (MACs)"):
        assert unit in out
    assert "multiply-adds" in out and "tiny" in out


def test_json_schema_both_modes(run_cli, tiny) -> None:
    code, out, _ = run_cli("bench", tiny, "ResNet-20-CIFAR", "--mode", "both", "--json", *FAST)
    assert code == 0
    data = json.loads(out)
    assert data["schema"] == SCHEMA and "fits" not in data
    rows = data["results"]
    assert [(r["model"], r["mode"]) for r in rows] == [
        ("tiny", "infer"), ("ResNet-20-CIFAR", "infer"), ("tiny", "train"),
        ("ResNet-20-CIFAR", "train")]
    for r in rows:
        assert r["status"] == "ok" and r["batch_size"] == 2 and r["resolution"] == 16
        assert r["time_ms"] > 0 and r["samples"] >= 3 and isinstance(r["noisy"], bool)
        assert r["env"]["device"] == "cpu" and r["env"]["dtype"] == "float32"
        assert r["units"]["time"] == "ms per batch"
    assert set(rows[2]["phases"]) == {"forward", "backward", "step"}
    assert rows[0]["flops"] != rows[1]["flops"]  # the spec file (5 classes) is honoured


def test_csv_and_out_file(run_cli, tiny, tmp_path) -> None:
    out_path = tmp_path / "rows.json"
    code, out, _ = run_cli("bench", tiny, "--csv", "--out", str(out_path),
                           "--memory-format", "channels_last", "--precision", "fp32", *FAST)
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 1 and list(rows[0]) == CSV_FIELDS
    assert rows[0]["env_amp"] == "False" and rows[0]["env_amp_dtype"] == ""
    assert rows[0]["env_channels_last"] == "True" and rows[0]["env_threads"] == "1"
    saved = load_results(out_path)
    assert len(saved) == 1 and saved[0].model == "tiny" and saved[0].env.channels_last


def test_fit_with_generated_models(run_cli, tmp_path) -> None:
    plot = tmp_path / "fit.png"
    code, out, err = run_cli("bench", "--fit", "--base", "ResNet-20-CIFAR", "--strategies",
                             "d,w", "--factors", "1,2", "--plot", str(plot), *FAST)
    assert code == 0, err
    assert "Pearson r" in out and "best single predictor of infer runtime" in out
    assert plot.read_bytes()[:4] == b"\x89PNG"
    data = json.loads(plot.with_suffix(".json").read_text())
    assert [r["strategy"] for r in data["results"]] == ["base", "d", "w"]
    assert [r["resolution"] for r in data["results"]] == [16, 16, 16]
    fit = data["fits"]["infer"]
    assert fit["n"] == 3 and set(fit["per_metric"]) == {"flops", "params", "acts"}
    assert fit["best_metric"] in ("flops", "params", "acts")
    assert "[3/3]" in err  # progress on stderr


def test_resolution_scales_with_r_strategy(run_cli) -> None:
    code, out, _ = run_cli("bench", "--base", "ResNet-20-CIFAR", "--strategies", "r",
                           "--factors", "1,4", "--json", *FAST)
    rows = json.loads(out)["results"]
    assert code == 0 and [r["strategy"] for r in rows] == ["base", "r"]
    # --resolution sets the base's resolution; the r strategy still scales it (x4 flops -> x2 px)
    assert rows[0]["resolution"] == 16 and rows[1]["resolution"] == 32


def test_fit_json_contains_fits(run_cli, tiny, tmp_path) -> None:
    code, out, _ = run_cli("bench", tiny, "ResNet-20-CIFAR", "ResNet-32-CIFAR", "--fit",
                           "--json", "--plot", str(tmp_path / "p.png"), "--out",
                           str(tmp_path / "rows.csv"), *FAST)
    assert code == 0
    data = json.loads(out)
    assert len(data["results"]) == 3 and data["fits"]["infer"]["n"] == 3
    assert (tmp_path / "rows.csv").read_text().startswith("model,")


@pytest.mark.parametrize("args, message", [
    (("NoSuchNet",), "NoSuchNet"),
    (("ResNet-20-CIFAR", "--strategies", "d"), "need --base"),
    (("ResNet-20-CIFAR", "--plot", "x.png"), "--plot needs --fit"),
    (("ResNet-20-CIFAR", "ResNet-32-CIFAR", "--fit"), "at least 3 models"),
    ((), "give at least one MODEL_OR_SPEC"),
    (("ResNet-20-CIFAR", "--device", "tpu"), "unknown device"),
    (("ResNet-20-CIFAR", "--warmup", "-1"), "--warmup"),
    (("--base", "ResNet-20-CIFAR", "--strategies", "zz"), "zz"),
])
def test_errors_are_one_line(run_cli, args, message) -> None:
    code, out, err = run_cli("bench", *args)
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_cuda_unavailable_is_a_clear_error(run_cli, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = run_cli("bench", "ResNet-20-CIFAR", "--device", "cuda")
    assert code == 2 and "CUDA is not available" in err and "--device cpu" in err


@pytest.mark.parametrize("args", [("--budget", "0"), ("--batch-size", "0"),
                                  ("--mode", "fast"), ("--json", "--csv")])
def test_bad_options_are_usage_errors(run_cli, args) -> None:
    code, _, err = run_cli("bench", "ResNet-20-CIFAR", *args)
    assert code == 2 and "error" in err and err.count("\n") == 1
