"""Options objects: a frozen dataclass of settings plus keyword overrides of its fields.

Functions with many settings (``recommend``, ``fit_law``, ``calibration_study``, ...) take
one options object; their keyword calls (``fit_law(x, y, n_boot=100)``) keep working as
overrides of its fields, checked by name like a function call's keywords.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


def build_options(cls: type[T], options: T | None, overrides: Mapping[str, Any],
                  default: T | None = None) -> T:
    """``options`` (else ``default``, else ``cls()``) with ``overrides`` applied; an unknown
    keyword is a TypeError naming the valid ones."""
    start = options if options is not None else (default if default is not None else cls())
    if not overrides:
        return start
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise TypeError(f"unknown {cls.__name__} field(s): {', '.join(unknown)} (fields: "
                        f"{', '.join(names)})")
    return dataclasses.replace(start, **overrides)
