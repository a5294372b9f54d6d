"""The zoo-wide counting benchmark on its fixed CI subset (benchmarks/zoo_counts.py --subset).

For a few dozen timm and torchvision architectures across families, netscale's measured count
succeeds and equals ``torch.utils.flop_counter.FlopCounterMode`` after the documented
conventions (2 flops per multiply-add, no bias additions; train mode, batch 2, math attention,
auxiliary heads detached). Runs in the zoo environment (timm, torchvision, fvcore).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("timm")
pytest.importorskip("torchvision")

import torch

from bench_scripts import load_benchmark

zc = load_benchmark("zoo_counts")


def _meta_row(model_id: str) -> dict[str, Any]:
    row: dict[str, Any] = {}
    zc.phase_meta(model_id, row.update)
    return row


@pytest.mark.parametrize("model_id", zc.SUBSET)
def test_count_equals_flop_counter_after_conventions(model_id: str) -> None:
    row = _meta_row(model_id)
    assert row["status"] == "ok", row.get("error")
    assert "ref_error" not in row, row["ref_error"]
    assert row["flops_diff_by_op"] == {}
    assert row["flops_equal"] is True
    assert 2 * sum(row["ns_b2_nobias_by_op"].values()) == row["ref_flops_b2"] > 0
    # the public count (batch 1, biases counted) is at least the bias-free half of batch 2
    assert row["flops"] >= sum(row["ns_b2_nobias_by_op"].values()) // 2


@pytest.mark.parametrize("model_id", ["timm:resnet18", "timm:vit_tiny_patch16_224",
                                      "torchvision:googlenet"])
def test_the_reference_on_meta_equals_the_reference_on_real_tensors(model_id: str) -> None:
    """FlopCounterMode counts from shapes: the sweep runs it on meta, a CPU run agrees."""
    torch.manual_seed(0)
    meta_model, shape = zc.build(model_id, "meta")
    cpu_model, _ = zc.build(model_id, "cpu")
    zc.drop_aux_heads(meta_model)
    zc.drop_aux_heads(cpu_model)
    on_meta = zc.reference_flops(meta_model, shape, 2, "meta")
    on_cpu = zc.reference_flops(cpu_model, shape, 2, "cpu")
    assert on_meta == on_cpu
    assert on_meta[0] > 0


def test_aux_heads_are_what_train_mode_adds() -> None:
    """Without detaching them, GoogLeNet's train-mode reference exceeds the eval count by the
    auxiliary classifiers' convolutions and linear layers, and only by those."""
    model, shape = zc.build("torchvision:googlenet", "meta")
    with_aux, _ = zc.reference_flops(model, shape, 2, "meta")
    zc.drop_aux_heads(model)
    without, _ = zc.reference_flops(model, shape, 2, "meta")
    model2, _ = zc.build("torchvision:googlenet", "meta")
    aux = model2.aux1.train(), model2.aux2.train()
    aux_flops = 0
    from torch.utils.flop_counter import FlopCounterMode

    for head, channels in zip(aux, (512, 528)):
        with torch.device("meta"), FlopCounterMode(display=False) as counter:
            head(torch.empty(2, channels, 14, 14, device="meta"))
        aux_flops += counter.get_total_flops()
    assert with_aux - without == aux_flops > 0


def _sleeper(model_id: str, send: Any) -> None:
    send({"started": model_id})
    time.sleep(60)


def _crasher(model_id: str, send: Any) -> None:
    import os

    send({"started": model_id})
    os._exit(3)


def test_a_hang_or_a_crash_is_recorded_and_the_sweep_goes_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(zc.PHASES, "sleep", _sleeper)
    monkeypatch.setitem(zc.PHASES, "crash", _crasher)
    hung = zc.run_one("sleep", "timm:x", timeout=1.0)
    assert hung["started"] == "timm:x" and hung["timeout"] == 1.0
    crashed = zc.run_one("crash", "timm:y", timeout=30.0)
    assert crashed["started"] == "timm:y" and crashed["exitcode"] == 3
    assert "timeout" not in crashed


def test_report_counts_what_the_rows_say(tmp_path: Path) -> None:
    rows = [
        {"id": "timm:a", "phase": "meta", "status": "ok", "family": "timm:f", "count_s": 0.1,
         "ref_s": 0.2, "flops_equal": True, "flops_diff_by_op": {}, "uncounted": {"aten.x": 2}},
        {"id": "timm:b", "phase": "meta", "status": "ok", "family": "timm:f", "count_s": 0.3,
         "ref_s": 0.4, "flops_equal": False, "flops_diff_by_op": {"aten.mm": 8},
         "uncounted": {}},
        {"id": "torchvision:c", "phase": "meta", "status": "error", "error": "E: no"},
        {"id": "timm:d", "phase": "meta", "timeout": 5.0},
    ]
    path = tmp_path / "r.jsonl"
    path.write_text("".join(f"{__import__('json').dumps(r)}\n" for r in rows) + "{cut")
    text = zc.report(path)
    assert "Models swept: 4 (timm 3, torchvision 1)" in text
    assert "counted: 2/4 (50.0 %); one-line error: 1/4 (25.0 %)" in text
    assert "time limit hit: 1" in text
    assert "equal after conventions: 1/2 (50.0 %)" in text
    assert "| timm:f | 1 | aten.mm | b |" in text
    assert "| aten.x | 1 | 2 |" in text
