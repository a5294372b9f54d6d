"""Parsing what users hand in (YAML and JSON text) with bounds, and short value reprs for
messages.

:func:`load_yaml` and :func:`load_json` are the one way netscale parses configs, specs,
``--set`` / ``--kwarg`` values and results files:

* YAML is parsed safely (no Python tags) and aliases may not expand into more than
  :data:`MAX_NODES` values (a ~700-byte "billion laughs" file is refused, not expanded), nor
  refer to themselves; a mapping with a duplicated key is refused (YAML would keep the
  last one silently);
* integers beyond the float range (about 1.8e308) are refused before anything converts
  them to floats;
* nesting hundreds of levels deep is refused (no ``RecursionError``);

each with one :class:`NetscaleError` line naming the source. :func:`short_repr` bounds the
length of any value shown in a message (a huge list or integer becomes a short summary).
"""

from __future__ import annotations

import json
import reprlib
import sys
from typing import Any

from netscale.errors import NetscaleError

#: Most values (scalars + containers) a parsed document may expand to through aliases.
MAX_NODES = 200_000
#: The largest magnitude an integer may have: it must convert to a finite float.
MAX_INT = int(sys.float_info.max)
_MAX_DIGITS = len(str(MAX_INT)) + 1


class _Refused(ValueError):
    """A parse refused by a bound (carries the one-line reason)."""


def check_int(value: int, where: str) -> int:
    """``value`` if it converts to a finite float, else a one-line error."""
    if abs(value) > MAX_INT:
        raise NetscaleError(f"{where}: the integer {short_repr(value)} is beyond the float "
                            "range (about 1.8e308)")
    return value


def _int_text(text: str) -> None:
    digits = text.lstrip("+-").replace("_", "")
    if len(digits) > _MAX_DIGITS and not digits.startswith(("0x", "0o", "0b")):
        raise _Refused(f"the integer {text[:20]}... ({len(digits):,} digits) is beyond the "
                       "float range (about 1.8e308)")


def _yaml_loader() -> type:
    import yaml

    class Loader(yaml.SafeLoader):
        def construct_yaml_int(self, node: Any) -> int:
            _int_text(str(node.value))
            value = int(super().construct_yaml_int(node))
            if abs(value) > MAX_INT:
                raise _Refused(f"the integer {short_repr(value)} (line "
                               f"{node.start_mark.line + 1}) is beyond the float range "
                               "(about 1.8e308)")
            return value

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(
                        key_node, yaml.ScalarNode):
                    continue
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise _Refused(f"duplicate key {short_repr(key_node.value)} (lines "
                                   f"{seen[key]} and {key_node.start_mark.line + 1}); keep "
                                   "one")
                seen[key] = key_node.start_mark.line + 1
            return super().construct_mapping(node, deep=deep)

    Loader.add_constructor("tag:yaml.org,2002:int", Loader.construct_yaml_int)
    return Loader


_LOADER: type | None = None


def load_yaml(text: str, source: str, *, invalid_as_text: bool = False) -> Any:
    """``text`` parsed as YAML (see the module docstring); errors name ``source``.
    ``invalid_as_text``: text that is not valid YAML is returned as is (a plain string
    value); the bounds still apply."""
    import yaml

    global _LOADER
    if _LOADER is None:
        _LOADER = _yaml_loader()
    try:
        data = yaml.load(text, Loader=_LOADER)  # a SafeLoader subclass
    except _Refused as exc:
        raise NetscaleError(f"{source}: {exc}") from None
    except RecursionError:
        raise NetscaleError(f"{source} is nested too deeply") from None
    except yaml.YAMLError as exc:
        if invalid_as_text:
            return text
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = short_text(str(getattr(exc, "problem", None) or "").strip(), 80)
        raise NetscaleError(f"{source} is not valid YAML{where}"
                            f"{': ' + problem if problem else ''}") from None
    check_size(data, source)
    return data


def load_json(text: str, source: str) -> Any:
    """``text`` parsed as strict JSON with the bounds of :func:`load_yaml` (except that JSON
    has no aliases; duplicate keys keep JSON's usual last-wins)."""
    def parse_int(s: str) -> int:
        _int_text(s)
        return int(s)

    try:
        return json.loads(text, parse_int=parse_int, parse_constant=_no_constant)
    except _Refused as exc:
        raise NetscaleError(f"{source}: {exc}") from None
    except RecursionError:
        raise NetscaleError(f"{source} is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise NetscaleError(f"{source} is not valid JSON ({exc.msg}, line {exc.lineno})"
                            ) from None
    except ValueError as exc:
        raise NetscaleError(f"{source} is not valid JSON ({short_text(str(exc), 80)})"
                            ) from None


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not JSON; write null or a finite number")


def check_size(data: Any, source: str, limit: int = MAX_NODES) -> int:
    """The number of values ``data`` expands to (shared sub-structures counted at each
    use, as a printout or a JSON dump would); refuses more than ``limit`` and a structure
    that contains itself. Linear in the distinct containers."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(obj: Any, depth: int) -> int:
        if not isinstance(obj, (list, tuple, dict)):
            return 1
        key = id(obj)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise NetscaleError(f"{source}: a value refers to itself (a recursive YAML "
                                "alias); write it out")
        if depth > 500:
            raise NetscaleError(f"{source} is nested too deeply")
        active.add(key)
        items = [*obj.keys(), *obj.values()] if isinstance(obj, dict) else obj
        total = 1
        for item in items:
            total += size(item, depth + 1)
            if total > limit:
                raise NetscaleError(f"{source}: its aliases expand to more than {limit:,} "
                                    "values (a YAML alias bomb?); write the values out")
        active.discard(key)
        sizes[key] = total
        return total

    return size(data, 0)


_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 6
_REPR.maxstring = 60
_REPR.maxother = 60
_REPR.maxlong = 40


def short_repr(value: Any, limit: int = 100) -> str:
    """``repr(value)`` bounded to about ``limit`` characters, computed without building the
    full repr (a huge list, a deep structure or a 10,000-digit integer stays cheap)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        text = f"<integer of {value.bit_length():,} bits>"
    else:
        try:
            text = _REPR.repr(value)
        except Exception:  # a value whose repr fails: its type is enough
            text = f"<{type(value).__name__}>"
    return short_text(text, limit)


def short_text(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters (with an ellipsis when cut)."""
    return text if len(text) <= limit else text[:limit - 3] + "..."
