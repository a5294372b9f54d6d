"""Study configs: which bases, strategies and factors, on which data, with which recipe.

A study config is a YAML file (see ``examples/study.yaml`` and the README)::

    name: regnet-fmnist
    out: studies/regnet-fmnist        # study directory (relative to the config file)
    bases: [RegNetY-200MF]            # model names or spec files
    base_overrides: {resolution: 32}  # applied to each base before scaling
    strategies: [d, w, r, dwr, dWr]
    factors: [1, 2, 4]
    rounding: exact
    seeds: [0]
    data: {name: fashion-mnist, subset: 5000, val_subset: 2000}
    recipe: {epochs: 3, batch_size: 128, lr: 0.2}   # + memory_format, precision (auto)
    bench: {enabled: true, mode: infer, batch_size: 64, budget: 2.0}
    retries: 1
    resources: {cpus: 1, gpus: 0}      # per trial, for the Ray executor

Everything is validated up front (:func:`load_study_config`) with one-line errors.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from netscale.bench.setting import MEMORY_FORMATS, PRECISIONS
from netscale.errors import NetscaleError
from netscale.scaling import ROUNDING_MODES, parse_strategy
from netscale.specs import NetSpec, resolve_spec
from netscale.specs.resolve import load_spec_data
from netscale.study.module_base import is_module_base, parse_module_base, zoo_base
from netscale.util import jsonio, serial
from netscale.util.io import atomic_write_text
from netscale.util.safeload import load_yaml, short_repr
from netscale.util.validate import check_threads

if TYPE_CHECKING:  # imported when used: they import torch, which a config does not need
    from netscale.data.config import DataConfig
    from netscale.train.recipe import Recipe

_TOP_KEYS = {
    "name", "out", "bases", "base_overrides", "strategies", "factors", "rounding", "tolerance",
    "resolution_multiple",
    "seeds", "data", "recipe", "bench", "train", "retries", "resources", "description",
    "overrides",
}
_T = TypeVar("_T")
_OVERRIDABLE = ("resolution", "num_classes", "in_channels", "activation", "dropout")


@dataclass(frozen=True)
class BenchSettings:
    """Runtime measurement per trial (``netscale bench`` settings)."""

    enabled: bool = True
    mode: str = "infer"
    batch_size: int = 32
    budget: float = 2.0
    threads: int | None = None
    retries: int = 1  # re-measure a noisy or contended result (CPU busy) up to this often

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str) -> BenchSettings:
        _known(d, {f.name for f in dataclasses.fields(cls)}, f"{source}: bench")
        out = cls(**d)
        if not isinstance(out.enabled, bool):
            raise NetscaleError(f"{source}: bench.enabled must be true or false, got "
                                f"{_show(out.enabled)}")
        for key in ("batch_size", "retries", "threads"):
            if isinstance(getattr(out, key), bool):
                raise NetscaleError(f"{source}: bench.{key} must be an integer, got "
                                    f"{_show(getattr(out, key))}")
        if isinstance(out.budget, bool) or (isinstance(out.budget, float)
                                            and not math.isfinite(out.budget)):
            raise NetscaleError(f"{source}: bench.budget must be a positive number of seconds")
        if out.mode not in ("infer", "train", "both"):
            raise NetscaleError(f"{source}: bench.mode must be infer, train or both")
        if not isinstance(out.batch_size, int) or out.batch_size < 1:
            raise NetscaleError(f"{source}: bench.batch_size must be a positive integer")
        if not isinstance(out.budget, (int, float)) or out.budget <= 0:
            raise NetscaleError(f"{source}: bench.budget must be a positive number of seconds")
        if not isinstance(out.retries, int) or out.retries < 0:
            raise NetscaleError(f"{source}: bench.retries must be a non-negative integer")
        if out.threads is not None and (not isinstance(out.threads, int) or out.threads < 1):
            raise NetscaleError(f"{source}: bench.threads must be a positive integer")
        if out.budget > 86400 or out.retries > 100 or out.batch_size > (1 << 40):
            raise NetscaleError(f"{source}: bench: budget (at most 86400 s), retries (at most "
                                "100) or batch_size is out of range")

        try:
            check_threads(out.threads, "bench.threads")
        except NetscaleError as exc:
            raise NetscaleError(f"{source}: {exc}") from None
        return out


@dataclass(frozen=True)
class Resources:
    """Per-trial resources for the Ray executor."""

    cpus: float = 1.0
    gpus: float = 0.0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str) -> Resources:
        _known(d, {"cpus", "gpus"}, f"{source}: resources")
        for k, v in d.items():
            if not _is_number(v):
                raise NetscaleError(f"{source}: resources.{k} must be a number, got {_show(v)}")
        out = cls(**{k: float(v) for k, v in d.items()})
        if not (out.cpus > 0 and out.gpus >= 0):
            raise NetscaleError(f"{source}: resources.cpus must be > 0 and gpus >= 0")
        return out


@dataclass(frozen=True)
class StudyConfig:
    """A validated study config."""

    name: str
    out_dir: Path
    bases: tuple[Any, ...]  # model names / spec files, or module-factory mappings
    strategies: tuple[str, ...]
    factors: tuple[float, ...]
    rounding: str = "exact"
    tolerance: float = 0.02
    resolution_multiple: int = 4
    seeds: tuple[int, ...] = (0,)
    base_overrides: Mapping[str, Any] = field(default_factory=dict)
    data: DataConfig | None = None  # None: a runtime-only study (train: false) without data
    recipe: Recipe = field(default_factory=lambda: _recipe_class()())
    bench: BenchSettings = field(default_factory=BenchSettings)
    train: bool = True
    retries: int = 1
    resources: Resources = field(default_factory=Resources)
    source: str = "study config"
    base_dir: Path = field(default_factory=Path.cwd)
    description: str = ""
    overrides: tuple[str, ...] = ()  # --set KEY=VALUE applied on top of the file (a record)
    # the data and recipe keys as the config gives them (data folders made absolute),
    # defaults unsaid: what study.yaml, the fingerprint and the report's description record
    given: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, compare=False)

    def data_dict(self) -> dict[str, Any]:
        """The data section as written (defaults unsaid); {} without data."""
        if "data" in self.given:
            return dict(self.given["data"])
        return serial.to_dict(self.data) if self.data is not None else {}

    def recipe_dict(self) -> dict[str, Any]:
        """The recipe section as written (defaults unsaid)."""
        if "recipe" in self.given:
            return dict(self.given["recipe"])
        return serial.to_dict(self.recipe)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "out": str(self.out_dir),
            "bases": list(self.bases),
            "base_overrides": dict(self.base_overrides),
            "strategies": list(self.strategies),
            "factors": list(self.factors),
            "rounding": self.rounding,
            "tolerance": self.tolerance,
            "resolution_multiple": self.resolution_multiple,
            "seeds": list(self.seeds),
            "data": self.data_dict(),
            "recipe": self.recipe_dict(),
            "bench": serial.to_dict(self.bench),
            "train": self.train,
            "retries": self.retries,
            "resources": serial.to_dict(self.resources),
            "description": self.description,
            **({"overrides": list(self.overrides)} if self.overrides else {}),
        }

    def fingerprint(self) -> str:
        """A hash of what determines trial results (not out dir, retries or resources).

        Independent of where the config file lies: a base spec file counts by its name and
        content, a data folder by its resolved path, so the study directory's own
        ``study.yaml`` (written with other paths) matches the original config."""
        d = self.to_dict()
        for k in ("out", "retries", "resources", "description", "name"):
            d.pop(k)
        d.pop("overrides", None)  # already reflected in the values
        d["bases"] = [self._base_identity(b) for b in self.bases]
        return hashlib.sha256(jsonio.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def base_file(self, base: Any) -> Path | None:
        """The spec file a base refers to (resolved against the config's folder), if any; a
        module-factory base (a mapping) has none."""
        if not isinstance(base, str):
            return None
        p = Path(base).expanduser()
        p = p if p.is_absolute() else self.base_dir / p
        return p if p.is_file() else None

    def _base_identity(self, base: Any) -> str:
        if not isinstance(base, str):  # a module-factory base: its normalized mapping
            return jsonio.dumps(base, sort_keys=True)
        f = self.base_file(base)
        if f is None:
            return base
        digest = hashlib.sha256(jsonio.dumps(resolve_spec(str(f)).to_dict(),
                                             sort_keys=True).encode()).hexdigest()[:16]
        return f"file:{f.stem}:{digest}"

    def portable_dict(self) -> dict[str, Any]:
        """The config as the study directory's ``study.yaml`` stores it: ``out`` is the
        directory itself (``.``), spec-file bases point at copies inside it (``bases/``) and
        data folders are absolute, so the directory can be copied or moved and rerun."""
        d = self.to_dict()
        d["out"] = "."
        bases = []
        for b in self.bases:
            f = self.base_file(b)
            if f is None:
                bases.append(b)
                continue
            try:
                bases.append(f.resolve().relative_to(self.out_dir.resolve()).as_posix())
            except ValueError:
                bases.append(f"bases/{f.name}")
        d["bases"] = bases
        return d

    def write_study_yaml(self) -> Path:
        """Writes ``study.yaml`` (and copies of spec-file bases) into the study directory."""
        import yaml

        d = self.portable_dict()
        for b, stored in zip(self.bases, d["bases"]):
            f = self.base_file(b)
            if f is not None and isinstance(stored, str) and stored.startswith("bases/"):
                atomic_write_text(self.out_dir / stored, resolve_spec(str(f)).to_yaml())
        return atomic_write_text(self.out_dir / "study.yaml",
                                 yaml.safe_dump(d, sort_keys=False))

    def resolve_base(self, base: str, data_info: Mapping[str, Any] | None = None) -> NetSpec:
        """The base spec with overrides, adapted to the dataset (classes, channels)."""
        f = self.base_file(base)
        spec = resolve_spec(str(f) if f is not None else base)
        changes: dict[str, Any] = {}
        if data_info:
            changes["num_classes"] = int(data_info["num_classes"])
            changes["in_channels"] = int(data_info["in_channels"])
        changes.update(self.base_overrides)
        return spec.replace(**changes).validate() if changes else spec


def _is_number(v: Any) -> bool:
    """A finite int or float (not a bool, not a string)."""
    return (isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(float(v)))


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_type(data: Mapping[str, Any], key: str, kinds: tuple[type, ...], what: str,
                source: str) -> None:
    if key in data and data[key] is not None and (
            not isinstance(data[key], kinds) or (bool not in kinds
                                                 and isinstance(data[key], bool))):
        raise NetscaleError(f"{source}: {key} must be {what}, got {_show(data[key])}")


def _known(d: Mapping[str, Any], known: set[str], where: str) -> None:
    if not isinstance(d, Mapping):
        raise NetscaleError(f"{where} must be a mapping")
    bad = sorted(map(str, set(d) - known))
    if bad:
        raise NetscaleError(f"{where}: unknown key(s) {', '.join(bad)}; known: "
                            f"{', '.join(sorted(known))}")


def _as_list(value: Any, what: str, source: str) -> list[Any]:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise NetscaleError(f"{source}: {what} must be a non-empty list, got {_show(value)}")
    return list(value)


def parse_study_config(data: Any, *, source: str = "study config",
                       base_dir: Path | None = None) -> StudyConfig:
    """Validates parsed YAML/JSON; every problem is a one-line :class:`NetscaleError`."""
    _check_top(data, source)
    base_dir = base_dir or Path.cwd()
    grid = _parse_grid(data, source, base_dir)
    sections = _parse_sections(data, source, base_dir)
    limits = _parse_limits(data, source)
    identity = _parse_identity(data, source, base_dir)
    from netscale.data.config import DataConfig

    data_cfg, recipe = sections.pop("data_cfg"), sections.pop("recipe_cfg")
    cfg = StudyConfig(**grid, **sections, **limits, **identity,
                      data=(_section(DataConfig, data_cfg, "data", source)
                            if data_cfg or sections["train"] else None),
                      recipe=_section(_recipe_class(), _check_setting_keys(recipe, source),
                                     "recipe", source),
                      bench=BenchSettings.from_dict(data.get("bench", {}) or {}, source),
                      resources=Resources.from_dict(data.get("resources", {}) or {}, source),
                      source=source, base_dir=base_dir,
                      overrides=tuple(str(o) for o in (
                          _as_list(data["overrides"], "overrides", source)
                          if data.get("overrides") else ())))

    for b in cfg.bases:  # fail early on unknown models / bad spec files
        if is_module_base(b):
            continue  # checked by parse_module_base
        try:
            cfg.resolve_base(b)
        except NetscaleError as exc:
            raise NetscaleError(f"{source}: bases: {exc}") from None
    return cfg


def _check_top(data: Any, source: str) -> None:
    """The config is a mapping of known keys, with the required ones, each of its type."""
    if not isinstance(data, Mapping):
        raise NetscaleError(f"{source}: a study config is a mapping (YAML keys such as bases, "
                            "strategies, factors, data, recipe)")
    _known(data, _TOP_KEYS, source)
    for key in ("bases", "strategies", "factors"):
        if key not in data:
            raise NetscaleError(f"{source}: missing required key {key!r}")
    for key, what in (("name", "a string"), ("out", "a directory path (a string)"),
                      ("description", "a string"), ("rounding", "exact or reference")):
        _check_type(data, key, (str,), what, source)
    _check_type(data, "train", (bool,), "true or false (not a string)", source)
    _check_type(data, "tolerance", (int, float), "a number in (0, 1)", source)
    _check_type(data, "retries", (int,), "a non-negative integer", source)
    _check_type(data, "resolution_multiple", (int,), "a positive integer", source)
    for key in ("base_overrides", "data", "recipe", "bench", "resources"):
        _check_type(data, key, (Mapping,), "a mapping (key: value pairs)", source)


def _parse_grid(data: Mapping[str, Any], source: str, base_dir: Path) -> dict[str, Any]:
    """The trial grid: bases, strategies, factors, rounding and seeds."""
    raw_bases = _as_list(data["bases"], "bases", source)
    raw_strategies = _as_list(data["strategies"], "strategies", source)

    for key, items in (("bases", raw_bases), ("strategies", raw_strategies)):
        bad = [v for v in items if not (isinstance(v, str) and v.strip())
               and not (key == "bases" and is_module_base(v))]
        if bad:
            raise NetscaleError(f"{source}: {key} must be non-empty strings (or module-factory "
                                f"mappings for bases), got "
                                f"{_show(bad[0])}")
    from netscale.zoo.names import is_zoo_name

    raw_bases = [zoo_base(b) if is_zoo_name(b) else b for b in raw_bases]
    bases = tuple(parse_module_base(b, source, base_dir) if is_module_base(b)
                  else b for b in raw_bases)
    strategies = tuple(raw_strategies)
    for s in strategies:
        try:
            parse_strategy(s)
        except NetscaleError as exc:
            raise NetscaleError(f"{source}: strategies: {exc}") from None
    factors_raw = _as_list(data["factors"], "factors", source)
    if not all(_is_number(f) for f in factors_raw):
        raise NetscaleError(f"{source}: factors must be numbers (finite, > 0), got "
                            f"{_show(factors_raw)}")
    factors = tuple(float(f) for f in factors_raw)
    if any(not f > 0 for f in factors):
        raise NetscaleError(f"{source}: factors must be positive")
    rounding = str(data.get("rounding", "exact"))
    if rounding not in ROUNDING_MODES:
        raise NetscaleError(f"{source}: rounding must be one of {', '.join(ROUNDING_MODES)}")
    seeds_raw = _as_list(data.get("seeds", [0]), "seeds", source)
    if not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**32
               for s in seeds_raw):
        raise NetscaleError(f"{source}: seeds must be integers from 0 to 2^32-1, got "
                            f"{_show(seeds_raw)}")
    return {"bases": bases, "strategies": strategies, "factors": factors,
            "rounding": rounding, "seeds": tuple(int(s) for s in seeds_raw)}


def _parse_sections(data: Mapping[str, Any], source: str, base_dir: Path) -> dict[str, Any]:
    """base_overrides, data (folders made absolute), train and recipe."""
    overrides = data.get("base_overrides", {}) or {}
    _known(overrides, set(_OVERRIDABLE), f"{source}: base_overrides")
    data_cfg = data.get("data", {}) or {}
    if not isinstance(data_cfg, Mapping):
        raise NetscaleError(f"{source}: data must be a mapping (e.g. {{name: digits}})")
    data_cfg = _resolve_data_paths(dict(data_cfg), base_dir, source)
    train = data.get("train", True)
    if train and "name" not in data_cfg and "path" not in data_cfg:
        raise NetscaleError(f"{source}: data needs 'name' (digits, fashion-mnist, cifar10, …) "
                            "or 'path' (a dataset folder), or set train: false")
    recipe = data.get("recipe", {}) or {}
    if not isinstance(recipe, Mapping):
        raise NetscaleError(f"{source}: recipe must be a mapping (e.g. {{epochs: 3}})")
    return {"base_overrides": dict(overrides), "train": train,
            "given": {"data": dict(data_cfg), "recipe": dict(recipe)},
            "data_cfg": data_cfg, "recipe_cfg": recipe}


def _parse_limits(data: Mapping[str, Any], source: str) -> dict[str, Any]:
    """retries, tolerance and resolution_multiple."""
    retries = data.get("retries", 1)
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 100:
        raise NetscaleError(f"{source}: retries must be a non-negative integer (at most 100)")
    tolerance = float(0.02 if data.get("tolerance") is None else data["tolerance"])
    if not 0 < tolerance < 1:
        raise NetscaleError(f"{source}: tolerance must be in (0, 1)")
    res_mult = data.get("resolution_multiple", 4)
    if not isinstance(res_mult, int) or isinstance(res_mult, bool) or not 1 <= res_mult <= 4096:
        raise NetscaleError(f"{source}: resolution_multiple must be a positive integer "
                            "(scaled resolutions are rounded to multiples of it; default 4)")
    return {"retries": retries, "tolerance": tolerance, "resolution_multiple": res_mult}


def _parse_identity(data: Mapping[str, Any], source: str, base_dir: Path) -> dict[str, Any]:
    """name, out directory (relative to the config's folder) and description."""
    default_name = Path(source).stem if source.endswith((".yaml", ".yml", ".json")) else "study"
    name = str(data.get("name") or default_name)
    if not data.get("out") and (name in (".", "..") or any(c in name for c in "/\\\0")):
        raise NetscaleError(f"{source}: name {short_repr(name)} is not a plain name (it "
                            "would place the study outside studies/); use letters, digits, "
                            "- and _, or give 'out' for the directory")
    out = Path(str(data.get("out") or f"studies/{name}"))
    if not out.is_absolute():
        try:
            out = (base_dir / out).resolve()
        except (RuntimeError, OSError):  # a loop of symbolic links
            raise NetscaleError(f"{source}: out {str(out)!r} is a loop of symbolic links; "
                                "remove the link or choose another directory") from None
    return {"name": name, "out_dir": out, "description": str(data.get("description", ""))}


def _resolve_data_paths(data_cfg: dict[str, Any], base_dir: Path, source: str
                        ) -> dict[str, Any]:
    """A relative data folder (``path``, or a ``name`` that is a folder) is relative to the
    config file's directory, like ``bases`` and ``out``; returned absolute."""
    for key in ("path", "name"):
        v = data_cfg.get(key)
        if v is None:
            continue
        if not isinstance(v, str) or not v.strip():
            raise NetscaleError(f"{source}: data.{key} must be a non-empty string, got "
                                f"{_show(v)}")
        p = Path(v).expanduser()
        if p.is_absolute():
            continue
        looks_like_path = key == "path" or "/" in v or v.startswith(".") or \
            (base_dir / p).exists()
        if looks_like_path:
            data_cfg[key] = str((base_dir / p).resolve())
    return data_cfg


def _recipe_class() -> type[Recipe]:
    from netscale.train.recipe import Recipe

    return Recipe


def _section(cls: type[_T], value: Mapping[str, Any], what: str, source: str) -> _T:
    """The recipe or data section as the trainer's own dataclass (one-line errors)."""
    try:
        return serial.from_dict(cls, dict(value), what)
    except NetscaleError as exc:
        msg = str(exc)
        msg = msg if msg.startswith(f"{what}") else f"{what}: {msg}"
        raise NetscaleError(f"{source}: {msg}") from None
    except (TypeError, ValueError) as exc:
        raise NetscaleError(f"{source}: {what}: {exc}") from None


def _check_setting_keys(recipe: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Checks recipe.memory_format / recipe.precision (the execution setting every trial
    trains and is timed in; ``auto``, the default, probes each scaled model once when its
    trial starts, docs/precision.md). Returns the recipe without them when this Recipe does
    not know them yet."""
    from netscale.train.recipe import Recipe

    out = dict(recipe)
    known = {f.name for f in dataclasses.fields(Recipe)}
    for key, allowed in (("memory_format", MEMORY_FORMATS), ("precision", PRECISIONS)):
        if key in out and out[key] not in allowed:
            raise NetscaleError(f"{source}: recipe.{key} must be one of {', '.join(allowed)}, "
                                f"got {_show(out[key])}")
        if key not in known:
            out.pop(key, None)
    return out


def apply_config_sets(data: Mapping[str, Any], sets: Sequence[str]) -> dict[str, Any]:
    """``data`` with each ``KEY.PATH=VALUE`` of ``sets`` applied (VALUE parsed as YAML, so
    ``factors=[1,2]``, ``recipe.epochs=1``, ``train=false`` work); nested mappings are created
    as needed. The applied overrides are recorded under ``overrides``."""
    out = copy.deepcopy(dict(data))
    for item in sets:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not k for k in key.split(".")):
            raise NetscaleError(f"--set {item!r}: give KEY=VALUE, e.g. --set recipe.epochs=1 "
                                "or --set factors=[1,2]")
        value = load_yaml(text, f"--set {short_repr(item)}: the value") if text.strip() \
            else None
        parts = key.split(".")
        if parts[0] not in _TOP_KEYS or parts[0] == "overrides":
            raise NetscaleError(f"--set {item!r}: unknown key {parts[0]!r}; study keys: "
                                f"{', '.join(sorted(_TOP_KEYS - {'overrides'}))}")
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, Mapping):
                raise NetscaleError(f"--set {item!r}: {'.'.join(parts[:i + 1])} is not a "
                                    "mapping in the config")
            else:
                child = node[part] = dict(child)
            node = child
        node[parts[-1]] = value
    recorded = [str(o) for o in (out.get("overrides") or [])]
    out["overrides"] = recorded + [s.strip() for s in sets]
    return out


def load_study_config(path: str | Path, overrides: Sequence[str] = ()) -> StudyConfig:
    """Reads and validates a study config file, with ``--set KEY=VALUE`` overrides applied
    first (validated like the file)."""
    p = Path(path)
    if p.is_dir() and (p / "study.yaml").is_file():
        p = p / "study.yaml"
    data = load_spec_data(p, what="study config")
    source = str(path)
    if overrides:
        if not isinstance(data, Mapping):
            raise NetscaleError(f"{source}: a study config is a mapping (YAML keys such as "
                                "bases, strategies, factors, data, recipe)")
        data = apply_config_sets(data, overrides)
        if not data.get("name") and source.endswith((".yaml", ".yml", ".json")):
            data["name"] = Path(source).stem  # the default name comes from the file name
        source = f"{path} with --set {' --set '.join(overrides)}"
    return parse_study_config(data, source=source, base_dir=p.resolve().parent)
