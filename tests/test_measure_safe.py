"""count_measured() never harms the caller's model; factory calls in forward; user op counters."""

from __future__ import annotations

import torch
from torch import nn

import netscale.complexity as cx


class _MakesTensors(nn.Module):
    """A forward that creates tensors without a device (eye, arange, zeros)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.register_buffer("scale", torch.full((8,), 2.0))
        self.offset = torch.ones(8)  # a plain tensor attribute, not a buffer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        eye = torch.eye(8)                      # 8x8, no device given
        pos = torch.arange(8).float()           # no device given
        pad = torch.zeros(x.shape[0], 8)
        y = self.fc(x) * self.scale + pos + pad + self.offset
        return y @ eye                          # mm: 1*8*8 MACs


def test_measure_importable_from_complexity_package() -> None:
    from netscale.complexity import count_measured, register_op_counter  # noqa: F401

    assert cx.count_measured.__module__ == "netscale.complexity.measured"


def test_measure_leaves_weights_device_and_mode_unchanged() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Flatten(), nn.Linear(8 * 6 * 6, 4))
    model.train()
    model[4].weight.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rec = cx.count_measured(model, (3, 6, 6), backward=True)
    after = model.state_dict()
    assert before.keys() == after.keys()
    for k, v in before.items():
        assert after[k].device.type == "cpu", k
        assert torch.equal(after[k], v), k
    assert model.training and all(m.training for m in model.modules())
    assert model[4].weight.requires_grad is False and model[0].weight.requires_grad is True
    assert all(p.grad is None for p in model.parameters())
    # conv 8*36*27 + bias 8*36; linear 288*4 + 4
    assert rec.flops == 8 * 36 * 27 + 8 * 36 + 288 * 4 + 4
    assert rec.params == sum(p.numel() for p in model.parameters())
    # the model still runs on real data with its weights
    assert model(torch.randn(2, 3, 6, 6)).shape == (2, 4)


def test_forward_that_creates_tensors_is_counted() -> None:
    model = _MakesTensors()
    rec = cx.count_measured(model, (8,))
    # linear 8*8 (+8 bias) and the mm with eye 8*8
    assert rec.flops == 64 + 8 + 64
    assert rec.acts == 8 + 8
    assert torch.equal(model.scale, torch.full((8,), 2.0))
    assert model.offset.device.type == "cpu" and torch.equal(model.offset, torch.ones(8))
    assert model.fc.weight.device.type == "cpu"


class _Softmaxer(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x, dim=-1).cumsum(-1)


def test_uncounted_ops_listed_with_call_counts() -> None:
    rec = cx.count_measured(_Softmaxer(), (5, 7))
    assert rec.uncounted == {"aten._softmax": 1, "aten.cumsum": 1}
    assert rec.to_dict()["uncounted_ops"] == {"aten._softmax": 1, "aten.cumsum": 1}


def test_user_registered_counter_is_used() -> None:
    def softmax_counter(args, kwargs, out):  # type: ignore[no-untyped-def]
        return 3 * out.numel(), out.numel()

    cx.register_op_counter("aten::_softmax", softmax_counter)
    try:
        assert "aten._softmax" in cx.registered_op_counters()
        rec = cx.count_measured(_Softmaxer(), (5, 7))
        assert rec.flops == 3 * 35 and rec.acts == 35
        assert rec.uncounted == {"aten.cumsum": 1}
        # an op object works too, and an int return means flops only
        cx.register_op_counter(torch.ops.aten.cumsum, lambda a, k, o: 0)
        rec = cx.count_measured(_Softmaxer(), (5, 7))
        assert rec.uncounted == {} and rec.flops == 105
    finally:
        cx.unregister_op_counter("aten::_softmax")
        cx.unregister_op_counter(torch.ops.aten.cumsum.default)
    rec = cx.count_measured(_Softmaxer(), (5, 7))
    assert rec.uncounted == {"aten._softmax": 1, "aten.cumsum": 1}


def test_meta_model_is_used_in_place_and_restored() -> None:
    with torch.device("meta"):
        model = nn.Linear(4, 3)
    model.train()
    rec = cx.count_measured(model, (4,), backward=True)
    assert rec.flops == 12 + 3 and rec.backward_flops is not None
    assert model.training and model.weight.is_meta
