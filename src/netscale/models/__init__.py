"""Building specs into ``torch.nn.Module`` objects."""

from netscale.models.builder import FactorySpec, ModelSpec, Net, build_model

__all__ = ["FactorySpec", "ModelSpec", "Net", "build_model"]
