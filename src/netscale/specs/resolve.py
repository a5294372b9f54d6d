"""Turn what a user typed (a model name or a spec file) into a validated spec.

Spec files may be:

* a netscale spec (YAML or JSON; what ``NetSpec.save`` writes);
* a *derived* spec: ``base: <model name or file>`` plus top-level overrides, e.g.
  ``{base: RegNetY-400MF, resolution: 64, num_classes: 10, in_channels: 1}``;
* a pycls-style config (``MODEL.TYPE`` regnet/anynet/effnet), see :mod:`netscale.specs.pycls`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from netscale.errors import NetscaleError
from netscale.specs.registry import get_spec, is_registered
from netscale.specs.spec import NetSpec

_OVERRIDABLE = ("name", "resolution", "num_classes", "in_channels", "activation", "dropout",
                "head_width")
SPEC_SUFFIXES = (".yaml", ".yml", ".json")


def looks_like_path(text: str) -> bool:
    return text.lower().endswith(SPEC_SUFFIXES) or "/" in text or Path(text).is_file()


def load_spec_data(path: str | Path, what: str = "spec file") -> Any:
    """Parses a YAML/JSON file into Python data with one-line errors."""
    path = Path(path)
    if not path.exists():
        raise NetscaleError(f"{what} {str(path)!r} does not exist")
    if path.is_dir():
        raise NetscaleError(f"{what} {str(path)!r} is a directory; give a .yaml or .json file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise NetscaleError(f"cannot read {what} {str(path)!r}: {exc}") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except RecursionError:
            raise NetscaleError(f"{what} {str(path)!r} is nested too deeply") from None
        except json.JSONDecodeError as exc:
            raise NetscaleError(
                f"{what} {str(path)!r} is not valid JSON ({exc.msg}, line {exc.lineno})"
            ) from None
    import yaml

    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise NetscaleError(f"{what} {str(path)!r} is nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise NetscaleError(f"{what} {str(path)!r} is not valid YAML{where}") from None


def spec_from_data(data: Any, *, source: str, _depth: int = 0) -> NetSpec:
    """A spec from parsed file data of any supported format."""
    if not isinstance(data, Mapping):
        raise NetscaleError(
            f"{source}: expected a mapping of spec fields, got {type(data).__name__}"
        )
    if "MODEL" in data:
        from netscale.specs.pycls import spec_from_pycls

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


def resolve_spec(name_or_path: str | Path | NetSpec, *, _depth: int = 0) -> NetSpec:
    """A model name (case-insensitive) or a spec file path -> validated :class:`NetSpec`."""
    if isinstance(name_or_path, NetSpec):
        return name_or_path.validate()
    text = str(name_or_path)
    if not isinstance(name_or_path, Path) and is_registered(text):
        return get_spec(text)
    if isinstance(name_or_path, Path) or looks_like_path(text):
        return spec_from_data(load_spec_data(text), source=text, _depth=_depth)
    return get_spec(text)  # raises "unknown model ... closest: ..."
