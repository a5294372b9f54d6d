"""Export a (scaled) network for deployment: TorchScript, ``torch.export`` (.pt2) or ONNX.

Every export is verified: the written file is loaded back (``torch.jit.load``,
``torch.export.load``, or an ONNX Runtime session) and its output on a random input is
compared with the PyTorch model's; the largest absolute difference is reported. The file is
written next to its destination and renamed into place only after the check passed, so an
existing file is never left half-written.

TorchScript and .pt2 need torch alone; ONNX needs the optional packages ``onnx``,
``onnxscript`` and ``onnxruntime`` (``pip install 'netscale[onnx]'``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from netscale.errors import NetscaleError
from netscale.models.builder import build_model
from netscale.util import serial
from netscale.util.io import OutputError, atomic_path

FORMATS: tuple[str, ...] = ("torchscript", "pt2", "onnx")
SUFFIX = {"torchscript": ".pt", "pt2": ".pt2", "onnx": ".onnx"}
FORMAT_NAMES = {"torchscript": "TorchScript", "pt2": "torch.export", "onnx": "ONNX"}
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
TOLERANCE = 1e-3  # max abs difference accepted, relative to max(1, max |output|)


@dataclass(frozen=True)
class ExportResult:
    """What was written and how well the written file reproduces the PyTorch model."""

    path: str
    format: str
    model: str
    input_shape: tuple[int, ...]  # the verification input, batch first
    dynamic_batch: bool
    num_outputs: int
    weights: str
    bytes: int
    max_abs_diff: float
    max_abs_output: float

    def to_dict(self) -> dict[str, Any]:
        return serial.to_dict(self)


def onnx_missing() -> list[str]:
    """The ONNX packages that are not installed (empty when ONNX export works)."""
    return [m for m in ONNX_PACKAGES if importlib.util.find_spec(m) is None]


def _write_torchscript(model: nn.Module, x: torch.Tensor, path: str) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript still works
        try:
            scripted = torch.jit.script(model)
        except Exception:  # not scriptable (python control flow): trace it instead
            scripted = torch.jit.trace(  # type: ignore[no-untyped-call]  # unannotated in torch
                model, (x,), check_trace=False)
    _save_buffered(lambda buf: torch.jit.save(scripted, buf), path)


def _save_buffered(save: Any, path: str) -> None:
    """``save(buffer)`` in memory, then the bytes written to ``path`` by Python: a full disk
    or a file-size limit is then an :class:`OutputError` (one line), not an abort in the
    C++ zip writer."""
    import io

    buf = io.BytesIO()
    save(buf)
    try:
        with open(path, "wb") as f:
            f.write(buf.getbuffer())
            f.flush()
    except OSError as exc:
        raise OutputError(_target_name(path), exc) from None


def _target_name(tmp: str) -> str:
    """The output file a temp file of :func:`netscale.util.io.atomic_path` becomes."""
    name = Path(tmp).name
    return str(Path(tmp).with_name(name[1:name.rindex(".netscale-")] if ".netscale-" in name
                                   else name))


def _batch_dim() -> Any:
    return torch.export.Dim("batch", min=1, max=4096)


def _write_pt2(model: nn.Module, x: torch.Tensor) -> tuple[Any, bool]:
    name = _input_name(model)
    try:
        return torch.export.export(model, (x,), dynamic_shapes={name: {0: _batch_dim()}}), True
    except Exception:  # a model that specializes on the batch size: export it static
        return torch.export.export(model, (x,)), False


def _input_name(model: nn.Module) -> str:
    params = [p for p in inspect.signature(model.forward).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return params[0].name if params else "x"


def _write_onnx(model: nn.Module, x: torch.Tensor, path: str) -> bool:
    missing = onnx_missing()
    if missing:
        raise NetscaleError(
            f"ONNX export needs the packages {', '.join(missing)} (not installed); "
            "pip install 'netscale[onnx]' (or onnx onnxscript onnxruntime), or use --format "
            "torchscript or pt2, which need torch alone")
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    name = _input_name(model)
    with warnings.catch_warnings(), open(os.devnull, "w") as sink, \
            contextlib.redirect_stdout(sink):
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(model, (x,), path, input_names=["input"],
                              output_names=["output"], external_data=False,
                              dynamic_shapes={name: {0: _batch_dim()}}, dynamo=True)
            return True
        except Exception:
            torch.onnx.export(model, (x,), path, input_names=["input"],
                              output_names=["output"], external_data=False, dynamo=True)
            return False


def _run_back(fmt: str, path: str, x: torch.Tensor) -> torch.Tensor:
    """Loads the written file and runs it on ``x``."""
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            loaded = torch.jit.load(  # type: ignore[no-untyped-call]  # unannotated in torch
                path, map_location="cpu")
        loaded.eval()
        with torch.no_grad():
            out: torch.Tensor = loaded(x)
            return out
    if fmt == "pt2":
        program = torch.export.load(path).module()
        with torch.no_grad():
            out = program(x)
            return out
    import onnxruntime as ort  # type: ignore[import-untyped]  # no stubs or py.typed

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x.numpy()}
    return torch.from_numpy(sess.run(None, feed)[0])


def export_model(model: nn.Module, path: str | Path, fmt: str, input_shape: tuple[int, ...],
                 *, batch_size: int = 1, weights: str = "as given", name: str = "model",
                 seed: int = 0) -> ExportResult:
    """Writes ``model`` (in eval mode, on the CPU) to ``path`` in ``fmt`` and verifies it.

    ``input_shape`` is (C, H, W) without the batch dimension. The batch dimension is dynamic
    where the exporter allows it (.pt2, ONNX; TorchScript always is for these networks); the
    check runs on a random input of ``batch_size`` images (seeded)."""
    if fmt not in FORMATS:
        raise NetscaleError(f"unknown export format {fmt!r}; choose one of "
                            f"{', '.join(FORMATS)}")
    if fmt == "onnx" and onnx_missing():
        _write_onnx(model, torch.zeros(1), "")  # raises the one-line error
    out = Path(path)
    if out.is_dir():
        raise NetscaleError(f"--out {str(out)!r} is a directory; give a file name such as "
                            f"{out / ('model' + SUFFIX[fmt])}")
    model = model.to("cpu").eval()
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((batch_size, *input_shape), generator=gen)
    # the exporters trace with 2 images: a batch of 1 would be specialized (fixed) in the graph
    example = torch.randn((max(2, batch_size), *input_shape), generator=gen)
    with torch.no_grad():
        expected = model(x)
    with atomic_path(out, suffix=SUFFIX[fmt]) as tmp:  # published only once checked
        dynamic = _write_format(model, example, str(tmp), fmt, name)
        diff, scale = _check_exported(fmt, str(tmp), x, expected)
        size = tmp.stat().st_size
    return ExportResult(path=str(out), format=fmt, model=name, input_shape=tuple(x.shape),
                        dynamic_batch=dynamic, num_outputs=int(expected.shape[-1]),
                        weights=weights, bytes=size, max_abs_diff=diff,
                        max_abs_output=scale)


def _write_format(model: nn.Module, example: torch.Tensor, tmp: str, fmt: str,
                  name: str) -> bool:
    """Writes ``model`` to ``tmp`` in ``fmt``; returns whether the batch dimension is
    dynamic. An exporter's failure becomes one line naming the format."""
    try:
        if fmt == "torchscript":
            _write_torchscript(model, example, tmp)
            return True
        if fmt == "pt2":
            program, dynamic = _write_pt2(model, example)
            _save_buffered(lambda buf: torch.export.save(program, buf), tmp)
            return dynamic
        return _write_onnx(model, example, tmp)
    except NetscaleError:
        raise
    except Exception as exc:
        msg = " ".join(str(exc).split())[:200]
        raise NetscaleError(f"{FORMAT_NAMES[fmt]} export of {name} failed "
                            f"({type(exc).__name__}: {msg}); try another --format") from None


