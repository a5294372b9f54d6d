"""The one duration formatter and the one device resolver (netscale.util)."""

from __future__ import annotations

import pytest
import torch

from netscale.errors import NetscaleError
from netscale.util.device import check_device, resolve_device
from netscale.util.fmt import duration


@pytest.mark.parametrize(("seconds", "text"), [
    (-3.0, "0s"), (0.0, "0s"), (44.6, "45s"), (59.4, "59s"), (65.0, "1m05s"),
    (3599.4, "59m59s"), (3599.6, "1h00m"), (3725.0, "1h02m"), (86400.0, "24h00m"),
])
def test_duration_states_units(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_device_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device(None) == "cpu" and resolve_device("auto") == "cpu"
    assert resolve_device(" CPU ") == "cpu"
    assert check_device(None) is None and check_device("auto") == "auto"
    with pytest.raises(NetscaleError, match=r"--gpu cuda:1 requested but CUDA is not available"):
        check_device("cuda:1", "--gpu")
    for bad in ("tpu", "cuda:x", ""):
        with pytest.raises(NetscaleError, match="unknown device"):
            resolve_device(bad)


def test_device_kinds_limit_what_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    from netscale.bench.harness import resolve_device as bench_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device(None) == "cuda"
    assert resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(NetscaleError, match="this machine has 2 CUDA device"):
        resolve_device("cuda:2")
    with pytest.raises(NetscaleError, match="use cpu, cuda, cuda:N or auto"):
        bench_device("mps")  # the bench harness times CPU and CUDA only
    assert resolve_device(None, kinds=("cpu",)) == "cpu"
