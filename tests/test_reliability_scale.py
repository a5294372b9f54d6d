"""Scaling that is never silently wrong: a factory's failures are reported as its own (not as
coarse rounding), build failures do not stop the search, the reported multipliers rebuild
the counted network when printed, and a resolution step larger than the input is refused."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

import factories
from netscale.complexity.measured import count_measured
from netscale.scaling.module import scale_module

VIT_SHAPE = (3, 36, 36)


def _arch(model: nn.Module) -> Any:
    return repr(model), [tuple(p.shape) for p in model.parameters()]


class _Net(nn.Module):
    def __init__(self, width: int, fail_forward: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.fc = nn.Linear(width, 10)
        self.fail_forward = fail_forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fail_forward:
            raise RuntimeError("shape mismatch in the head")
        out: torch.Tensor = self.fc(self.conv(x).mean((2, 3)))
        return out


def _forward_fails_when_wide(depth_mult: float = 1.0, width_mult: float = 1.0) -> _Net:
    width = max(1, round(16 * width_mult))
    return _Net(width, fail_forward=width > 20)


def _odd_widths_fail(depth_mult: float = 1.0, width_mult: float = 1.0) -> _Net:
    width = max(1, round(16 * width_mult))
    if width % 2:
        raise ValueError("width must be even")
    return _Net(width, fail_forward=False)


def test_a_factory_whose_forward_raises_is_blamed_not_the_rounding() -> None:
    r = scale_module(_forward_fails_when_wide, (3, 8, 8), 4, "w")
    assert not r.within_tolerance
    assert "failed in the factory" in r.note and "shape mismatch in the head" in r.note
    assert "running its forward" in r.note and "rounding" not in r.note


def test_build_failures_are_not_taken_for_too_many_flops() -> None:
    """Odd widths cannot be built, and the strategy's first guess (width 16·√2.5 ≈ 25) is
    one: the search looks beside it instead of giving up, and lands on width 40 (×2.5)."""
    r = scale_module(_odd_widths_fail, (3, 8, 8), 2.5, "w", tolerance=0.01)
    assert r.within_tolerance and r.note == ""
    assert _odd_widths_fail(**r.factory_kwargs()).conv.out_channels == 40


@pytest.mark.parametrize("factor", [2, 3, 5])
def test_printed_multipliers_rebuild_the_counted_network(factor: int) -> None:
    """The ViT factory's heads must divide its width: multipliers near a rounding boundary
    would print as a value that builds a neighbour. Printed with 3 or 4 significant digits
    (as netscale scale prints them), they build the counted network."""
    r = scale_module(factories.vit, VIT_SHAPE, factor, "dw", count_bias=False)
    counted = factories.vit(**r.factory_kwargs())
    for digits in (3, 4):
        printed: dict[str, Any] = {k: float(f"{v:.{digits}g}") if isinstance(v, float) else v
                   for k, v in r.factory_kwargs().items()}
        rebuilt = factories.vit(**printed)
        assert _arch(rebuilt) == _arch(counted), (digits, printed)
        rec = count_measured(rebuilt, r.input_shape, per_module=False, count_bias=False)
        assert rec.flops == r.counts.flops


def test_a_resolution_step_beyond_the_input_is_refused(run_cli: Any) -> None:
    code, out, err = run_cli("scale", "ResNet-20-CIFAR", "--factor", "2",
                             "--resolution-multiple", "100000")
    assert code == 2 and err.count("\n") == 1 and out == ""
    assert "--resolution-multiple 100000 is larger than the base's 32 px" in err
