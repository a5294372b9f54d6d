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
    recipe: {epochs: 3, batch_size: 128, lr: 0.2}
    bench: {enabled: true, mode: infer, batch_size: 64, budget: 2.0}
    retries: 1
    resources: {cpus: 1, gpus: 0}      # per trial, for the Ray executor

Everything is validated up front (:func:`load_study_config`) with one-line errors.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netscale.errors import NetscaleError
from netscale.scaling import ROUNDING_MODES, parse_strategy
from netscale.specs import NetSpec, resolve_spec

_TOP_KEYS = {
    "name", "out", "bases", "base_overrides", "strategies", "factors", "rounding", "tolerance",
    "resolution_multiple",
    "seeds", "data", "recipe", "bench", "train", "retries", "resources", "description",
    "overrides",
}
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
        return out


@dataclass(frozen=True)
class Resources:
    """Per-trial resources for the Ray executor."""

    cpus: float = 1.0
    gpus: float = 0.0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str) -> Resources:
        _known(d, {"cpus", "gpus"}, f"{source}: resources")
        out = cls(**{k: float(v) for k, v in d.items()})
        if out.cpus <= 0 or out.gpus < 0:
            raise NetscaleError(f"{source}: resources.cpus must be > 0 and gpus >= 0")
        return out


@dataclass(frozen=True)
class StudyConfig:
    """A validated study config."""

    name: str
    out_dir: Path
    bases: tuple[str, ...]
    strategies: tuple[str, ...]
    factors: tuple[float, ...]
    rounding: str = "exact"
    tolerance: float = 0.02
    resolution_multiple: int = 4
    seeds: tuple[int, ...] = (0,)
    base_overrides: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)
    recipe: Mapping[str, Any] = field(default_factory=dict)
    bench: BenchSettings = field(default_factory=BenchSettings)
    train: bool = True
    retries: int = 1
    resources: Resources = field(default_factory=Resources)
    source: str = "study config"
    base_dir: Path = field(default_factory=Path.cwd)
    description: str = ""
    overrides: tuple[str, ...] = ()  # --set KEY=VALUE applied on top of the file (a record)

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
            "data": dict(self.data),
            "recipe": dict(self.recipe),
            "bench": dataclasses.asdict(self.bench),
            "train": self.train,
            "retries": self.retries,
            "resources": dataclasses.asdict(self.resources),
            "description": self.description,
            **({"overrides": list(self.overrides)} if self.overrides else {}),
        }

    def fingerprint(self) -> str:
        """A hash of what determines trial results (not out dir, retries or resources)."""
        d = self.to_dict()
        for k in ("out", "retries", "resources", "description", "name"):
            d.pop(k)
        d.pop("overrides", None)  # already reflected in the values
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def resolve_base(self, base: str, data_info: Mapping[str, Any] | None = None) -> NetSpec:
        """The base spec with overrides, adapted to the dataset (classes, channels)."""
        ref = base
        p = Path(base)
        if not p.is_absolute() and (self.base_dir / p).is_file():
            ref = str(self.base_dir / p)
        spec = resolve_spec(ref)
        changes: dict[str, Any] = {}
        if data_info:
            changes["num_classes"] = int(data_info["num_classes"])
            changes["in_channels"] = int(data_info["in_channels"])
        changes.update(self.base_overrides)
        return spec.replace(**changes).validate() if changes else spec


def _known(d: Mapping[str, Any], known: set[str], where: str) -> None:
    if not isinstance(d, Mapping):
        raise NetscaleError(f"{where} must be a mapping")
    bad = sorted(set(d) - known)
    if bad:
        raise NetscaleError(f"{where}: unknown key(s) {', '.join(bad)}; known: "
                            f"{', '.join(sorted(known))}")


