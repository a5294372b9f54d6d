"""The environment a measurement was taken in (recorded with every result)."""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from netscale import __version__
from netscale.util import serial


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def logical_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def load_average() -> float | None:
    """1-minute load average (None where unsupported): a hint about a busy machine."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # pragma: no cover
        return None


@dataclass(frozen=True)
class BenchEnv:
    """Software, hardware and numeric settings of a measurement."""

    torch_version: str
    python_version: str
    netscale_version: str
    platform: str
    device: str  # "cpu" | "cuda" | "cuda:1"
    device_name: str  # GPU name, or the CPU model for device cpu
    cpu_model: str
    logical_cpus: int
    threads: int  # torch intra-op threads used
    dtype: str  # parameter dtype (float32); see amp_dtype for autocast
    amp: bool
    amp_dtype: str | None  # bfloat16 (CPU) / float16 (CUDA) when amp
    channels_last: bool
    compile: bool
    cuda_version: str | None
    cudnn_version: int | None
    load_avg_1m: float | None

    def to_dict(self) -> dict[str, Any]:
        return serial.to_dict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BenchEnv:
        kwargs: dict[str, Any] = {k: d.get(k) for k in cls.__dataclass_fields__}
        return cls(**kwargs)

    def summary(self) -> str:
        extras = [f"{self.threads} threads", self.dtype]
        if self.amp:
            extras.append(f"amp {self.amp_dtype}")
        if self.channels_last:
            extras.append("channels_last")
        if self.compile:
            extras.append("torch.compile")
        name = self.device_name if self.device.startswith("cuda") else self.cpu_model
        return (f"{self.device} ({name}), torch {self.torch_version}, "
                + ", ".join(extras))


def collect_env(device: str, *, threads: int, amp: bool, amp_dtype: str | None,
                channels_last: bool, compile: bool, dtype: str = "float32") -> BenchEnv:
    import torch

    cuda = device.startswith("cuda")
    cpu = cpu_model()
    return BenchEnv(
        torch_version=torch.__version__,
        python_version=platform.python_version(),
        netscale_version=__version__,
        platform=platform.platform(terse=True),
        device=device,
        device_name=torch.cuda.get_device_name(torch.device(device)) if cuda else cpu,
        cpu_model=cpu,
        logical_cpus=logical_cpus(),
        threads=threads,
        dtype=dtype,
        amp=amp,
        amp_dtype=amp_dtype if amp else None,
        channels_last=channels_last,
        compile=compile,
        cuda_version=torch.version.cuda if cuda else None,
        cudnn_version=(torch.backends.cudnn.version(  # type: ignore[no-untyped-call]  # untyped
                       ) if cuda else None),
        load_avg_1m=load_average(),
    )
