"""Checkpoints: written atomically (temp file + fsync + rename), read with
``torch.load(weights_only=True)``. A checkpoint holds only tensors and plain data: the spec,
recipe, data config and history as JSON text, RNG states as tensors.
"""

from __future__ import annotations

import errno
import io
import json
import os
import random
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from netscale.errors import NetscaleError
from netscale.models import ModelSpec
from netscale.specs import NetSpec
from netscale.train.resume_check import check_progress
from netscale.util import jsonio
from netscale.util.io import atomic_write, sweep_temp_files

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT = "netscale-checkpoint"
FORMAT_VERSION = 1


def rng_state() -> dict[str, Any]:
    """torch (CPU, CUDA), numpy and Python RNG states, as tensors and ints."""
    py = random.getstate()
    # legacy=True (the default) gives the MT19937 tuple; numpy's stub overload says dict
    np_state = cast(tuple[str, Any, int, int, float], np.random.get_state())
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": torch.tensor(py[1], dtype=torch.int64),
        "python_version": int(py[0]),
        "numpy": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
        "numpy_pos": int(np_state[2]),
        "numpy_has_gauss": int(np_state[3]),
        "numpy_gauss": float(np_state[4]),
    }
    cuda_initialized = cast(Callable[[], bool], torch.cuda.is_initialized)  # unannotated in torch
    if torch.cuda.is_available() and cuda_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((int(state["python_version"]),
                     tuple(int(v) for v in state["python"].tolist()), None))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32),
                         int(state["numpy_pos"]), int(state["numpy_has_gauss"]),
                         float(state["numpy_gauss"])))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Writes ``payload`` (tensors, plain data) atomically; readers see old or new, whole.
    A write that fails for lack of space (file too large, read-only file system, quota) is
    one line naming the path; the previous checkpoint stays as it was."""
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    for key in ("spec", "recipe", "data", "history", "extra", "setting"):
        if key in data and not isinstance(data[key], str):
            data[key] = jsonio.dumps(data[key])
    buf = io.BytesIO()  # serialized first: a failing file write is a plain OSError
    torch.save(data, buf)
    try:
        return atomic_write(path, lambda f: f.write(buf.getbuffer()))
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EDQUOT):
            raise
        raise NetscaleError(f"cannot write checkpoint {str(path)!r}: {os.strerror(exc.errno)};"
                            " free space (or lift the limit) and resume: the previous "
                            "checkpoint is intact") from exc


def sweep_checkpoint_temps(run_dir: str | Path) -> list[Path]:
    """Removes the temp files of checkpoint (and log/result) writes that a kill interrupted
    in ``run_dir``. Call it only while holding the run directory's lock."""
    return sweep_temp_files(run_dir)


def checkpoint_path(path: str | Path) -> Path:
    """A checkpoint file, or the ``checkpoint.pt`` inside a run directory."""
    p = Path(path)
    return p / CHECKPOINT_NAME if p.is_dir() else p


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu"
                    ) -> dict[str, Any]:
    """Reads a checkpoint safely (``weights_only=True``); JSON fields come back parsed."""
    p = checkpoint_path(path)
    if not p.exists():
        where = f"{str(path)!r} has no {CHECKPOINT_NAME}" if Path(path).is_dir() else \
            f"checkpoint {str(p)!r} does not exist"
        raise NetscaleError(f"{where}; give a run directory or a .pt file written by "
                            "netscale train")
    if p.is_dir():
        raise NetscaleError(f"checkpoint {str(p)!r} is a directory; give a run directory or a "
                            ".pt file written by netscale train")
    try:
        data = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        raise NetscaleError(f"cannot read checkpoint {str(p)!r}: {_load_reason(exc)}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise NetscaleError(f"{str(p)!r} is not a netscale checkpoint (no '{FORMAT}' marker)")
    version = data.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise NetscaleError(f"checkpoint {str(p)!r} is corrupt: format_version {version!r} is "
                            "not a non-negative integer")
    if version > FORMAT_VERSION:
        raise NetscaleError(f"checkpoint {str(p)!r} was written by a newer netscale "
                            f"(format {version}); upgrade netscale")
    for key, kind in (("spec", dict), ("recipe", dict), ("data", dict), ("history", list),
                      ("extra", dict), ("setting", dict)):
        value = data.get(key)
        if isinstance(value, str):
            try:
                value = data[key] = json.loads(value)
            except ValueError:
                raise NetscaleError(f"checkpoint {str(p)!r} is corrupt: field {key!r} is not "
                                    "valid JSON") from None
        if value is not None and not isinstance(value, kind):
            raise NetscaleError(f"checkpoint {str(p)!r} is corrupt: field {key!r} is a "
                                f"{type(value).__name__}, expected a {kind.__name__}")
    if not isinstance(data.get("spec"), dict):
        raise NetscaleError(f"checkpoint {str(p)!r} is corrupt: it has no spec")
    if any(not isinstance(h, dict) for h in data.get("history") or []):
        raise NetscaleError(f"checkpoint {str(p)!r} is corrupt: field 'history' holds "
                            "non-mapping entries")
    epoch = data.get("epoch", 0)
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise NetscaleError(f"checkpoint {str(p)!r} is corrupt: epoch {epoch!r} is not a "
                            "non-negative integer")

    check_progress(data, repr(str(p)))
    model = data.get("model")
    if not (isinstance(model, dict) and all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in model.items())):
        raise NetscaleError(f"checkpoint {str(p)!r} is corrupt: 'model' is not a mapping of "
                            "parameter names to tensors")
    data["path"] = str(p)
    return data


