"""Study bases that are your own ``nn.Module`` factories instead of specs.

In a study config, a base may be a mapping::

    bases:
      - module: models.py:make_net      # or pkg.mod:make_net; paths relative to the config
        input_shape: [1, 16, 16]        # C, H, W without batch (square H = W)
        num_classes: 10                 # optional: the dataset's classes by default
        name: mynet                     # optional label (default: the factory's name)
        depth_arg: depth_mult           # optional keyword names of the multipliers
        width_arg: width_mult
        num_classes_arg: num_classes    # keyword the factory takes the class count by
        kwargs: {in_chans: 1}           # optional fixed keyword arguments
        resolution_multiple: 1          # scaled resolutions are multiples of it (default 1)
        in_channels_arg: in_chans       # optional keyword taking the data's channel count
        resolution_arg: img_size        # optional keyword taking the input side

A zoo model is a base too: ``bases: [timm:resnet18, "torchvision:resnet50"]`` (see
:func:`zoo_base`): its family's adapter is the factory, the input shape its own, the class
count (and for timm the channel count) taken from the data.

The plan (:mod:`netscale.study.planning`) scales each (strategy, factor) with
:func:`netscale.scaling.module.scale_module` (measured on the meta device); a trial's model is
a :class:`ModuleSpec`: the factory, its keyword arguments (the chosen multipliers included)
and the input shape, a :class:`netscale.models.FactorySpec` that ``build_model``, the trainer
and the bench harness build through :meth:`ModuleSpec.build_module`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netscale.bench.harness import bench_module
from netscale.errors import NetscaleError
from netscale.specs import NetSpec
from netscale.util import jsonio, serial

KIND = "module"
_KEYS = {"module", "input_shape", "num_classes", "name", "depth_arg", "width_arg",
         "num_classes_arg", "kwargs", "resolution_multiple", "in_channels_arg",
         "resolution_arg"}


@dataclass(frozen=True)
class ModuleSpec:
    """A model built by a factory: what a study trial trains when its base is a module."""

    name: str
    module: str
    kwargs: Mapping[str, Any]
    input_shape: tuple[int, ...]
    num_classes: int
    family: str = KIND
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def in_channels(self) -> int:
        return int(self.input_shape[0])

    @property
    def resolution(self) -> int:
        return int(self.input_shape[1])

    def validate(self) -> ModuleSpec:
        return self

    def replace(self, **changes: Any) -> ModuleSpec:
        return dataclasses.replace(self, **changes)

    def build_module(self, device: Any = None) -> Any:
        """The ``nn.Module`` (on ``device`` if given, e.g. ``"meta"``)."""
        import torch

        from netscale.complexity.user_module import load_factory

        factory = load_factory(self.module)
        if device is not None:
            with torch.device(device):
                return factory(**dict(self.kwargs))
        return factory(**dict(self.kwargs))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": KIND, "name": self.name, "module": self.module,
                "kwargs": dict(self.kwargs), "input_shape": list(self.input_shape),
                "resolution": self.resolution, "num_classes": self.num_classes,
                "in_channels": self.in_channels, "family": self.family}

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModuleSpec:
        # kind, resolution and in_channels are derived: to_dict writes them for readers
        return serial.from_dict(cls, d, unknown="ignore")


def is_module_base(base: Any) -> bool:
    return isinstance(base, Mapping) and "module" in base


def zoo_base(text: str) -> dict[str, Any]:
    """A zoo model name (``timm:NAME[:k=v,...]``) as a module base mapping."""
    from netscale.zoo.factory import target
    from netscale.zoo.scale import RESOLUTION_ARG, ZooFactory

    factory = ZooFactory(text)
    model = factory.model
    out: dict[str, Any] = {
        "module": target(model.zoo, model.name), "input_shape": list(factory.input_shape),
        "name": f"{model.zoo}-{model.name}", "kwargs": dict(model.kwargs),
        "resolution_multiple": factory.adapter.multiple(factory.base),
    }
    if model.zoo == "timm":
        out["in_channels_arg"] = "in_chans"
    if factory.adapter.uses_resolution:
        out["resolution_arg"] = RESOLUTION_ARG
    return out


def is_module_spec_dict(d: Any) -> bool:
    return isinstance(d, Mapping) and d.get("kind") == KIND


def spec_from_payload(d: Mapping[str, Any]) -> Any:
    """A trial's model description: a :class:`ModuleSpec` or a ``NetSpec``."""
    if is_module_spec_dict(d):
        return ModuleSpec.from_dict(d)
    return NetSpec.from_dict(d)


