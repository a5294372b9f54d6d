"""Turn what a user typed (a model name or a spec file) into a validated spec.

Spec files may be:

* a netscale spec (YAML or JSON; what ``NetSpec.save`` writes);
* a *derived* spec: ``base: <model name or file>`` plus top-level overrides, e.g.
  ``{base: RegNetY-400MF, resolution: 64, num_classes: 10, in_channels: 1}``;
* a pycls-style config (``MODEL.TYPE`` regnet/anynet/effnet), see :mod:`netscale.specs.pycls`.

Anything above may be followed by overrides, ``BASE:key=value[,key=value...]`` (e.g.
``RegNetY-400MF:resolution=160``), for every key a spec has (:data:`OVERRIDE_KEYS`): the
top-level fields, ``stem_type``/``stem_width``, and the stage fields, given once for all
stages (``se_ratio=0.25``) or per stage as a list (``depths=[1,2,4,2]``; singular or plural
names). Values are parsed as YAML scalars or lists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from netscale.errors import NetscaleError
from netscale.specs.pycls import spec_from_pycls
from netscale.specs.registry import get_spec, is_registered
from netscale.specs.spec import NetSpec
from netscale.util.io import read_input_text
from netscale.util.safeload import load_json, load_yaml, short_text

_OVERRIDABLE = ("name", "resolution", "num_classes", "in_channels", "activation", "dropout",
                "head_width")
SPEC_SUFFIXES = (".yaml", ".yml", ".json")


def looks_like_path(text: str) -> bool:
    return text.lower().endswith(SPEC_SUFFIXES) or "/" in text or Path(text).is_file()


def load_spec_data(path: str | Path, what: str = "spec file") -> Any:
    """Parses a YAML/JSON file into Python data with one-line errors: regular files only,
    at most :data:`~netscale.util.io.MAX_CONFIG_BYTES`, parsed with the bounds of
    :mod:`netscale.util.safeload` (no alias bombs, duplicate keys or out-of-range integers).
    """

    path = Path(path)
    if path.is_dir():
        raise NetscaleError(f"{what} {str(path)!r} is a directory; give a .yaml or .json file")
    text = read_input_text(path, what)
    if path.suffix.lower() == ".json":
        return load_json(text, f"{what} {str(path)!r}")
    return load_yaml(text, f"{what} {str(path)!r}")


def spec_from_data(data: Any, *, source: str, _depth: int = 0) -> NetSpec:
    """A spec from parsed file data of any supported format."""
    if not isinstance(data, Mapping):
        raise NetscaleError(
            f"{source}: expected a mapping of spec fields, got {type(data).__name__}"
        )
    if "MODEL" in data:
        return spec_from_pycls(data, source=source, name=Path(source).stem)
    if "base" in data:
        if _depth > 8:
            raise NetscaleError(f"{source}: 'base' chain is too deep (a cycle?)")
        overrides = {k: v for k, v in data.items() if k != "base"}
        bad = sorted(map(str, set(overrides) - set(_OVERRIDABLE)))
        if bad:
            raise NetscaleError(
                f"{source}: cannot override {', '.join(bad)} of a base model; "
                f"overridable fields: {', '.join(_OVERRIDABLE)}"
            )
        base = data["base"]
        if not isinstance(base, str):
            raise NetscaleError(f"{source}: 'base' must be a model name or a spec file path")
        base_spec = resolve_spec(base, _depth=_depth + 1)
        if "name" not in overrides:
            from_file = source.endswith(SPEC_SUFFIXES)
            overrides["name"] = Path(source).stem if from_file else base_spec.name
        try:
            return base_spec.replace(**overrides).validate()
        except NetscaleError as exc:
            raise NetscaleError(f"{source}: {exc}") from None
    return NetSpec.from_dict(data, source=source)


_TOP_KEYS = ("name", "resolution", "num_classes", "in_channels", "activation", "dropout",
             "head_width", "family")
_STEM_KEYS = {"stem_type": "type", "stem_width": "width", "stem.type": "type",
              "stem.width": "width"}
_STAGE_KEYS = {"block": "block", "blocks": "block", "depth": "depth", "depths": "depth",
               "width": "width", "widths": "width", "stride": "stride", "strides": "stride",
               "bottleneck": "bottleneck", "bottlenecks": "bottleneck",
               "group_width": "group_width", "group_widths": "group_width",
               "kernel": "kernel", "kernels": "kernel", "expansion": "expansion",
               "expansions": "expansion", "se_ratio": "se_ratio", "se_ratios": "se_ratio"}
OVERRIDE_KEYS = (*_TOP_KEYS, "stem_type", "stem_width", *_STAGE_KEYS)
_OVERRIDE_START = re.compile(r"^\s*[A-Za-z_][\w.]*\s*=")


def split_overrides(text: str) -> tuple[str, str] | None:
    """``"BASE:key=value,..."`` -> ``("BASE", "key=value,...")``; None without overrides."""
    for i, ch in enumerate(text):
        if ch == ":" and i > 0 and _OVERRIDE_START.match(text[i + 1:]):
            return text[:i], text[i + 1:]
    return None


def _parse_overrides(text: str, source: str) -> list[tuple[str, Any]]:
    parts: list[str] = []
    depth, cur = 0, ""
    for ch in text:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch in ",:" and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    out: list[tuple[str, Any]] = []
    for part in parts:
        key, sep, raw = part.partition("=")
        key = key.strip()
        if not sep or not key or not raw.strip():
            raise NetscaleError(
                f"{source}: override {part.strip()!r} must be key=value (e.g. resolution=160)"
            )
        if key not in OVERRIDE_KEYS:
            raise NetscaleError(
                f"{source}: unknown key {key!r}; keys: {', '.join(OVERRIDE_KEYS)}"
            )
        try:
            value = load_yaml(raw.strip(), f"the value of {key}")
        except NetscaleError as exc:
            raise NetscaleError(f"{short_text(source, 100)}: {exc}") from None
        out.append((key, value))
    return out


def apply_spec_overrides(spec: NetSpec, overrides: list[tuple[str, Any]], source: str) -> NetSpec:
    """``spec`` with ``key=value`` overrides applied (see the module docstring)."""
    import dataclasses

    top: dict[str, Any] = {}
    stem = spec.stem
    stages = list(spec.stages)
    for key, value in overrides:
        if key in _TOP_KEYS:
            top[key] = value
        elif key in _STEM_KEYS:
            stem = dataclasses.replace(stem, **{_STEM_KEYS[key]: value})
        else:
            field_name = _STAGE_KEYS[key]
            if isinstance(value, (list, tuple)):
                if len(value) != len(stages):
                    raise NetscaleError(
                        f"{source}: {key} has {len(value)} values for {len(stages)} stages"
                    )
                values = list(value)
            else:
                values = [value] * len(stages)
            stages = [dataclasses.replace(st, **{field_name: v})
                      for st, v in zip(stages, values)]
    try:
        return spec.replace(stem=stem, stages=tuple(stages), **top).validate()
    except (NetscaleError, TypeError) as exc:
        raise NetscaleError(f"{source}: {exc}") from None


def resolve_spec(name_or_path: str | Path | NetSpec, *, _depth: int = 0) -> NetSpec:
    """A model name (case-insensitive) or a spec file path -> validated :class:`NetSpec`.

    ``BASE:key=value[,key=value...]`` applies overrides to BASE (see the module docstring).
    """
    if isinstance(name_or_path, NetSpec):
        return name_or_path.validate()
    text = str(name_or_path)
    if not isinstance(name_or_path, Path) and text.startswith(("timm:", "torchvision:")):
        raise NetscaleError(
            f"{text} is a zoo model, not a netscale spec; zoo models work with netscale info, "
            "bench, export, scale, recommend and study bases (docs/zoo.md)")
    if not isinstance(name_or_path, Path) and is_registered(text):
        return get_spec(text)
    split = None if isinstance(name_or_path, Path) or Path(text).exists() else \
        split_overrides(text)
    if split is not None:
        base_text, over_text = split
        overrides = _parse_overrides(over_text, text)
        base = resolve_spec(base_text, _depth=_depth + 1)
        if not any(k == "name" for k, _ in overrides):
            overrides.append(("name", f"{base.name}:{over_text}"))
        return apply_spec_overrides(base, overrides, text)
    if isinstance(name_or_path, Path) or looks_like_path(text):
        return spec_from_data(load_spec_data(text), source=text, _depth=_depth)
    return get_spec(text)  # raises "unknown model ... closest: ..."
