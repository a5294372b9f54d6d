"""`netscale export`: TorchScript, torch.export (.pt2) and ONNX files that load back and
reproduce the PyTorch model; scaled specs; trained weights from a run; one-line errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from netscale.models import build_model
from netscale.models.export import export_spec, onnx_missing
from netscale.scaling import scale
from netscale.specs import NetSpec, resolve_spec
from netscale.train import load_checkpoint
from netscale_fixtures.small_specs import small_regnet

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.load

HAS_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript", "onnxruntime"))


def _spec(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    small_regnet(num_classes=10, in_channels=1, resolution=16, widths=(16, 32),
                 depths=(1, 1)).save(path)
    return path


def _load(fmt: str, path: Path):  # type: ignore[no-untyped-def]
    if fmt == "torchscript":
        return torch.jit.load(str(path)).eval()
    return torch.export.load(str(path)).module()


def _reference(spec: NetSpec, state: dict | None = None) -> torch.nn.Module:
    torch.manual_seed(0)  # the exporter builds with seed 0 when no weights are given
    model = build_model(spec)
    if state is not None:
        model.load_state_dict(state)
    return model.eval()


@pytest.mark.parametrize("fmt", ["torchscript", "pt2"])
def test_export_scaled_spec_loads_back_and_matches(tmp_path: Path, run_cli, fmt: str) -> None:
    spec_path = _spec(tmp_path)
    out = tmp_path / f"model.{fmt}"
    code, stdout, err = run_cli("export", spec_path, "--format", fmt, "--out", out,
                                "--factor", "2", "--strategy", "w", "--resolution", "20")
    assert code == 0, err
    assert f"to {out}" in stdout and "max abs difference vs PyTorch" in stdout
    assert "random 1x1x20x20 input" in stdout
    scaled = scale(resolve_spec(str(spec_path)), 2, "w")
    ref = _reference(scaled)
    loaded = _load(fmt, out)
    # the batch dimension is dynamic: the file runs on another batch size than the check's
    x = torch.randn(3, 1, 20, 20)
    with torch.no_grad():
        assert (loaded(x) - ref(x)).abs().max().item() < 1e-4
    n_params = sum(p.numel() for p in ref.parameters())
    assert n_params == sum(p.numel() for p in build_model(scaled).parameters())
    assert not list(tmp_path.glob(".model.*"))  # no temp file left behind


def test_export_trained_weights_from_a_run(tmp_path: Path, run_cli) -> None:
    run = tmp_path / "run"
    code, _, err = run_cli("train", _spec(tmp_path), "--data", "digits", "--subset", "128",
                           "--val-subset", "64", "--batch-size", "64", "--epochs", "1",
                           "--quiet", "--out", run)
    assert code == 0, err
    out = tmp_path / "trained.pt2"
    code, stdout, err = run_cli("export", "--weights", run, "--format", "pt2", "--out", out,
                                "--json")
    assert code == 0, err
    res = json.loads(stdout)
    assert res["weights"].startswith("trained weights (raw) from") and res["num_outputs"] == 10
    assert res["max_abs_diff"] < 1e-4 and res["dynamic_batch"] is True
    ck = load_checkpoint(run)
    trained = _reference(NetSpec.from_dict(ck["spec"]), ck["model"])
    untrained = _reference(NetSpec.from_dict(ck["spec"]))
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        got = _load("pt2", out)(x)
        assert (got - trained(x)).abs().max().item() < 1e-4
        assert (got - untrained(x)).abs().max().item() > 1e-3  # the weights were exported
    # a spec that is not the run's network is refused in one line
    other = tmp_path / "other.yaml"
    small_regnet(num_classes=10, in_channels=1, resolution=16, widths=(24, 48),
                 depths=(1, 1)).save(other)
    code, _, err = run_cli("export", other, "--weights", run, "--format", "pt2", "--out",
                           tmp_path / "x.pt2")
    assert code == 2 and "is not the network trained in" in err and "Traceback" not in err
    assert not (tmp_path / "x.pt2").exists()


@pytest.mark.skipif(not HAS_ONNX, reason="ONNX export is an optional extra: pip install "
                    "'netscale[onnx]' (the missing-package message is tested below)")
def test_export_onnx_when_installed(tmp_path: Path, run_cli) -> None:
    import onnxruntime as ort

    out = tmp_path / "m.onnx"
    code, stdout, err = run_cli("export", _spec(tmp_path), "--format", "onnx", "--out", out)
    assert code == 0, err
    assert "as ONNX" in stdout and "max abs difference" in stdout
    ref = _reference(resolve_spec(str(tmp_path / "tiny.yaml")))
    x = torch.randn(4, 1, 16, 16)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        assert float((torch.from_numpy(got) - ref(x)).abs().max()) < 1e-4
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_onnx_without_the_packages_is_one_line(tmp_path: Path, run_cli,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import netscale.models.export as ex

    real = importlib.util.find_spec
    monkeypatch.setattr(ex.importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    assert "onnxruntime" in onnx_missing()
    out = tmp_path / "m.onnx"
    code, stdout, err = run_cli("export", _spec(tmp_path), "--format", "onnx", "--out", out)
    assert code == 2 and stdout == "" and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "onnxruntime" in lines[0] and "netscale[onnx]" in lines[0]
    assert not out.exists()


def test_export_errors_are_one_line_and_keep_files(tmp_path: Path, run_cli) -> None:
    spec = _spec(tmp_path)
    code, _, err = run_cli("export", spec, "--format", "pt2", "--out", tmp_path)
    assert code == 2 and "is a directory" in err
    code, _, err = run_cli("export", "--format", "pt2", "--out", tmp_path / "a.pt2")
    assert code == 2 and "give MODEL_OR_SPEC" in err
    code, _, err = run_cli("export", "NoSuchNet", "--format", "pt2", "--out", tmp_path / "a.pt2")
    assert code == 2 and "NoSuchNet" in err
    code, _, err = run_cli("export", spec, "--format", "tflite", "--out", tmp_path / "a.pt2")
    assert code == 2 and "tflite" in err
    code, _, err = run_cli("export", spec, "--weights", tmp_path / "nope", "--format", "pt2",
                           "--out", tmp_path / "a.pt2")
    assert code == 2 and "nope" in err
    assert not (tmp_path / "a.pt2").exists()
    # an existing file is replaced only by a verified export
    keep = tmp_path / "keep.pt"
    keep.write_bytes(b"old")
    assert run_cli("export", spec, "--format", "torchscript", "--out", keep)[0] == 0
    assert torch.jit.load(str(keep)) is not None


def test_library_function_returns_a_typed_result(tmp_path: Path) -> None:
    res = export_spec(small_regnet(num_classes=10, in_channels=1, resolution=16,
                                   widths=(16, 32), depths=(1, 1)),
                      tmp_path / "m.pt", "torchscript", batch_size=2)
    assert res.input_shape == (2, 1, 16, 16) and res.num_outputs == 10
    assert res.max_abs_diff < 1e-4 and json.loads(json.dumps(res.to_dict()))["format"] == \
        "torchscript"
