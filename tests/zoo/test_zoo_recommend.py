"""``netscale recommend`` with a zoo base: candidates scaled through the family's adapter,
counted exactly, timed by building the zoo call, and printed with that call."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import timm
import torch
import torchvision

from netscale.advise.options import CandidateOptions, TimingOptions
from netscale.advise.recommend import recommend
from netscale.advise.records import Constraints
from netscale.advise.results_io import load_source
from netscale.advise.zoo_base import ZooBuild
from netscale.complexity.measured import count_measured
from netscale.errors import NetscaleError
from netscale.zoo import scale_zoo
from study_helpers import run_zoo_study

NS = {"timm": timm, "torchvision": torchvision, "torch": torch, "functools": functools}


def _fake_timer(seen: list[ZooBuild]) -> Any:
    """A timer that records what it is given and returns 1 ms per Mflop."""
    def timer(build: Any, batch: int | None, device: str | None) -> tuple[float, int, str]:
        assert isinstance(build, ZooBuild)
        seen.append(build)
        return build.counts[0] / 1e6, batch or 8, "cpu"
    return timer


def test_zoo_candidates_are_the_adapters_calls_counted_exactly() -> None:
    seen: list[ZooBuild] = []
    rec = recommend("timm:resnet10t", 2.0,
                    candidates=CandidateOptions(strategies=["d", "w", "dWr"], alphas=[]),
                    timing=TimingOptions(measure=True, measure_fn=_fake_timer(seen)))
    assert rec.base == "timm:resnet10t" and rec.ranking == "prior"
    assert rec.chosen.name == "dWr"  # the prior without trained results
    usable = [c for c in rec.candidates if c.usable]
    assert {c.name for c in usable} == {b.label.split()[-1] for b in seen}
    for c in usable:
        assert c.call is not None and c.call.startswith("timm.create_model('resnet10t'")
        assert c.spec is None and c.measured_ms == (c.flops or 0) / 1e6
        with torch.device("meta"):
            net = eval(c.call, dict(NS))  # the printed call rebuilds the counted network
        side = int(c.resolution or 0)
        r = count_measured(net, (3, side, side), per_module=False)
        assert (r.flops, r.params, r.acts) == (c.flops, c.params, c.acts)
    assert rec.chosen.call == scale_zoo("timm:resnet10t", 2.0, "dWr").call
    base = count_measured(timm.create_model("resnet10t").to("meta"), (3, 176, 176),
                          per_module=False)
    assert rec.base_flops == base.flops and rec.target_flops == 2 * base.flops


def test_static_constraints_exclude_zoo_candidates_in_one_line() -> None:
    try:
        recommend("torchvision:mobilenet_v3_small", "2x",
                  constraints=Constraints(max_params=1e5),
                  candidates=CandidateOptions(strategies=["w", "dWr"], alphas=[]),
                  timing=TimingOptions(measure=False))
    except NetscaleError as exc:
        msg = str(exc)
    else:
        raise AssertionError("max params 100k cannot be met")
    assert "\n" not in msg and "max params alone excludes every candidate" in msg


def test_cli_measures_zoo_candidates_and_prints_their_calls(run_cli) -> None:
    args = ("recommend", "torchvision:mobilenet_v3_small", "--target-flops", "2x",
            "--measure", "--budget", "0.05", "--batch-size", "1", "--strategies", "w,r,dWr",
            "--alphas", "")
    code, out, err = run_cli(*args, "--json")
    assert code == 0, err
    data = json.loads(out)
    cands = [c for c in data["candidates"] if c["feasible"]]
    assert {c["name"] for c in cands} == {"w", "r"}
    assert data["chosen"]["name"] in ("w", "r")
    # the adapter scales width and resolution only: a strategy that scales depth says so
    (dwr,) = [c for c in data["candidates"] if c["name"] == "dWr"]
    assert dwr["call"] is None and "does not scale depth" in dwr["verdict"]
    for c in cands:
        # the call `netscale scale` prints for the same strategy and factor
        assert c["call"] == scale_zoo("torchvision:mobilenet_v3_small", 2.0, c["name"]).call
        assert c["measured_ms"] > 0 and c["measured_source"] == "measured here on cpu"
        assert "[recommend] timed torchvision:mobilenet_v3_small " + c["name"] in err
    assert "batch 1" in data["runtime_basis"]
    code, text, err = run_cli(*args)
    assert code == 0, err
    chosen = data["chosen"]
    assert f"  build: {chosen['call']}  at {chosen['resolution']} px" in text
    for c in cands:
        assert f"  {c['name']}: {c['call']}  at {c['resolution']} px" in text


def test_zoo_base_refusals_are_one_line(run_cli, tmp_path) -> None:
    code, _, err = run_cli("recommend", "timm:resnet10t", "--target-flops", "2x",
                           "--no-measure", "--out", str(tmp_path / "x.yaml"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "zoo calls" in err
    assert not (tmp_path / "x.yaml").exists()
    code, _, err = run_cli("recommend", "timm:resnet5O", "--target-flops", "2x")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "resnet50" in err


def test_a_study_with_a_zoo_base_ranks_zoo_candidates(run_cli, tmp_path: Path) -> None:
    run_zoo_study(run_cli, tmp_path, "timm:resnet10t", ["w", "r"], [1, 2, 4])
    out = tmp_path / "out"
    trials = {(t.strategy, t.factor): t for t in load_source(out).trials}
    seen: list[ZooBuild] = []
    timing = TimingOptions(measure=True, measure_fn=_fake_timer(seen))
    only = CandidateOptions(strategies=["w", "r", "dWr"], alphas=[])
    # at a trained factor: the trained candidates are the study's networks, errors measured
    rec = recommend(str(out), 4.0, candidates=only, timing=timing)
    assert rec.mode == "study" and rec.ranking == "measured error"
    assert rec.base_flops == trials[("base", 1.0)].flops
    for name in ("w", "r"):
        (c,) = [c for c in rec.candidates if c.name == name]
        t = trials[(name, 4.0)]
        assert (c.flops, c.params) == (t.flops, t.params)
        assert c.error is not None and c.error.method == "measured"
        assert c.call is not None and "in_chans=1, num_classes=10" in c.call
    assert {b.in_channels for b in seen} == {1}
    # beyond the trained factors: the laws predict, only for trained strategies
    rec = recommend(str(out), 8.0, candidates=only, timing=timing)
    assert rec.ranking in ("predicted error", "prior")
    assert all(c.trained for c in rec.candidates if c.error is not None)
    (dwr,) = [c for c in rec.candidates if c.name == "dWr"]
    assert dwr.call is not None and dwr.error is None and dwr.measured_ms is not None
