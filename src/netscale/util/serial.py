"""The one serialization helper for netscale's dataclasses: ``to_dict`` / ``from_dict``.

``to_dict(obj)`` turns a dataclass into plain JSON/YAML data, recursively: nested
dataclasses become dicts (through their own ``to_dict`` when they have one), tuples and lists
become lists, mappings dicts, enums their value and paths strings (write the result with
:func:`netscale.util.jsonio.dumps`, which makes non-finite floats ``null``).

``from_dict(cls, data, where)`` builds ``cls`` back, driven by its fields' type hints: nested
dataclasses, ``tuple[X, ...]`` / ``tuple[X, Y]``, ``list[X]``, ``dict[K, V]``, ``X | None``,
enums and paths. With ``where`` (a config section such as ``"recipe"``) it is strict: an
unknown key or a value of the wrong type is a one-line :class:`NetscaleError` naming the field
(``recipe.epochs must be an integer, got 'x'``); with ``unknown="ignore"`` keys the dataclass
does not know are dropped (files written by other versions still load).
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import types
import typing
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any, Literal, TypeVar

from netscale.errors import NetscaleError
from netscale.util.safeload import check_int, short_repr

T = TypeVar("T")
R = TypeVar("R", bound="Record")


def to_dict(obj: Any, *, omit: tuple[str, ...] = ()) -> dict[str, Any]:
    """Dataclass ``obj`` -> a dict of plain data (fields in ``omit`` left out)."""
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError(f"to_dict needs a dataclass instance, got {type(obj).__name__}")
    return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)
            if f.name not in omit}


def plain(value: Any) -> Any:
    """``value`` as plain JSON/YAML data (see the module docstring)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        own = getattr(value, "to_dict", None)  # a record's own (which may add derived keys)
        return own() if callable(own) else to_dict(value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, PurePath):
        return str(value)
    return value


def from_dict(cls: type[T], data: Mapping[str, Any] | None, where: str | None = None, *,
              unknown: Literal["error", "ignore"] = "error") -> T:
    """Builds dataclass ``cls`` from ``data`` (None: all defaults); see the module docstring.

    Without ``where`` values are converted but not checked (the class's own validation, or
    the caller's, applies); missing fields take their defaults."""
    label = where or cls.__name__
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise NetscaleError(f"{label} must be a mapping of fields, got {type(data).__name__}")
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"from_dict needs a dataclass, got {cls!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            if unknown == "ignore":
                continue
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise NetscaleError(
                f"{label}: unknown field {key!r}{hint}; known fields: {', '.join(fields)}"
            )
        kwargs[key] = _coerce(value, hints[key], f"{label}.{key}", where is not None)
    return cls(**kwargs)


class Record:
    """A dataclass base with :func:`to_dict` and a lenient ``from_dict`` (keys the class does
    not know are dropped, so files written by other versions still load)."""

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls: type[R], d: Mapping[str, Any]) -> R:
        return from_dict(cls, d, unknown="ignore")


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """The resolved type hints of a dataclass (cached: from_dict runs per stored row)."""
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _coerce(value: Any, hint: Any, where: str, strict: bool) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any or hint is object:
        return value
    if origin in (typing.Union, types.UnionType):
        return _union(value, args, where, strict)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if isinstance(value, hint):
            return value
        own = getattr(hint, "from_dict", None)
        if not strict and callable(own):  # a record's own reader (tolerant of old files)
            return own(value)
        return from_dict(hint, value, where if strict else None)
    if origin is tuple or hint is tuple:
        return _sequence(value, args, where, strict, tuple)
    if origin is list or hint is list:
        return _sequence(value, args, where, strict, list)
    if origin in (dict, Mapping) or hint is dict:
        if not isinstance(value, Mapping):
            return _bad(value, f"{where} must be a mapping", strict)
        kh, vh = args if len(args) == 2 else (Any, Any)
        return {_coerce(k, kh, where, strict): _coerce(v, vh, f"{where}.{k}", strict)
                for k, v in value.items()}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return value if isinstance(value, hint) else hint(value)
    if isinstance(hint, type) and issubclass(hint, PurePath):
        return value if isinstance(value, PurePath) else Path(value)
    return _scalar(value, hint, where, strict)


def _union(value: Any, args: tuple[Any, ...], where: str, strict: bool) -> Any:
    if value is None and type(None) in args:
        return None
    errors = []
    kinds = [a for a in args if a is not type(None)]
    for a in kinds:
        try:
            return _coerce(value, a, where, True)
        except (NetscaleError, TypeError, ValueError) as exc:
            errors.append(str(exc))
    if not strict and kinds:
        return _coerce(value, kinds[0], where, False)

    raise NetscaleError(errors[0] if errors else f"{where}: bad value {short_repr(value)}")


def _sequence(value: Any, args: tuple[Any, ...], where: str, strict: bool,
              kind: type) -> Any:
    if not isinstance(value, (list, tuple)):
        return _bad(value, f"{where} must be a list", strict)
    if kind is tuple and args and (len(args) != 2 or args[1] is not Ellipsis):
        if len(args) != len(value):
            return _bad(value, f"{where} must be a list of {len(args)} items", strict)
        return tuple(_coerce(v, a, where, strict) for v, a in zip(value, args))
    inner = args[0] if args else Any
    return kind(_coerce(v, inner, where, strict) for v in value)


def _scalar(value: Any, hint: Any, where: str, strict: bool) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
        return _bad(value, f"{where} must be true or false", strict)
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return _bad(value, f"{where} must be an integer", strict)
    if hint is float:
        if isinstance(value, int) and not isinstance(value, bool):
            return float(check_int(value, where))
        if isinstance(value, float):
            return value
        return _bad(value, f"{where} must be a number", strict)
    if hint is str:
        if isinstance(value, str):
            return value
        return _bad(value, f"{where} must be a string", strict)
    return value


def _bad(value: Any, message: str, strict: bool) -> Any:
    if strict:
        raise NetscaleError(f"{message}, got {short_repr(value)}")
    return value
