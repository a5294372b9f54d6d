"""Exact complexity: analytic for specs, measured for any ``torch.nn.Module``.

Flops are multiply-adds (one MAC = one flop), at batch size 1, as in the paper.
"""

from netscale.complexity.analytic import complexity, complexity_totals
from netscale.complexity.record import FLOPS_UNIT, Complexity, ComplexityRecord

__all__ = ["FLOPS_UNIT", "Complexity", "ComplexityRecord", "complexity",
           "complexity_totals", "count_measured", "measure_spec", "meta_copy",
           "register_op_counter", "registered_op_counters", "unregister_op_counter"]

_MEASURED = {"count_measured", "measure_spec", "meta_copy", "register_op_counter",
             "registered_op_counters", "unregister_op_counter"}


def __getattr__(name: str) -> object:
    # The measured counter needs torch; import it only when asked for.
    if name in _MEASURED:
        from netscale.complexity import measured

        return getattr(measured, name)
    raise AttributeError(f"module 'netscale.complexity' has no attribute {name!r}")
