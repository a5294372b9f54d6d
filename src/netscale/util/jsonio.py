"""Strict JSON: every JSON file and line netscale writes goes through :func:`dumps`.

Python's ``json`` writes ``NaN`` and ``Infinity`` by default, which is not JSON (other tools
refuse the file). Here non-finite floats become ``null`` and ``allow_nan=False`` guards the
rest; a test checks that nothing in ``src/`` calls ``json.dumps`` directly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any


def finite(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, ±inf) replaced by None, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` that always produces strict JSON (non-finite floats as null)."""
    kwargs.pop("allow_nan", None)
    try:  # the common case, all floats finite: no recursive copy (fast on 10,000 trials)
        return json.dumps(obj, allow_nan=False, **kwargs)
    except (ValueError, TypeError):
        pass
    return json.dumps(finite(obj), allow_nan=False, **kwargs)
