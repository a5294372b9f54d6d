"""Exact complexity: analytic for specs, measured for any ``torch.nn.Module``.

Flops are multiply-adds (one MAC = one flop), at batch size 1, as in the paper.
"""

from netscale.complexity.analytic import complexity, count_tuple
from netscale.complexity.record import FLOPS_UNIT, Complexity, ComplexityRecord

__all__ = ["FLOPS_UNIT", "Complexity", "ComplexityRecord", "complexity", "count_tuple"]
