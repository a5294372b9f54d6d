"""Python call expressions that build zoo models: what netscale prints is what it builds.

Every zoo model netscale counts is built by evaluating such an expression (in the namespace of
:func:`netscale.zoo.names.namespace`: ``torch``, ``functools``, ``timm``, ``torchvision``), so
the printed call rebuilds exactly the counted network.
"""

from __future__ import annotations

from typing import Any


class Code(str):
    """Python source emitted verbatim (not quoted) by :func:`call`."""


def lit(value: Any) -> str:
    """``value`` as Python source: literals, lists/tuples/dicts of them, or :class:`Code`."""
    if isinstance(value, Code):
        return str(value)
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return repr(value)
    if isinstance(value, float):
        return repr(float(f"{value:.6g}")) if value == value else "float('nan')"
    if isinstance(value, list):
        return "[" + ", ".join(lit(v) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(lit(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{lit(k)}: {lit(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as Python source")


def call(func: str, *args: Any, **kwargs: Any) -> Code:
    """``func(arg, ..., key=value, ...)`` as Python source."""
    parts = [lit(a) for a in args] + [f"{k}={lit(v)}" for k, v in kwargs.items()]
    return Code(f"{func}({', '.join(parts)})")
