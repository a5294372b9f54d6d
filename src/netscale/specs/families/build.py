"""What every family function does to assemble its spec: one stage per row of per-stage
columns, then a validated :class:`~netscale.specs.NetSpec` labelled with the family."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from netscale.specs.spec import NetSpec, StageSpec, StemSpec


def stage_specs(block: str, columns: Mapping[str, Sequence[Any]],
                **common: Any) -> tuple[StageSpec, ...]:
    """One ``block`` stage per row of ``columns`` (per-stage values by StageSpec field, e.g.
    ``{"depth": [...], "width": [...]}``; as long as the shortest column), each stage also
    with the ``common`` fields."""
    names = list(columns)
    return tuple(StageSpec(block=block, **dict(zip(names, row)), **common)
                 for row in zip(*columns.values()))


def family_spec(family: str, name: str, stem: StemSpec, stages: tuple[StageSpec, ...],
                **fields: Any) -> NetSpec:
    """The validated spec of a ``family`` model; ``fields`` are its other NetSpec fields."""
    return NetSpec(name=name, stem=stem, stages=stages, family=family, **fields).validate()
