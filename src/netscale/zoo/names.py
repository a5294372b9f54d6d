"""Zoo model names: ``timm:NAME`` and ``torchvision:NAME``, optionally with constructor
arguments inline (``timm:vit_small_patch16_224:img_size=160,drop_path_rate=0``).

A name is parsed into a :class:`ZooModel`; :meth:`ZooModel.build` calls the zoo's own
constructor with ``pretrained=False`` (timm) or ``weights=None`` (torchvision): no weights are
ever downloaded. :meth:`ZooModel.input_shape` is the model's own input: timm's
``pretrained_cfg["input_size"]`` (with ``img_size``/``in_chans`` given inline taking
precedence), torchvision's evaluation crop of its default weights (224 for most, 299 for
Inception v3), read from the weights' metadata without fetching them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from netscale.errors import NetscaleError
from netscale.zoo.code import call

ZOOS = ("timm", "torchvision")
INSTALL_HINT = "pip install 'netscale[zoo]'"


def is_zoo_name(text: Any) -> bool:
    """Whether ``text`` names a zoo model (``timm:...`` or ``torchvision:...``)."""
    return isinstance(text, str) and any(text.startswith(f"{z}:") for z in ZOOS)


def require(zoo: str) -> Any:
    """Imports ``zoo`` (timm or torchvision), or one line naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(zoo)
    except ImportError as exc:
        raise NetscaleError(
            f"{zoo} models need {zoo} installed ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'not found'}); run: {INSTALL_HINT}"
        ) from None
    except Exception as exc:  # e.g. torchvision built for another torch ("operator ... nms")
        raise NetscaleError(
            f"{zoo} is installed but does not import ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); install matching torch and "
            f"{zoo} builds: {INSTALL_HINT}"
        ) from None


def namespace() -> dict[str, Any]:
    """What zoo call expressions are evaluated in: ``torch``, ``functools`` and the zoos."""
    import importlib

    ns: dict[str, Any] = {"torch": torch, "functools": functools}
    for zoo in ZOOS:
        try:
            ns[zoo] = importlib.import_module(zoo)
        except Exception:  # an expression naming it fails with one line (build_call)
            continue
    return ns


def _value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


@dataclass(frozen=True)
class ZooModel:
    """A zoo model by name, with fixed constructor keyword arguments."""

    zoo: str
    name: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        args = ",".join(f"{k}={v}" for k, v in self.kwargs.items())
        return f"{self.zoo}:{self.name}" + (f":{args}" if args else "")

    def with_kwargs(self, **kwargs: Any) -> ZooModel:
        return ZooModel(self.zoo, self.name, {**self.kwargs, **kwargs})

    def module(self) -> Any:
        """The zoo's package (imported, or one line naming the extra to install)."""
        return require(self.zoo)

    def call(self) -> str:
        """The zoo's own call that builds this model (a Python expression)."""

        if self.zoo == "timm":
            return call("timm.create_model", self.name, pretrained=False, **self.kwargs)
        return call("torchvision.models.get_model", self.name, weights=None, **self.kwargs)

    def check(self) -> ZooModel:
        """Checks that the zoo knows the name (one line with close matches if not)."""
        import difflib

        names = available(self.zoo)
        # timm names may carry a pretrained tag (resnet50.a1_in1k): the architecture precedes it
        arch = self.name.partition(".")[0] if self.zoo == "timm" else self.name
        if arch not in names:
            close = difflib.get_close_matches(self.name, names, n=4, cutoff=0.6)
            hint = f"; closest: {', '.join(close)}" if close else ""
            raise NetscaleError(f"{self.zoo} has no model {self.name!r}{hint}")
        return self

    def build(self, device: Any = None) -> Any:
        """The ``nn.Module`` (random initialisation; on ``device``, e.g. ``"meta"``, if given)."""
        self.check()
        return build_call(self.call(), self.label, device)

    def input_shape(self) -> tuple[int, int, int]:
        """The model's own input shape ``(C, H, W)``."""
        kw = self.kwargs
        if self.zoo == "timm":
            cfg = _timm_input_size(self.name)
            c = int(kw.get("in_chans", cfg[0]))
            img = kw.get("img_size")
            if isinstance(img, int):
                return (c, img, img)
            if isinstance(img, (list, tuple)) and len(img) == 2:
                return (c, int(img[0]), int(img[1]))
            return (c, int(cfg[1]), int(cfg[2]))
        side = kw.get("image_size") or _torchvision_crop(self.name)
        return (3, int(side), int(side))