def parse_module_base(base: Mapping[str, Any], source: str, base_dir: Path) -> dict[str, Any]:
    """Validates a module base of a study config (one-line errors); returns it normalized
    (a file path made absolute against the config's folder)."""
    where = f"{source}: bases: module {base.get('module')!r}"
    bad = sorted(set(base) - _KEYS)
    if bad:
        raise NetscaleError(f"{where}: unknown key(s) {', '.join(bad)}; known: "
                            f"{', '.join(sorted(_KEYS))}")
    target = str(base["module"])
    if ":" not in target:
        raise NetscaleError(f"{where}: write PATH.py:FACTORY or package.module:FACTORY")
    path, _, attr = target.rpartition(":")
    if path.endswith(".py") and not Path(path).is_absolute():
        target = f"{(base_dir / path).resolve()}:{attr}"
    shape = base.get("input_shape")
    if (not isinstance(shape, (list, tuple)) or len(shape) != 3
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)):
        raise NetscaleError(f"{where}: input_shape must be [C, H, W] (positive integers), "
                            f"got {shape!r}")
    if shape[1] != shape[2]:
        raise NetscaleError(f"{where}: studies use square inputs; input_shape {list(shape)} "
                            "has H != W")
    out: dict[str, Any] = {
        "module": target,
        "input_shape": [int(s) for s in shape],
        "name": str(base.get("name") or attr),
        "depth_arg": str(base.get("depth_arg", "depth_mult")),
        "width_arg": str(base.get("width_arg", "width_mult")),
        "num_classes_arg": str(base.get("num_classes_arg", "num_classes")),
        "kwargs": dict(base.get("kwargs") or {}),
        "resolution_multiple": base.get("resolution_multiple", 1),
        "in_channels_arg": base.get("in_channels_arg"),
        "resolution_arg": base.get("resolution_arg"),
    }
    if not isinstance(out["kwargs"], dict):
        raise NetscaleError(f"{where}: kwargs must be a mapping")
    rm = out["resolution_multiple"]
    if not isinstance(rm, int) or isinstance(rm, bool) or rm < 1:
        raise NetscaleError(f"{where}: resolution_multiple must be a positive integer")
    if base.get("num_classes") is not None:
        nc = base["num_classes"]
        if not isinstance(nc, int) or isinstance(nc, bool) or nc < 1:
            raise NetscaleError(f"{where}: num_classes must be a positive integer")
        out["num_classes"] = nc
    try:
        jsonio.dumps(out)
    except (TypeError, ValueError):
        raise NetscaleError(f"{where}: kwargs must be plain YAML values") from None
    from netscale.complexity.user_module import load_factory

    try:
        load_factory(target)
    except NetscaleError as exc:
        raise NetscaleError(f"{source}: bases: {exc}") from None
    return out


def adapt_module_base(base: Mapping[str, Any], info: Mapping[str, Any] | None,
           overrides: Mapping[str, Any], source: str) -> tuple[list[int], dict[str, Any], int]:
    shape = list(base["input_shape"])
    kwargs = dict(base["kwargs"])
    num_classes = int(base.get("num_classes") or 0)
    for key, value in overrides.items():
        if key == "resolution":
            shape[1] = shape[2] = int(value)
        elif key == "num_classes":
            num_classes = int(value)
        elif key != "in_channels":
            raise NetscaleError(f"{source}: base_overrides: {key} does not apply to module "
                                f"base {base['name']!r} (resolution and num_classes do)")
    if info:
        num_classes = int(info["num_classes"])
        if base.get("in_channels_arg"):
            shape[0] = int(info["in_channels"])
            kwargs[base["in_channels_arg"]] = shape[0]
        if int(info["in_channels"]) != shape[0]:
            raise NetscaleError(
                f"{source}: module base {base['name']!r} has input_shape {shape} but the data "
                f"has {info['in_channels']} channel(s); set input_shape: "
                f"[{info['in_channels']}, {shape[1]}, {shape[2]}] (and the factory's channel "
                "argument in kwargs)")
    if num_classes:
        kwargs[base["num_classes_arg"]] = num_classes
    return shape, kwargs, num_classes


def bench_module_spec(spec: ModuleSpec, config: Any, *, base: str, strategy: str,
                      factor: float) -> Any:
    """Times a module trial with the bench harness (counts measured on the meta device)."""
    import torch

    from netscale.complexity.measured import count_measured

    rec = count_measured(spec.build_module(device="meta"), spec.input_shape, per_module=False)
    torch.manual_seed(getattr(config, "seed", 0))
    result = bench_module(spec.build_module(), name=spec.name, in_channels=spec.in_channels,
                          resolution=spec.resolution, num_classes=spec.num_classes,
                          counts=(rec.flops, rec.params, rec.acts), config=config)
    labels: dict[str, Any] = {"base": base, "strategy": strategy, "factor": factor}
    names = {f.name for f in dataclasses.fields(result)}
    return dataclasses.replace(result, **{k: v for k, v in labels.items() if k in names})
