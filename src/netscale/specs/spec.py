"""Network specs: one typed, immutable, serializable description for every family.

A :class:`NetSpec` is ``stem -> stages -> head``, the AnyNet design space of pycls extended
with MBConv stages so that it also covers EfficientNet:

* stem: ``simple`` (3x3 stride-2 conv, BN, act; RegNet/EfficientNet), ``res`` (7x7 stride-2
  conv, BN, act, 3x3 stride-2 max-pool; ResNet) or ``cifar`` (3x3 stride-1 conv, BN, act);
* stages: ``depth`` blocks of one ``block`` type at ``width`` output channels; the first block
  has ``stride`` and changes the width;
* head: optional 1x1 conv (``head_width`` > 0) + BN + act, global average pool, optional
  dropout, fully-connected classifier with bias.

Block types (stride on the 3x3 / depthwise conv):

* ``basic``: two 3x3 convs (CIFAR ResNets); projection shortcut when the shape changes.
* ``vanilla``: two 3x3 convs, each with BN and act, and no shortcut at all (pycls's
  ``vanilla_block``, AnyNet's plain VGG-style block).
* ``bottleneck``: 1x1 -> 3x3 grouped -> [SE] -> 1x1, bottleneck width ``round(width *
  bottleneck)``, ``groups = bottleneck width // group_width``; projection shortcut when the
  shape changes; activation after the add (ResNet, ResNeXt, RegNetX, RegNetY with SE).
* ``linear_bottleneck``: like ``bottleneck`` but no activation after the add and no projection:
  the skip exists only when the shape is unchanged (RegNetZ, with ``bottleneck`` > 1).
* ``mbconv``: 1x1 expand (skipped when ``expansion`` is 1) -> kxk depthwise -> SE -> 1x1 linear
  projection; skip when stride is 1 and the width is unchanged (EfficientNet).

SE hidden widths follow the reference: ``round(se_ratio * C_in)`` for (linear) bottlenecks and
``int(se_ratio * C_in)`` for MBConv, where ``C_in`` is the block's input width.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netscale.errors import NetscaleError
from netscale.specs.compat import bottleneck_width, conv_groups
from netscale.util import jsonio
from netscale.util.io import atomic_write_text
from netscale.util.safeload import load_json, load_yaml

STEM_TYPES = ("simple", "res", "cifar")
BLOCK_TYPES = ("basic", "bottleneck", "linear_bottleneck", "mbconv", "vanilla")
GROUPED_BLOCKS = ("bottleneck", "linear_bottleneck")  # blocks with a grouped conv
ACTIVATIONS = ("relu", "silu")
SPEC_FORMAT_VERSION = 1


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _unknown_fields(given: Mapping[str, Any], cls: Any) -> tuple[str, str] | None:
    """(the keys of ``given`` that are not fields of the dataclass ``cls``, its fields), both
    comma-separated and sorted; None when every key is a field."""
    known = {f.name for f in dataclasses.fields(cls)}
    bad = sorted(map(str, set(given) - known))
    return (", ".join(bad), ", ".join(sorted(known))) if bad else None


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True)
class StemSpec:
    """The network stem: its ``type`` (simple, res, cifar) and output ``width``."""

    type: str = "simple"
    width: int = 32

    def validate(self, where: str = "stem") -> None:
        if self.type not in STEM_TYPES:
            raise NetscaleError(
                f"{where}.type is {self.type!r}; expected one of {', '.join(STEM_TYPES)}"
            )
        if not _is_int(self.width) or self.width < 1:
            raise NetscaleError(f"{where}.width must be a positive integer, got {self.width!r}")

    def stride_out(self, resolution: int) -> int:
        """Spatial side after the stem for a square input of side ``resolution``."""
        if self.type == "cifar":
            return resolution
        h = (resolution - 1) // 2 + 1
        return (h - 1) // 2 + 1 if self.type == "res" else h


@dataclass(frozen=True)
class StageSpec:
    """One stage: ``depth`` blocks of type ``block`` with ``width`` output channels.

    ``bottleneck`` is the bottleneck multiplier (inner width = round(width * bottleneck)) of
    (linear) bottleneck blocks; ``group_width`` their channels per group (0 means one group);
    ``kernel`` and ``expansion`` apply to MBConv; ``se_ratio`` > 0 adds squeeze-excite.
    """

    block: str
    depth: int
    width: int
    stride: int = 1
    bottleneck: float = 1.0
    group_width: int = 0
    kernel: int = 3
    expansion: float = 1.0
    se_ratio: float = 0.0

    def validate(self, where: str = "stage") -> None:
        if self.block not in BLOCK_TYPES:
            raise NetscaleError(
                f"{where}.block is {self.block!r}; expected one of {', '.join(BLOCK_TYPES)}"
            )
        for name in ("depth", "width", "stride", "kernel"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise NetscaleError(f"{where}.{name} must be a positive integer, got {value!r}")
        if self.kernel % 2 == 0:
            raise NetscaleError(f"{where}.kernel must be odd (same padding), got {self.kernel}")
        if not _is_int(self.group_width) or self.group_width < 0:
            raise NetscaleError(
                f"{where}.group_width must be a non-negative integer (0 = one group), "
                f"got {self.group_width!r}"
            )
        for name in ("bottleneck", "expansion"):
            value = getattr(self, name)
            if not _is_num(value) or value <= 0:
                raise NetscaleError(f"{where}.{name} must be a positive number, got {value!r}")
        if not _is_num(self.se_ratio) or not 0 <= self.se_ratio < 1:
            raise NetscaleError(f"{where}.se_ratio must be in [0, 1), got {self.se_ratio!r}")
        if self.block in ("bottleneck", "linear_bottleneck"):
            w_b = self.bottleneck_width
            if w_b < 1:
                raise NetscaleError(
                    f"{where}: bottleneck width round({self.width} * {self.bottleneck}) is 0; "
                    "increase width or bottleneck"
                )
            if self.group_width and w_b % self.group_width:
                raise NetscaleError(
                    f"{where}: group_width {self.group_width} does not divide the bottleneck "
                    f"width {w_b} (= round({self.width} * {self.bottleneck})); use a divisor "
                    f"of {w_b}"
                )
        if self.block in ("basic", "vanilla") and self.se_ratio:
            raise NetscaleError(
                f"{where}: {self.block} blocks have no squeeze-excite; set se_ratio 0"
            )

    @property
    def bottleneck_width(self) -> int:
        """Inner width of a (linear) bottleneck block: round(width * bottleneck)."""
        return bottleneck_width(self.width, self.bottleneck)

    @property
    def groups(self) -> int:
        """Number of groups of the 3x3 conv of a (linear) bottleneck block."""
        return conv_groups(self.bottleneck_width, self.group_width)

    @property
    def effective_group_width(self) -> int:
        """Channels per group of the 3x3 conv (the bottleneck width when there is one group)."""
        return self.group_width or self.bottleneck_width


@dataclass(frozen=True)
class NetSpec:
    """A whole network. Immutable; use :meth:`replace` to derive variants."""

    name: str
    stem: StemSpec
    stages: tuple[StageSpec, ...]
    head_width: int = 0
    num_classes: int = 1000
    resolution: int = 224
    activation: str = "relu"
    in_channels: int = 3
    dropout: float = 0.0
    family: str = "anynet"
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        # Accept lists for convenience but store tuples so the spec stays immutable/hashable.
        if not isinstance(self.stages, tuple):
            object.__setattr__(self, "stages", tuple(self.stages))
        if isinstance(self.stem, Mapping):
            object.__setattr__(self, "stem", StemSpec(**self.stem))

    # ----------------------------------------------------------------- validation
    def validate(self) -> NetSpec:
        """Checks every field; raises :class:`NetscaleError` naming the first bad one."""
        if not isinstance(self.name, str) or not self.name:
            raise NetscaleError("spec name must be a non-empty string")
        if not isinstance(self.stem, StemSpec):
            raise NetscaleError("spec stem must be a mapping with 'type' and 'width'")
        self.stem.validate()
        if not self.stages:
            raise NetscaleError("spec has no stages; give at least one stage")
        for i, stage in enumerate(self.stages):
            if not isinstance(stage, StageSpec):
                raise NetscaleError(f"stages[{i}] must be a mapping of stage fields")
            stage.validate(f"stages[{i}]")
        for name in ("num_classes", "resolution", "in_channels"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise NetscaleError(f"{name} must be a positive integer, got {value!r}")
        if not _is_int(self.head_width) or self.head_width < 0:
            raise NetscaleError(
                f"head_width must be a non-negative integer (0 = no head conv), "
                f"got {self.head_width!r}"
            )
        if self.activation not in ACTIVATIONS:
            raise NetscaleError(
                f"activation is {self.activation!r}; expected one of {', '.join(ACTIVATIONS)}"
            )
        if not _is_num(self.dropout) or not 0 <= self.dropout < 1:
            raise NetscaleError(f"dropout must be in [0, 1), got {self.dropout!r}")
        return self

    # ----------------------------------------------------------------- convenience
    def replace(self, **changes: Any) -> NetSpec:
        """A copy with some top-level fields changed (``stages`` may be a list)."""
        return dataclasses.replace(self, **changes)

    @property
    def depths(self) -> list[int]:
        return [s.depth for s in self.stages]

    @property
    def widths(self) -> list[int]:
        return [s.width for s in self.stages]

    @property
    def group_widths(self) -> list[int]:
        return [s.effective_group_width if s.block in GROUPED_BLOCKS else 0 for s in self.stages]

    @property
    def num_blocks(self) -> int:
        return sum(s.depth for s in self.stages)

    @property
    def scales_stem_and_head(self) -> bool:
        """EfficientNet-style nets (MBConv stages) scale stem and head widths with width."""
        return all(s.block == "mbconv" for s in self.stages)

    # ----------------------------------------------------------------- serialization
    def to_dict(self) -> dict[str, Any]:
        """A plain dict (JSON/YAML-ready) that :meth:`from_dict` turns back into this spec."""
        out: dict[str, Any] = {
            "format": SPEC_FORMAT_VERSION,
            "name": self.name,
            "family": self.family,
            "resolution": self.resolution,
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "activation": self.activation,
            "stem": {"type": self.stem.type, "width": self.stem.width},
            "stages": [_stage_to_dict(s) for s in self.stages],
            "head_width": self.head_width,
            "dropout": self.dropout,
        }
        if self.meta:
            out["meta"] = dict(self.meta)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "spec") -> NetSpec:
        """Builds and validates a spec from :meth:`to_dict` output (unknown keys are errors)."""
        if not isinstance(data, Mapping):
            raise NetscaleError(
                f"{source}: expected a mapping of spec fields, got {type(data).__name__}"
            )
        data = dict(data)
        data.pop("format", None)
        if unknown := _unknown_fields(data, cls):
            raise NetscaleError(
                f"{source}: unknown spec field(s) {unknown[0]}; known fields are {unknown[1]}")
        for key in ("name", "stem", "stages"):
            if key not in data:
                raise NetscaleError(f"{source}: missing required field {key!r}")
        stem = data["stem"]
        if not isinstance(stem, Mapping):
            raise NetscaleError(f"{source}: stem must be a mapping with 'type' and 'width'")
        if unknown := _unknown_fields(stem, StemSpec):
            raise NetscaleError(f"{source}: unknown stem field(s) {unknown[0]}")
        data["stem"] = StemSpec(**stem)
        stages = data["stages"]
        if not isinstance(stages, (list, tuple)):
            raise NetscaleError(f"{source}: stages must be a list of stage mappings")
        parsed = []
        for i, st in enumerate(stages):
            if not isinstance(st, Mapping):
                raise NetscaleError(f"{source}: stages[{i}] must be a mapping of stage fields")
            if unknown := _unknown_fields(st, StageSpec):
                raise NetscaleError(f"{source}: unknown field(s) {unknown[0]} in stages[{i}]; "
                                    f"known fields are {unknown[1]}")
            for req in ("block", "depth", "width"):
                if req not in st:
                    raise NetscaleError(f"{source}: stages[{i}] is missing {req!r}")
            parsed.append(StageSpec(**st))
        data["stages"] = tuple(parsed)
        if "meta" in data and not isinstance(data["meta"], Mapping):
            raise NetscaleError(f"{source}: meta must be a mapping")
        spec = cls(**data)
        try:
            return spec.validate()
        except NetscaleError as exc:
            raise NetscaleError(f"{source}: {exc}") from None

    def to_json(self, indent: int | None = 2) -> str:
        return jsonio.dumps(self.to_dict(), indent=indent)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

    @classmethod
    def from_json(cls, text: str, *, source: str = "spec") -> NetSpec:
        return cls.from_dict(load_json(text, source), source=source)

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "spec") -> NetSpec:
        return cls.from_dict(load_yaml(text, source), source=source)

    def save(self, path: str | Path) -> Path:
        """Writes the spec as YAML (``.yaml``/``.yml``) or JSON (anything else), atomically."""
        path = Path(path)
        text = self.to_yaml() if path.suffix.lower() in (".yaml", ".yml") else self.to_json()
        atomic_write_text(path, text)
        return path


_STAGE_DEFAULTS = {f.name: f.default for f in dataclasses.fields(StageSpec)}


def _stage_to_dict(stage: StageSpec) -> dict[str, Any]:
    # Keep files readable: optional fields at their default value are left out (from_dict
    # restores them), so the round trip is exact.
    d = dataclasses.asdict(stage)
    for key in ("bottleneck", "group_width", "kernel", "expansion", "se_ratio", "stride"):
        if d[key] == _STAGE_DEFAULTS[key]:
            del d[key]
    return d


def network_key(spec: Mapping[str, Any]) -> str:
    """What makes two scaled specs the same network: everything in the spec dict but its name
    and metadata (stages, stem, head, resolution, classes, channels...). Used to plan, time
    and judge one network once, whichever strategies produced it."""
    return jsonio.dumps({k: v for k, v in spec.items() if k not in ("name", "meta")},
                        sort_keys=True)