def build_call(expr: str, label: str, device: Any = None) -> Any:
    """Evaluates a zoo call expression (see :func:`namespace`), with one-line errors."""
    import warnings

    ns = namespace()
    try:
        with warnings.catch_warnings():
            # zoo constructors warn about initialisation defaults (e.g. Inception v3)
            warnings.simplefilter("ignore", FutureWarning)
            if device is not None:
                try:
                    with torch.device(device):
                        return eval(expr, ns)
                except NotImplementedError:
                    # an initialiser that needs real data (e.g. .item(), copies): build on the CPU
                    if str(device) != "meta":
                        raise
                    with torch.device("cpu"):
                        return eval(expr, ns)
            return eval(expr, ns)
    except NetscaleError:
        raise
    except Exception as exc:
        msg = str(exc).splitlines()[0] if str(exc) else ""
        raise NetscaleError(f"building {label} failed: {type(exc).__name__}: {msg}") from None


@functools.lru_cache(maxsize=2)
def available(zoo: str) -> tuple[str, ...]:
    """Every model name the zoo constructs."""
    mod = require(zoo)
    if zoo == "timm":
        return tuple(mod.list_models())
    return tuple(mod.models.list_models(module=mod.models))


@functools.lru_cache(maxsize=256)
def _timm_input_size(name: str) -> tuple[int, int, int]:
    timm = require("timm")
    try:
        cfg = timm.models.get_pretrained_cfg(name)
    except Exception:
        cfg = None
    size = getattr(cfg, "input_size", None) if cfg is not None else None
    return (int(size[0]), int(size[1]), int(size[2])) if size else (3, 224, 224)


@functools.lru_cache(maxsize=256)
def _torchvision_crop(name: str) -> int:
    tv = require("torchvision")
    try:
        weights = tv.models.get_model_weights(name).DEFAULT
        crop = weights.transforms.keywords.get("crop_size")
    except Exception:
        crop = None
    if isinstance(crop, (list, tuple)):
        crop = crop[0]
    return int(crop) if crop else 224


def parse_zoo_name(text: str) -> ZooModel:
    """``"timm:NAME[:key=value,...]"`` -> :class:`ZooModel` (values are YAML scalars or lists)."""
    zoo, _, rest = text.partition(":")
    if zoo not in ZOOS:
        raise NetscaleError(f"{text!r} is not a zoo model; write timm:NAME or torchvision:NAME")
    name, sep, args = rest.partition(":")
    name = name.strip()
    if not name:
        raise NetscaleError(f"{text!r} names no model; e.g. {zoo}:resnet50")
    kwargs: dict[str, Any] = {}
    if sep:
        parts: list[str] = []
        depth, cur = 0, ""
        for ch in args:
            depth += (ch in "[(") - (ch in "])")
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        parts.append(cur)
        for part in parts:
            key, eq, raw = part.partition("=")
            key = key.strip()
            if not eq or not key.isidentifier() or not raw.strip():
                raise NetscaleError(f"{text}: constructor argument {part.strip()!r} must be "
                                    "key=value (e.g. drop_path_rate=0)")
            value = _value(raw.strip())
            kwargs[key] = tuple(value) if isinstance(value, list) else value
    for bad in ("pretrained", "weights", "pretrained_cfg_overlay", "checkpoint_path"):
        if bad in kwargs:
            raise NetscaleError(f"{text}: {bad} is not taken; netscale never loads weights "
                                "(the model is randomly initialised)")
    return ZooModel(zoo, name, kwargs)
