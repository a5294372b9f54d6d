"""Building specs into ``torch.nn.Module`` objects."""

from netscale.models.builder import Net, build_model

__all__ = ["Net", "build_model"]
