"""Zoo models as importable factories: ``netscale.zoo.factory:timm__resnet18`` is the
:class:`~netscale.zoo.scale.ZooFactory` of ``timm:resnet18`` (``ZOO__NAME``), so that study
trials, which rebuild their model from a ``package.module:FACTORY`` string in any worker, can
name a zoo model."""

from __future__ import annotations

from typing import Any

from netscale.zoo.scale import ZooFactory

MODULE = "netscale.zoo.factory"


def target(zoo: str, name: str) -> str:
    """The ``package.module:FACTORY`` string of a zoo model."""
    return f"{MODULE}:{zoo}__{name}"


def __getattr__(attr: str) -> Any:
    zoo, sep, name = attr.partition("__")
    if not sep or zoo not in ("timm", "torchvision") or not name:
        raise AttributeError(attr)

    return ZooFactory(f"{zoo}:{name}")
