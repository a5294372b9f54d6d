"""Checkpoints: written atomically (temp file + fsync + rename), read with
``torch.load(weights_only=True)``. A checkpoint holds only tensors and plain data: the spec,
recipe, data config and history as JSON text, RNG states as tensors.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from netscale.errors import NetscaleError
from netscale.util.io import atomic_write, sweep_temp_files

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT = "netscale-checkpoint"
FORMAT_VERSION = 1


def rng_state() -> dict[str, Any]:
    """torch (CPU, CUDA), numpy and Python RNG states, as tensors and ints."""
    py = random.getstate()
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": torch.tensor(py[1], dtype=torch.int64),
        "python_version": int(py[0]),
        "numpy": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
        "numpy_pos": int(np_state[2]),
        "numpy_has_gauss": int(np_state[3]),
        "numpy_gauss": float(np_state[4]),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
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
    """Writes ``payload`` (tensors, plain data) atomically; readers see old or new, whole."""
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    for key in ("spec", "recipe", "data", "history", "extra"):
        if key in data and not isinstance(data[key], str):
            data[key] = json.dumps(data[key])
    return atomic_write(path, lambda f: torch.save(data, f))


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
    try:
        data = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        msg = " ".join(str(exc).split())[:160]
        raise NetscaleError(f"cannot read checkpoint {str(p)!r}: not a netscale checkpoint or "
                            f"corrupt ({type(exc).__name__}: {msg})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise NetscaleError(f"{str(p)!r} is not a netscale checkpoint (no '{FORMAT}' marker)")
    if int(data.get("format_version", 0)) > FORMAT_VERSION:
        raise NetscaleError(f"checkpoint {str(p)!r} was written by a newer netscale "
                            f"(format {data['format_version']}); upgrade netscale")
    for key in ("spec", "recipe", "data", "history", "extra"):
        if isinstance(data.get(key), str):
            data[key] = json.loads(data[key])
    data["path"] = str(p)
    return data
