"""The measured counter's shortcuts (output-shape memo, in-place activations, batch-norm)
give exactly what the meta kernels give, and never hide an error the kernels would raise."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from netscale.complexity import measured
from netscale.complexity.measured import _CountingMode, count_measured


def _meta(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(shape, device="meta", dtype=dtype)


def _calls() -> list[tuple[str, object]]:
    """Calls whose outputs the memo must reproduce (run twice each: kernel, then replay)."""
    x = _meta(2, 3, 5, 5)
    w = _meta(4, 3, 3, 3)
    cl = _meta(2, 3, 5, 5).to(memory_format=torch.channels_last)
    bn = (_meta(3), _meta(3), _meta(3), _meta(3))
    return [
        ("arange int", lambda: torch.arange(4)),
        ("arange float", lambda: torch.arange(4.0)),
        ("arange bool-like", lambda: torch.full((2,), True)),
        ("zeros", lambda: torch.zeros(3, 2)),
        ("conv", lambda: torch.conv2d(x, w, padding=1, stride=2)),
        ("conv channels_last", lambda: torch.conv2d(cl, w, padding=1)),
        ("add broadcast", lambda: x + _meta(3, 1, 1)),
        ("add int + float scalar", lambda: _meta(3, dtype=torch.int64) + 0.5),
        ("mul same", lambda: x * x),
        ("relu", lambda: torch.relu(cl)),
        ("relu_", lambda: torch.relu_(_meta(2, 3))),
        ("unsqueeze_", lambda: _meta(2, 3).unsqueeze_(0)),
        ("resize_", lambda: _meta(0).resize_(6)),
        ("batch_norm", lambda: torch.batch_norm(cl, *bn, False, 0.1, 1e-5, False)),
        ("mean", lambda: x.mean((2, 3), keepdim=True)),
    ]


def _meta_of(out: object) -> object:
    if isinstance(out, torch.Tensor):
        return (tuple(out.shape), out.stride(), out.dtype, out.device.type)
    if isinstance(out, (tuple, list)):
        return tuple(_meta_of(o) for o in out)
    return out


@pytest.mark.parametrize("name", [n for n, _ in _calls()])
def test_replayed_outputs_match_the_kernels(name: str) -> None:
    fn = dict(_calls())[name]
    with torch.device("meta"):
        want = _meta_of(fn())  # no counting mode: the meta kernels themselves
    measured._MEMO.clear()
    for _ in range(3):  # first call runs the kernel and records; the others replay
        with torch.device("meta"), _CountingMode(True, []):
            got = _meta_of(fn())
        assert got == want, name


def test_default_dtype_is_part_of_the_signature() -> None:
    measured._MEMO.clear()
    old = torch.get_default_dtype()
    try:
        with torch.device("meta"), _CountingMode(True, []):
            assert torch.zeros(2).dtype == torch.float32
        torch.set_default_dtype(torch.float64)
        with torch.device("meta"), _CountingMode(True, []):
            assert torch.zeros(2).dtype == torch.float64
    finally:
        torch.set_default_dtype(old)


def test_mismatched_batch_norm_still_raises() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(5))
    for _ in range(2):
        with pytest.raises(RuntimeError):
            count_measured(model, (3, 8, 8))


def test_counts_equal_with_and_without_the_memo() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(True),
                          nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(True),
                          nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(True),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    measured._MEMO.clear()
    first = count_measured(model, (3, 16, 16))
    again = count_measured(model, (3, 16, 16))
    assert first == again
    assert (first.flops, first.params, first.acts) == (
        3 * 8 * 9 * 256 + 8 * 256 + 2 * (8 * 8 * 9 * 256 + 8 * 256) + 8 * 10 + 10,
        (3 * 8 * 9 + 8) + 2 * (8 * 8 * 9 + 8) + 3 * 16 + 8 * 10 + 10,
        3 * 8 * 256 + 10,
    )


def test_equal_int_float_and_bool_arguments_are_different_signatures() -> None:
    measured._MEMO.clear()
    with torch.device("meta"), _CountingMode(True, []):
        assert torch.arange(4).dtype == torch.int64
        assert torch.arange(4.0).dtype == torch.float32
        assert torch.full((2,), 1).dtype == torch.int64
        assert torch.full((2,), True).dtype == torch.bool