def _as_list(value: Any, what: str, source: str) -> list[Any]:
    if isinstance(value, (str, int, float)):
        return [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise NetscaleError(f"{source}: {what} must be a non-empty list")
    return list(value)


def parse_study_config(data: Any, *, source: str = "study config",
                       base_dir: Path | None = None) -> StudyConfig:
    """Validates parsed YAML/JSON; every problem is a one-line :class:`NetscaleError`."""
    if not isinstance(data, Mapping):
        raise NetscaleError(f"{source}: a study config is a mapping (YAML keys such as bases, "
                            "strategies, factors, data, recipe)")
    _known(data, _TOP_KEYS, source)
    base_dir = base_dir or Path.cwd()
    for key in ("bases", "strategies", "factors"):
        if key not in data:
            raise NetscaleError(f"{source}: missing required key {key!r}")
    bases = tuple(str(b) for b in _as_list(data["bases"], "bases", source))
    strategies = tuple(str(s) for s in _as_list(data["strategies"], "strategies", source))
    for s in strategies:
        try:
            parse_strategy(s)
        except NetscaleError as exc:
            raise NetscaleError(f"{source}: strategies: {exc}") from None
    factors_raw = _as_list(data["factors"], "factors", source)
    try:
        factors = tuple(float(f) for f in factors_raw)
    except (TypeError, ValueError):
        raise NetscaleError(f"{source}: factors must be numbers, got {factors_raw!r}") from None
    if any(not f > 0 for f in factors):
        raise NetscaleError(f"{source}: factors must be positive")
    rounding = str(data.get("rounding", "exact"))
    if rounding not in ROUNDING_MODES:
        raise NetscaleError(f"{source}: rounding must be one of {', '.join(ROUNDING_MODES)}")
    seeds_raw = _as_list(data.get("seeds", [0]), "seeds", source)
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds_raw):
        raise NetscaleError(f"{source}: seeds must be integers")
    overrides = data.get("base_overrides", {}) or {}
    _known(overrides, set(_OVERRIDABLE), f"{source}: base_overrides")
    data_cfg = data.get("data", {}) or {}
    if not isinstance(data_cfg, Mapping):
        raise NetscaleError(f"{source}: data must be a mapping (e.g. {{name: digits}})")
    train = bool(data.get("train", True))
    if train and "name" not in data_cfg and "path" not in data_cfg:
        raise NetscaleError(f"{source}: data needs 'name' (digits, fashion-mnist, cifar10, …) "
                            "or 'path' (a dataset folder), or set train: false")
    recipe = data.get("recipe", {}) or {}
    if not isinstance(recipe, Mapping):
        raise NetscaleError(f"{source}: recipe must be a mapping (e.g. {{epochs: 3}})")
    retries = data.get("retries", 1)
    if not isinstance(retries, int) or retries < 0:
        raise NetscaleError(f"{source}: retries must be a non-negative integer")
    tolerance = float(data.get("tolerance", 0.02))
    if not 0 < tolerance < 1:
        raise NetscaleError(f"{source}: tolerance must be in (0, 1)")
    res_mult = data.get("resolution_multiple", 4)
    if not isinstance(res_mult, int) or isinstance(res_mult, bool) or res_mult < 1:
        raise NetscaleError(f"{source}: resolution_multiple must be a positive integer "
                            "(scaled resolutions are rounded to multiples of it; default 4)")
    default_name = Path(source).stem if source.endswith((".yaml", ".yml", ".json")) else "study"
    name = str(data.get("name") or default_name)
    out = Path(str(data.get("out") or f"studies/{name}"))
    if not out.is_absolute():
        out = (base_dir / out).resolve()
    cfg = StudyConfig(
        name=name,
        out_dir=out,
        bases=bases,
        strategies=strategies,
        factors=factors,
        rounding=rounding,
        tolerance=tolerance,
        resolution_multiple=res_mult,
        seeds=tuple(int(s) for s in seeds_raw),
        base_overrides=dict(overrides),
        data=dict(data_cfg),
        recipe=dict(recipe),
        bench=BenchSettings.from_dict(data.get("bench", {}) or {}, source),
        train=train,
        retries=retries,
        resources=Resources.from_dict(data.get("resources", {}) or {}, source),
        source=source,
        base_dir=base_dir,
        description=str(data.get("description", "")),
        overrides=tuple(str(o) for o in (_as_list(data["overrides"], "overrides", source)
                                          if data.get("overrides") else ())),
    )
    for b in bases:  # fail early on unknown models / bad spec files
        try:
            cfg.resolve_base(b)
        except NetscaleError as exc:
            raise NetscaleError(f"{source}: bases: {exc}") from None
    _validate_recipe_and_data(cfg)
    return cfg


def _validate_recipe_and_data(cfg: StudyConfig) -> None:
    """Checks the recipe and data sections against the trainer's own dataclasses."""
    from netscale.data import DataConfig
    from netscale.train.recipe import Recipe

    for what, cls, value in (("recipe", Recipe, cfg.recipe), ("data", DataConfig, cfg.data)):
        if what == "data" and not cfg.train and not value:
            continue
        try:
            cls.from_dict(dict(value))
        except NetscaleError as exc:
            msg = str(exc)
            msg = msg if msg.startswith(f"{what}") else f"{what}: {msg}"
            raise NetscaleError(f"{cfg.source}: {msg}") from None
        except (TypeError, ValueError) as exc:
            raise NetscaleError(f"{cfg.source}: {what}: {exc}") from None


def apply_overrides(data: Mapping[str, Any], sets: Sequence[str]) -> dict[str, Any]:
    """``data`` with each ``KEY.PATH=VALUE`` of ``sets`` applied (VALUE parsed as YAML, so
    ``factors=[1,2]``, ``recipe.epochs=1``, ``train=false`` work); nested mappings are created
    as needed. The applied overrides are recorded under ``overrides``."""
    import copy

    import yaml

    out = copy.deepcopy(dict(data))
    for item in sets:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not k for k in key.split(".")):
            raise NetscaleError(f"--set {item!r}: give KEY=VALUE, e.g. --set recipe.epochs=1 "
                                "or --set factors=[1,2]")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            problem = str(exc).splitlines()[0]
            raise NetscaleError(f"--set {item!r}: the value is not valid YAML ({problem})"
                                ) from None
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
    from netscale.specs.resolve import load_spec_data

    p = Path(path)
    if p.is_dir() and (p / "study.yaml").is_file():
        p = p / "study.yaml"
    data = load_spec_data(p, what="study config")
    source = str(path)
    if overrides:
        if not isinstance(data, Mapping):
            raise NetscaleError(f"{source}: a study config is a mapping (YAML keys such as "
                                "bases, strategies, factors, data, recipe)")
        data = apply_overrides(data, overrides)
        if not data.get("name") and source.endswith((".yaml", ".yml", ".json")):
            data["name"] = Path(source).stem  # the default name comes from the file name
        source = f"{path} with --set {' --set '.join(overrides)}"
    return parse_study_config(data, source=source, base_dir=p.resolve().parent)
