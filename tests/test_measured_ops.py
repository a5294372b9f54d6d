"""Exact counts of the matrix-vector, vector and low-precision matrix ops of the measured counter.

Each tiny module calls one op on the input (batch 1); the expected flops (multiply-adds) and
acts (output elements) are written out from the op's shapes.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from netscale.complexity import count_measured


class OneOp(nn.Module):
    """``fn(x, *buffers)`` with fixed buffers (weights) of the given shapes and dtypes."""

    def __init__(self, fn: Callable[..., torch.Tensor],
                 *shapes: tuple[tuple[int, ...], torch.dtype]) -> None:
        super().__init__()
        self.fn = fn
        self.names = []
        for i, (shape, dtype) in enumerate(shapes):
            name = f"b{i}"
            self.register_buffer(name, torch.zeros(shape, dtype=dtype))
            self.names.append(name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x, *(getattr(self, n) for n in self.names))


F32 = torch.float32


def count(model: nn.Module, shape: tuple[int, ...], **kw: bool) -> tuple[int, int, dict[str, int]]:
    rec = count_measured(model, shape, per_module=False, **kw)
    return rec.flops, rec.acts, dict(rec.uncounted)


def test_mv_is_rows_times_columns() -> None:
    m = OneOp(lambda x, w: torch.mv(w, x[0]), ((7, 5), F32))
    assert count(m, (5,)) == (35, 7, {})


def test_addmv_adds_the_vector_as_a_bias() -> None:
    m = OneOp(lambda x, b, w: torch.addmv(b, w, x[0]), ((7,), F32), ((7, 5), F32))
    assert count(m, (5,)) == (35 + 7, 7, {})
    assert count(m, (5,), count_bias=False)[0] == 35


@pytest.mark.parametrize("op", [torch.dot, torch.vdot])
def test_dot_is_one_multiply_add_per_element(op: Callable[..., torch.Tensor]) -> None:
    m = OneOp(lambda x, v: op(x[0], v), ((9,), F32))
    assert count(m, (9,)) == (9, 1, {})


def test_addr_is_one_multiply_add_per_output() -> None:
    m = OneOp(lambda x, base, v: torch.addr(base, x[0], v), ((4, 6), F32), ((6,), F32))
    assert count(m, (4,)) == (24, 24, {})


def test_addbmm_sums_the_batch_of_products() -> None:
    # base (3, 5) + sum_b (b: 4) of x (4, 3, 2) @ w (4, 2, 5)
    m = OneOp(lambda x, base, w: torch.addbmm(base, x[0], w), ((3, 5), F32), ((4, 2, 5), F32))
    assert count(m, (4, 3, 2)) == (4 * 3 * 2 * 5 + 15, 15, {})
    assert count(m, (4, 3, 2), count_bias=False)[0] == 4 * 3 * 2 * 5


@pytest.mark.parametrize("use_gelu", [False, True])
def test_fused_addmm_activation_counts_as_addmm(use_gelu: bool) -> None:
    def fn(x: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten._addmm_activation(b, x, w, use_gelu=use_gelu)

    m = OneOp(fn, ((6,), F32), ((8, 6), F32))
    assert count(m, (8,)) == (8 * 6 + 6, 6, {})


def test_int8_matmul() -> None:
    m = OneOp(lambda x, w: torch._int_mm(x[0].to(torch.int8), w), ((64, 16), torch.int8))
    assert count(m, (32, 64)) == (32 * 64 * 16, 32 * 16, {})


@pytest.mark.skipif(not hasattr(torch, "float8_e4m3fn"), reason="this torch has no float8")
def test_fp8_scaled_matmul_with_and_without_bias() -> None:
    fp8 = torch.float8_e4m3fn

    def plain(x: torch.Tensor, w: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return torch._scaled_mm(x[0].to(fp8), w.t(), s, s, out_dtype=torch.bfloat16)

    def biased(x: torch.Tensor, w: torch.Tensor, s: torch.Tensor,
               b: torch.Tensor) -> torch.Tensor:
        return torch._scaled_mm(x[0].to(fp8), w.t(), s, s, bias=b, out_dtype=torch.bfloat16)

    shapes = (((16, 64), fp8), ((), F32))
    assert count(OneOp(plain, *shapes), (32, 64)) == (32 * 64 * 16, 32 * 16, {})
    with_bias = OneOp(biased, *shapes, ((16,), torch.bfloat16))
    assert count(with_bias, (32, 64)) == (32 * 64 * 16 + 32 * 16, 32 * 16, {})
    assert count(with_bias, (32, 64), count_bias=False)[0] == 32 * 64 * 16


def test_adaptive_max_pool_outputs_are_activations_like_max_pool() -> None:
    m = OneOp(lambda x: torch.nn.functional.adaptive_max_pool2d(x, (3, 2)))
    assert count(m, (4, 9, 8)) == (0, 4 * 3 * 2, {})
    fixed = OneOp(lambda x: torch.nn.functional.max_pool2d(x, 3, 3))
    assert count(fixed, (4, 9, 9)) == (0, 4 * 3 * 3, {})
