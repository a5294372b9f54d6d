"""Registry of named models (case-insensitive), in the spirit of timm's ``create_model``.

Family modules call :func:`register` at import time; :func:`get_spec` looks a name up and an
unknown name raises a :class:`NetscaleError` listing the closest known names.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

from netscale.errors import NetscaleError
from netscale.specs.spec import NetSpec


@dataclass(frozen=True)
class RegistryEntry:
    name: str
    family: str
    factory: Callable[[], NetSpec]


_ENTRIES: dict[str, RegistryEntry] = {}  # canonical name -> entry
_KEYS: dict[str, str] = {}  # normalised name or alias -> canonical name
_CACHE: dict[str, NetSpec] = {}


def _key(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(" ", "")


def register(name: str, family: str, factory: Callable[[], NetSpec],
             aliases: tuple[str, ...] = ()) -> None:
    """Registers a named model; ``factory()`` returns its spec."""
    for key in (name, *aliases):
        k = _key(key)
        if k in _KEYS and _KEYS[k] != name:
            raise ValueError(f"model name {key!r} is already registered for {_KEYS[k]!r}")
        _KEYS[k] = name
    _ENTRIES[name] = RegistryEntry(name, family, factory)


FAMILY_ORDER = ("regnet", "resnet", "effnet", "cifar")


def list_models(family: str | None = None) -> list[str]:
    """Canonical names of the registered models, grouped by family (FAMILY_ORDER)."""
    entries = [e for e in _ENTRIES.values() if family is None or e.family == family.lower()]
    rank = {f: i for i, f in enumerate(FAMILY_ORDER)}
    entries.sort(key=lambda e: rank.get(e.family, len(rank)))  # stable: keeps registry order
    return [e.name for e in entries]


def model_family(name: str) -> str:
    return _ENTRIES[canonical_name(name)].family


def canonical_name(name: str) -> str:
    """The registered spelling of ``name`` (matched case-insensitively, '_' = '-')."""
    k = _key(name)
    if k in _KEYS:
        return _KEYS[k]
    close = difflib.get_close_matches(k, list(_KEYS), n=4, cutoff=0.5)
    names = list(dict.fromkeys(_KEYS[c] for c in close))
    hint = f"; closest: {', '.join(names)}" if names else ""
    raise NetscaleError(
        f"unknown model {name!r}{hint} (run 'netscale models' for the full list, "
        "or give a spec file)"
    )


def is_registered(name: str) -> bool:
    return _key(name) in _KEYS


def get_spec(name: str) -> NetSpec:
    """The spec of a named model; raises NetscaleError for unknown names."""
    canon = canonical_name(name)
    spec = _CACHE.get(canon)
    if spec is None:
        spec = _ENTRIES[canon].factory()
        _CACHE[canon] = spec
    return spec
