"""Network specs, the model families and the named-model registry."""

from netscale.specs import families  # noqa: F401  (registers the named models)
from netscale.specs.compat import adjust_compatibility, compatible_width, snap_group_width
from netscale.specs.registry import canonical_name, get_spec, list_models, model_family, register
from netscale.specs.resolve import resolve_spec
from netscale.specs.spec import BLOCK_TYPES, STEM_TYPES, NetSpec, StageSpec, StemSpec

__all__ = [
    "BLOCK_TYPES",
    "STEM_TYPES",
    "NetSpec",
    "StageSpec",
    "StemSpec",
    "adjust_compatibility",
    "canonical_name",
    "compatible_width",
    "get_spec",
    "list_models",
    "model_family",
    "register",
    "resolve_spec",
    "snap_group_width",
]
