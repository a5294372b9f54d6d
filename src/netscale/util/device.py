"""The one device resolver: ``--device`` text -> a validated device name.

``cpu``, ``cuda``, ``cuda:N`` and ``mps`` are accepted (a CUDA or MPS request on a machine
without it is a one-line error naming the fix); ``auto`` or None means CUDA when available,
else the CPU. torch is imported only when a device is checked.
"""

from __future__ import annotations

from collections.abc import Sequence

from netscale.errors import NetscaleError

KINDS = ("cpu", "cuda", "mps")


def check_device(device: str | None, flag: str = "--device",
                 kinds: Sequence[str] = KINDS) -> str | None:
    """Validates ``device`` (lower-cased, stripped); ``auto`` and None pass through unchanged
    (they are resolved where the work runs, see :func:`resolve_device`)."""
    if device is None or device == "auto":
        return device
    return _parse(device, flag, kinds)


def resolve_device(device: str | None, flag: str = "--device",
                   kinds: Sequence[str] = KINDS) -> str:
    """``auto``/None -> ``cuda`` when available else ``cpu``; otherwise as :func:`check_device`."""
    if device is None or device == "auto":
        import torch

        return "cuda" if "cuda" in kinds and torch.cuda.is_available() else "cpu"
    return _parse(device, flag, kinds)


def _parse(device: str, flag: str, kinds: Sequence[str]) -> str:
    import torch

    text = str(device).strip().lower()
    allowed = ", ".join(k + (", cuda:N" if k == "cuda" else "") for k in kinds) + " or auto"
    try:
        dev = torch.device(text)
    except (RuntimeError, TypeError, ValueError):
        raise NetscaleError(f"unknown device {device!r} ({flag}); use {allowed}") from None
    if dev.type not in kinds:
        raise NetscaleError(f"unknown device {device!r} ({flag}); use {allowed}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise NetscaleError(f"{flag} {device} requested but CUDA is not available on this "
                                f"machine (torch {torch.__version__}); use --device cpu or "
                                "install a CUDA build of torch")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise NetscaleError(f"{flag} {device}: this machine has "
                                f"{torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps" and not (hasattr(torch.backends, "mps")
                                    and torch.backends.mps.is_available()):
        raise NetscaleError(f"{flag} mps requested but MPS is not available here; use "
                            "--device cpu")
    return text
