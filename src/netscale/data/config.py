"""What data to train on and how to feed it: :class:`DataConfig`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netscale.errors import NetscaleError
from netscale.util import serial

AUGMENT_MODES = ("auto", "crop", "rrc", "none")


@dataclass(frozen=True)
class DataConfig:
    """A dataset and its input pipeline. Serializes with :meth:`to_dict` / :meth:`from_dict`.

    ``name`` is a known dataset (``fashion-mnist``, ``mnist``, ``cifar10``, ``cifar100``,
    ``digits``) or a folder; ``path`` (if given) is the folder and wins over the search.

    * ``subset`` / ``val_subset``: use at most N training / validation images (a seeded random
      choice, the same in every run with the same ``split_seed``);
    * ``val_fraction``: share of the training images held out (seeded) when the dataset has
      no validation split of its own;
    * ``resolution``: input side in pixels (None: the spec's resolution);
    * ``channels``: input channels fed to the model (None: the spec's ``in_channels``); greyscale
      data is repeated to 3 channels, colour data converted to luminance for 1;
    * ``augment``: ``crop`` (pad-and-crop, pad 1/8 of the side), ``rrc`` (random-resized-crop
      with area in [``min_scale``, 1] and aspect ratio in [3/4, 4/3]), ``none``; ``auto`` is
      ``crop`` for small in-memory sets and ``rrc`` for ImageFolder trees;
    * ``flip``: random horizontal flips (None: on, except for digits/MNIST-like sets);
    * ``crop_pct``: test-time centre-crop share of the shorter side (None: 1.0 for small sets,
      0.875 for ImageFolder trees);
    * ``workers``: decoding processes for ImageFolder trees (None: automatic, 0: in-process).
    """

    name: str | None = None
    path: str | None = None
    subset: int | None = None
    val_subset: int | None = None
    val_fraction: float = 0.1
    split_seed: int = 0
    resolution: int | None = None
    channels: int | None = None
    augment: str = "auto"
    min_scale: float | None = None
    flip: bool | None = None
    crop_pct: float | None = None
    normalize: bool = True
    workers: int | None = None

    def __post_init__(self) -> None:
        self.validate()

    @property
    def source(self) -> str:
        """What the user named: the path if given, else the name."""
        return str(self.path or self.name or "")

    def validate(self) -> DataConfig:
        if not (self.name or self.path):
            raise NetscaleError(
                "data: give a dataset name (fashion-mnist, mnist, cifar10, cifar100, digits) "
                "or a folder path"
            )
        for key in ("subset", "val_subset", "resolution"):
            v = getattr(self, key)
            if v is not None and v < 1:
                raise NetscaleError(f"data.{key} must be a positive integer, got {v}")
        if self.resolution is not None and self.resolution < 4:
            raise NetscaleError(f"data.resolution must be at least 4 px, got {self.resolution}")
        if not 0.0 < self.val_fraction < 1.0:
            raise NetscaleError(f"data.val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.channels is not None and self.channels not in (1, 3):
            raise NetscaleError(f"data.channels must be 1 or 3, got {self.channels}")
        if self.augment not in AUGMENT_MODES:
            raise NetscaleError(
                f"data.augment is {self.augment!r}; expected one of {', '.join(AUGMENT_MODES)}"
            )
        if self.min_scale is not None and not 0.0 < self.min_scale <= 1.0:
            raise NetscaleError(f"data.min_scale must be in (0, 1], got {self.min_scale}")
        if self.crop_pct is not None and not 0.0 < self.crop_pct <= 1.0:
            raise NetscaleError(f"data.crop_pct must be in (0, 1], got {self.crop_pct}")
        if self.workers is not None and self.workers < 0:
            raise NetscaleError(f"data.workers must be >= 0, got {self.workers}")
        return self

    def replace(self, **changes: Any) -> DataConfig:
        import dataclasses

        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return serial.to_dict(self)

    @classmethod
    def from_dict(cls, data: Any) -> DataConfig:
        if isinstance(data, str):
            return cls(name=data)
        return serial.from_dict(cls, data, "data")

    def identity(self) -> dict[str, Any]:
        """Fields that change what a model sees (a resumed run must keep them)."""
        d = self.to_dict()
        d.pop("workers")
        return d
