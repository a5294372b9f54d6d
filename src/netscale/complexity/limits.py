"""Lower bounds from exact counts, used to refuse (one line, before any work) a model or batch
that cannot fit in memory or cannot be measured within its time budget on this machine.

Memory is counted in float32 bytes; flops are multiply-adds.
"""

from __future__ import annotations

import os
from typing import Any

from netscale.complexity.analytic import complexity, complexity_totals
from netscale.errors import NetscaleError
from netscale.specs import NetSpec
from netscale.util.validate import device_memory, fmt_bytes

BYTES_PER_ELEMENT = 4  # float32


def memory_lower_bound(spec: Any, batch_size: int = 1, *, train: bool = False,
                       resolution: int | None = None) -> int:
    """Bytes a forward (``train``: forward + backward) pass of ``spec`` needs *at least*, in
    float32, from its analytic counts (no model is built).

    Inference: the weights, the input batch and the stem's output; training: weights and
    their gradients, the input and every conv/linear output (autograd keeps them for the
    backward pass). A lower bound: real use is higher (BN/activation outputs, optimizer state,
    the allocator), so a refusal based on it never refuses something that would fit.
    """
    rec = complexity(spec, resolution)
    r = rec.resolution
    inp = spec.in_channels * r * r
    if train:
        elems = 2 * rec.params + batch_size * (inp + rec.acts)
    else:  # the stem conv's input and output exist at the same time
        stride = 1 if spec.stem.type == "cifar" else 2
        h = (r - 1) // stride + 1
        elems = rec.params + batch_size * (inp + spec.stem.width * h * h)
    return int(elems) * BYTES_PER_ELEMENT


def check_fits_memory(spec: Any, batch_size: int, *, train: bool, what: str,
                      device: str | None = None, hint: str = "",
                      resolution: int | None = None) -> None:
    """Refuses (one line) a model/batch whose lower-bound memory exceeds what is available.
    A module-factory model (not a NetSpec) has no analytic count and is not checked here;
    an out-of-memory error while it runs is still one line."""
    if not isinstance(spec, NetSpec):
        return
    avail = device_memory(device)
    if avail is None:
        return
    need = memory_lower_bound(spec, batch_size, train=train, resolution=resolution)
    if need > avail:
        raise NetscaleError(
            f"{what} needs at least {fmt_bytes(need)} of memory "
            f"({'training' if train else 'inference'} at batch size {batch_size}, float32) "
            f"but only {fmt_bytes(avail)} is available"
            f"{'; ' + hint if hint else ''}")


def largest_fitting_batch(spec: Any, batch_size: int, *, train: bool,
                          device: str | None = None) -> int:
    """``batch_size`` halved (as ``--retry-oom`` would) until its lower bound fits; 0 if even
    batch size 1 cannot fit."""
    avail = device_memory(device)
    if avail is None:
        return batch_size
    bs = batch_size
    while bs >= 1:
        if memory_lower_bound(spec, bs, train=train) <= avail:
            return bs
        bs //= 2
    return 0


#: No CPU core does more float32 multiply-adds per second than this (AVX-512, two FMA units,
#: ~3 GHz: 16 * 2 * 3e9 ≈ 1e11); no GPU more than ``GPU_MACS_PER_S``.
CPU_MACS_PER_CORE = 1e11
GPU_MACS_PER_S = 1e15


def check_bench_time(spec: Any, batch_size: int, *, train: bool, device: str | None,
                     budget_s: float, warmup: int, what: str) -> None:
    """Refuses a measurement whose warm-up alone cannot end near its budget: the time per
    iteration is bounded below by flops / the fastest conceivable rate of the hardware."""
    flops = complexity_totals(spec).flops * batch_size * (3 if train else 1)
    rate = GPU_MACS_PER_S if device and str(device).startswith("cuda") else \
        CPU_MACS_PER_CORE * (os.cpu_count() or 1)
    per_iter = flops / rate
    least = per_iter * (max(warmup, 1) + 1)
    if least > 10 * budget_s + 10:
        raise NetscaleError(
            f"{what} at batch size {batch_size}: one {'training step' if train else 'forward pass'}"
            f" is {flops:.3g} multiply-adds, at least {per_iter:,.1f} s on this machine, so the "
            f"measurement cannot keep to --budget {budget_s:g} s; lower --batch-size (or "
            "--resolution)")