def _load_reason(exc: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, without PyTorch's advice to load
    it unsafely (``weights_only=False`` can run arbitrary code; netscale never does it)."""
    text = str(exc)
    if "weights only load failed" in text.lower() or "weights_only" in text:
        paras = [" ".join(part.split()) for part in text.split("\n\n")]
        reasons = [q for q in paras if q and "weights_only" not in q.lower()
                   and "weights only load failed" not in q.lower()
                   and not q.lower().startswith("check the documentation")]
        reason = "; ".join(reasons)[:300] or "it contains objects that are not tensors"
        return (f"refused: it holds Python objects other than tensors and plain data, which "
                f"could run code when loaded ({reason}); only load checkpoints written by "
                "netscale train")
    if isinstance(exc, EOFError) or not text.strip():
        detail = "the file is empty or truncated"
    else:
        detail = f"{type(exc).__name__}: {' '.join(text.split())[:160]}"
    return f"not a netscale checkpoint or corrupt ({detail})"


def checkpoint_weights(ck: Mapping[str, Any], which: str, where: str) -> tuple[Any, str]:
    """(state dict, "ema" or "raw") of a loaded checkpoint: its EMA weights when the run kept
    them and ``which`` is auto or ema, else the raw ones; ``which="ema"`` without EMA weights
    is a one-line error naming ``where``."""
    has_ema = ck.get("ema") is not None
    if which == "ema" and not has_ema:
        raise NetscaleError(f"{where} has no EMA weights (trained without --ema); use the raw "
                            "weights")
    used = "ema" if has_ema and which != "raw" else "raw"
    return (ck["ema"]["model"] if used == "ema" else ck["model"]), used


def run_weights(run_dir: str | Path, which: str = "auto", spec: Any = None
                ) -> tuple[Any, Any, str]:
    """(NetSpec, state dict, description) of a run's trained network: EMA weights if the run
    kept them (``which``: auto, ema, raw). A given ``spec`` must be the run's network (class
    count, input channels, resolution and name aside); the run's own spec is returned."""
    ck = load_checkpoint(run_dir)
    state, used = checkpoint_weights(ck, which, repr(str(run_dir)))
    epochs = len(ck.get("history") or [])
    desc = f"trained weights ({used}) from {run_dir}" + (f", epoch {epochs}" if epochs else "")
    run_spec = NetSpec.from_dict(ck["spec"], source=f"checkpoint in {run_dir}")
    if spec is not None:
        given = spec.replace(num_classes=run_spec.num_classes, in_channels=run_spec.in_channels,
                             resolution=run_spec.resolution, name=run_spec.name)
        if given.to_dict() != run_spec.to_dict():
            raise NetscaleError(f"{spec.name} is not the network trained in {run_dir} "
                                f"({run_spec.name}); omit MODEL_OR_SPEC to export the run's "
                                "own network")
    return run_spec, state, desc


def spec_identity(d: Mapping[str, Any]) -> dict[str, Any]:
    """A spec's dict without what does not change the network (name, meta)."""
    out = dict(d)
    out.pop("meta", None)
    out.pop("name", None)
    return out


def describe_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    """The first keys where ``a`` (the checkpoint's) and ``b`` (this call's) differ."""
    keys = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    parts = []
    for k in keys[:3]:
        va, vb = jsonio.dumps(a.get(k)), jsonio.dumps(b.get(k))
        if len(va) > 40 or len(vb) > 40:
            parts.append(f"{k} differ")
        else:
            parts.append(f"{k}: {va} in the checkpoint vs {vb} now")
    return "; ".join(parts) + ("; ..." if len(keys) > 3 else "")


def check_checkpoint_spec(ckpt_spec: Mapping[str, Any], spec: ModelSpec, where: str) -> None:
    """A clear error when a checkpoint was written for another network."""
    a, b = spec_identity(ckpt_spec), spec_identity(spec.to_dict())
    if a != b:
        raise NetscaleError(
            f"checkpoint {where} was written for a different network "
            f"({ckpt_spec.get('name')!r}; {describe_diff(a, b)}); use a new output directory "
            "or the matching spec")


def check_same_config(old: Mapping[str, Any], new: Mapping[str, Any], what: str, where: Path,
                      drop: tuple[str, ...]) -> None:
    """A clear error when a run is resumed with another ``what`` (recipe, data config)."""
    a = {k: v for k, v in old.items() if k not in drop}
    b = {k: v for k, v in new.items() if k not in drop}
    if a != b:
        raise NetscaleError(
            f"checkpoint {str(where)!r} was trained with a different {what} "
            f"({describe_diff(a, b)}); resume with the same settings, or use a new output "
            "directory")


def describe_epochs(path: Path) -> str:
    """`` (epoch E of N)`` of the checkpoint at ``path``, or empty if it cannot be read."""
    try:
        ck = load_checkpoint(path)
        return f" (epoch {ck['epoch']} of {ck['recipe'].get('epochs', '?')})"
    except NetscaleError:
        return ""