def _check_exported(fmt: str, tmp: str, x: torch.Tensor,
                    expected: torch.Tensor) -> tuple[float, float]:
    """Loads the written file back and compares its output on ``x`` with PyTorch's;
    returns (max abs difference, max abs output)."""
    try:
        got = _run_back(fmt, tmp, x)
    except Exception as exc:
        msg = " ".join(str(exc).split())[:200]
        raise NetscaleError(f"the exported {FORMAT_NAMES[fmt]} file could not be loaded "
                            f"back ({type(exc).__name__}: {msg})") from None
    if tuple(got.shape) != tuple(expected.shape):
        raise NetscaleError(f"the exported {FORMAT_NAMES[fmt]} model returns shape "
                            f"{tuple(got.shape)}, PyTorch {tuple(expected.shape)}")
    diff = float((got.float() - expected.float()).abs().max())
    scale = float(expected.abs().max())
    if not diff <= TOLERANCE * max(1.0, scale):
        raise NetscaleError(f"the exported {FORMAT_NAMES[fmt]} model differs from PyTorch "
                            f"by up to {diff:.3g} (outputs up to {scale:.3g}); not written")
    return diff, scale


def export_spec(spec: Any, path: str | Path, fmt: str, *, resolution: int | None = None,
                batch_size: int = 1, state: Mapping[str, Any] | None = None,
                weights: str = "random initialisation (seed 0)") -> ExportResult:
    """Builds ``spec`` (a :class:`~netscale.specs.NetSpec`), loads ``state`` (a state dict,
    e.g. a run's trained weights from :func:`netscale.train.checkpoint.run_weights`, described
    by ``weights``) if given, and exports it."""
    if spec is None:
        raise NetscaleError("give MODEL_OR_SPEC, or --weights RUN_DIR to export a trained run")
    torch.manual_seed(0)
    model = build_model(spec)
    if state is not None:
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise NetscaleError(f"the {weights} do not fit {spec.name}: "
                                f"{str(exc).splitlines()[0]}") from None
    px = resolution or spec.resolution
    return export_model(model, path, fmt, (spec.in_channels, px, px), batch_size=batch_size,
                        weights=weights, name=spec.name)
