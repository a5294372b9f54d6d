"""Result rows of `netscale bench`: small typed dataclasses, serialisable to JSON and CSV.

Units: times in milliseconds per batch, throughput in images per second, memory in MiB
(2**20 bytes), flops in multiply-adds (1 MAC = 1 flop, per image, forward pass, at the benched
resolution), achieved GFLOP/s = 1e9 multiply-adds per second (see ``flops_per_batch``).
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netscale.bench.env import BenchEnv
from netscale.bench.setting import ExecSetting
from netscale.bench.timing import Stats
from netscale.errors import NetscaleError
from netscale.util import jsonio, serial
from netscale.util.io import MAX_RESULTS_BYTES, atomic_write_text, read_input_text
from netscale.util.safeload import load_json
from netscale.util.text import csv_dict_writer

SCHEMA = "netscale.bench/1"
MODES = ("infer", "train")
PHASES = {"infer": ("forward",), "train": ("forward", "backward", "step")}
TRAIN_FLOPS_MULTIPLIER = 3  # forward + backward (grads w.r.t. inputs and weights) ≈ 3x forward

CSV_FIELDS = [
    "model", "base", "strategy", "factor", "mode", "status", "device", "batch_size",
    "requested_batch_size", "resolution", "flops", "params", "acts", "time_ms", "iqr_ms",
    "q1_ms", "q3_ms", "min_ms", "rel_iqr", "samples", "iters_per_sample", "stop_reason", "noisy",
    "forward_ms", "forward_iqr_ms", "backward_ms", "backward_iqr_ms", "step_ms", "step_iqr_ms",
    "images_per_s", "flops_per_batch", "gflops_per_s", "peak_mem_mib", "mem_method",
    "cpu_others", "cpu_steal", "contended", "time_quality", "attempts", "note",
    "memory_format", "precision", "setting_requested", "setting_reason",
    "env_torch_version", "env_device_name", "env_cpu_model", "env_threads", "env_dtype",
    "env_amp", "env_amp_dtype", "env_channels_last", "env_compile", "env_load_avg_1m",
]


@dataclass(frozen=True)
class BenchResult:
    """One measurement: one model, one mode, one batch size, one device."""

    model: str
    mode: str  # "infer" | "train"
    device: str
    batch_size: int  # the batch size measured (smaller than requested after an OOM retry)
    requested_batch_size: int
    resolution: int
    flops: int  # multiply-adds per image (forward)
    params: int
    acts: int
    status: str = "ok"  # "ok" | "oom"
    time_ms: float | None = None  # median per batch (sum of phases)
    iqr_ms: float | None = None
    q1_ms: float | None = None  # quartiles of the per-batch time
    q3_ms: float | None = None
    min_ms: float | None = None  # fastest sample: less sensitive to interference than the median
    rel_iqr: float | None = None
    samples: int = 0
    iters_per_sample: int = 0
    stop_reason: str = ""
    noisy: bool = False
    phases: dict[str, Stats] = field(default_factory=dict)
    images_per_s: float | None = None
    flops_per_batch: int = 0  # multiply-adds per measured batch (train: 3x forward)
    gflops_per_s: float | None = None
    peak_mem_mib: float | None = None
    mem_method: str = ""
    cpu_others: float | None = None  # CPU share used by other processes during the run
    cpu_steal: float | None = None  # CPU share stolen by the hypervisor during the run
    contended: bool = False  # cpu_others + cpu_steal above the threshold (default 10%)
    attempts: int = 1  # measurements taken (> 1 with retries on noisy/contended results)
    note: str = ""
    base: str | None = None  # runtime analysis: base model, strategy and flops factor
    strategy: str | None = None
    factor: float | None = None
    env: BenchEnv | None = None
    # the execution setting measured in (memory format x precision), with what was asked and
    # why it was chosen; files written before settings existed read as contiguous+fp32
    setting: ExecSetting = field(default_factory=ExecSetting)
    schema: str = SCHEMA

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def time_quality(self) -> str | None:
        """``ok``, ``noisy`` or ``contended`` (None when nothing was timed, e.g. OOM): the
        flag that survived the automatic re-measurements (contended wins over noisy)."""
        return time_quality_of(self.to_flags()) if self.ok else None

    def to_flags(self) -> dict[str, Any]:
        return {"status": self.status, "noisy": self.noisy, "contended": self.contended}

    def to_dict(self) -> dict[str, Any]:
        d = serial.to_dict(self)
        d["time_quality"] = self.time_quality
        d["units"] = {"time": "ms per batch", "throughput": "images/s", "memory": "MiB",
                      "flops": "multiply-adds per image (1 MAC = 1 flop)",
                      "gflops_per_s": "1e9 multiply-adds per second",
                      "cpu_others": "fraction of wall time x logical CPUs"}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BenchResult:
        rest = {k: v for k, v in d.items() if k != "setting"}
        out = serial.from_dict(cls, {**rest, "phases": d.get("phases") or {},
                                     "env": d.get("env") or None}, unknown="ignore")
        return dataclasses.replace(out, setting=setting_of(d))

    def csv_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for name in CSV_FIELDS:
            if name.startswith("env_"):
                row[name] = getattr(self.env, name[4:], "") if self.env else ""
            elif name.endswith("_iqr_ms") and name != "iqr_ms":
                ph = self.phases.get(name[: -len("_iqr_ms")])
                row[name] = ph.iqr_ms if ph else ""
            elif name.endswith("_ms") and name[:-3] in ("forward", "backward", "step"):
                ph = self.phases.get(name[:-3])
                row[name] = ph.median_ms if ph else ""
            elif name in ("memory_format", "precision"):
                row[name] = getattr(self.setting, name)
            elif name.startswith("setting_"):
                row[name] = getattr(self.setting, name[len("setting_"):])
            else:
                value = getattr(self, name)
                row[name] = "" if value is None else value
        return row


TIME_QUALITIES = ("ok", "noisy", "contended")


def setting_of(row: Mapping[str, Any]) -> ExecSetting:
    """The execution setting of a result row (a :meth:`BenchResult.to_dict`, a CSV row, or a
    row written before settings were recorded: then its env's channels_last/amp flags, else
    contiguous+fp32)."""
    s = row.get("setting")
    if isinstance(s, Mapping):
        return ExecSetting.from_dict(s)
    if row.get("memory_format") or row.get("precision"):  # a CSV row
        fmt = str(row.get("memory_format") or "contiguous")
        prec = str(row.get("precision") or "fp32")
        return ExecSetting(fmt, prec, requested=str(row.get("setting_requested")
                                                    or f"{fmt}+{prec}"),
                           reason=str(row.get("setting_reason") or "requested"))
    raw_env = row.get("env")
    env: Mapping[str, Any] = raw_env if isinstance(raw_env, Mapping) else {}
    fmt = "channels_last" if env.get("channels_last") else "contiguous"
    amp = {"bfloat16": "bf16", "float16": "fp16"}.get(str(env.get("amp_dtype")), "bf16")
    prec = amp if env.get("amp") else "fp32"
    return ExecSetting(fmt, prec, requested=f"{fmt}+{prec}",
                       reason="recorded before execution settings were")


def setting_label_of(row: Mapping[str, Any]) -> str:
    """``memory_format+precision`` of a result row (see :func:`setting_of`)."""
    return setting_of(row).label


def time_quality_of(row: Mapping[str, Any]) -> str | None:
    """The timing quality of a result row (a :meth:`BenchResult.to_dict`, also one written
    before the field existed): ``contended`` (other processes used the CPUs), ``noisy``
    (spread above the threshold), ``ok``; None for a row without a timing (OOM)."""
    if row.get("status", "ok") != "ok":
        return None
    q = row.get("time_quality")
    if q in TIME_QUALITIES:
        return str(q)
    if row.get("contended"):
        return "contended"
    return "noisy" if row.get("noisy") else "ok"


def to_json(results: Sequence[BenchResult], extra: Mapping[str, Any] | None = None) -> str:
    data: dict[str, Any] = {"schema": SCHEMA, "results": [r.to_dict() for r in results]}
    if extra:
        data.update(extra)
    return jsonio.dumps(data, indent=2) + "\n"


def to_csv(results: Iterable[BenchResult]) -> str:
    buf = io.StringIO()
    w = csv_dict_writer(buf, CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in results:
        w.writerow(r.csv_row())
    return buf.getvalue()


def write_results(path: str | Path, results: Sequence[BenchResult],
                  extra: Mapping[str, Any] | None = None) -> Path:
    """Writes rows as .json (with ``extra`` top-level keys) or .csv, chosen by the suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return atomic_write_text(path, to_csv(results))
    if suffix == ".json":
        return atomic_write_text(path, to_json(results, extra))
    raise NetscaleError(f"cannot write results to {str(path)!r}: use a .json or .csv file name")


def load_results(path: str | Path) -> list[BenchResult]:
    """Reads the JSON written by :func:`write_results` (or ``netscale bench --json``)."""

    path = Path(path)
    data = load_json(read_input_text(path, "bench results", MAX_RESULTS_BYTES),
                     f"bench results {str(path)!r}")
    rows = data.get("results") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise NetscaleError(f"{str(path)!r} has no 'results' list; is it netscale bench JSON?")
    return [BenchResult.from_dict(r) for r in rows]
