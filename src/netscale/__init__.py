"""netscale: scale neural networks fast and accurately.

Describe networks as specs, count their flops (multiply-adds), parameters and activations
exactly, scale them with any strategy of "Fast and Accurate Model Scaling" (Dollár, Singh,
Girshick, CVPR 2021), measure their runtime, train them, and run whole scaling studies.
"""

from __future__ import annotations

__version__ = "0.1.0"

from netscale.errors import NetscaleError

__all__ = ["NetscaleError", "__version__"]
