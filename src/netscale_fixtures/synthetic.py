"""Synthetic studies: a real results store filled with errors drawn from known laws.

For tests, benchmarks and documentation examples of ``netscale fit`` / ``netscale
recommend`` without training anything. The models are real (the base is scaled with the real
scaler, exact rounding, and counted), only the outcomes are simulated:

* top-1 error of a model with f flops: err = c + (e0 − c)·(f / f_base)^(−b) with log-normal
  noise, with (b, c) per strategy (``truth``; e0 is the base model's error);
* inference time per batch: t = t0 + k_flops·flops + k_acts·acts (ms, times the batch size
  folded into the constants) with log-normal noise, so activations matter as on
  memory-bound hardware.

Nothing here is a measurement: every number written is marked synthetic in the study meta.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from netscale.scaling import BASE_STRATEGY
from netscale.study.store import STORE_NAME
from netscale.util import jsonio

DEFAULT_TRUTH: dict[str, tuple[float, float]] = {
    # strategy: (b, c) in err = c + (e0 − c)·s^(−b); compound scaling improves fastest
    "d": (0.30, 0.10), "w": (0.35, 0.09), "r": (0.25, 0.12), "dw": (0.40, 0.08),
    "dr": (0.40, 0.085), "wr": (0.42, 0.08), "dwr": (0.50, 0.07), "dWr": (0.48, 0.07),
}
DEFAULT_TIME = (0.5, 4e-8, 6e-7)  # t0 (ms), ms per flop, ms per activation


def synthetic_study(path: str | Path, *, base: Any = None,
                    strategies: Sequence[str] = ("d", "w", "r", "dwr", "dWr"),
                    factors: Sequence[float] = (1, 2, 4), seeds: Sequence[int] = (0,),
                    truth: Mapping[str, tuple[float, float]] | None = None,
                    e0: float = 0.30, noise: float = 0.02, time_noise: float = 0.02,
                    time_model: tuple[float, float, float] = DEFAULT_TIME,
                    batch_size: int = 32, device: str = "cpu", bench: bool = True,
                    train: bool = True, failed: Sequence[str] = (), pending: Sequence[str] = (),
                    epochs: int = 3, seed: int = 0, name: str = "synthetic") -> Path:
    """Writes ``path/results.sqlite`` for a simulated study; returns ``path``.

    ``failed``/``pending``: trial ids (``BASE|strategy|xS|seedN``) to leave failed or pending.
    ``train=False`` leaves every trial without an error (a benchmark-only study).
    """
    from netscale.scaling import parse_strategy, scale_report
    from netscale.study.quickstart import quickstart_base
    from netscale.study.store import Store

    spec = (base or quickstart_base()).validate()
    label = spec.name
    truth = {**DEFAULT_TRUTH, **(truth or {})}
    rng = np.random.default_rng(seed)
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    store = Store(out / STORE_NAME)
    config = {"name": name, "out": str(out), "bases": [label], "strategies": list(strategies),
              "factors": [float(f) for f in factors], "rounding": "exact",
              "seeds": list(seeds), "data": {"name": "synthetic"},
              "recipe": {"epochs": epochs}, "train": train,
              "bench": {"enabled": bench, "mode": "infer", "batch_size": batch_size,
                        "budget": 1.0}, "synthetic": True}
    store.set_meta({"config": jsonio.dumps(config), "name": name,
                    "data_info": jsonio.dumps({"num_classes": spec.num_classes,
                                             "in_channels": spec.in_channels})})
    base_flops = None
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    scaled: dict[tuple[str, float], Any] = {}  # one scaling per (strategy, factor), all seeds
    for sd in seeds:
        for st in strategies:
            strat = parse_strategy(st)
            for f in factors:
                sname = BASE_STRATEGY if f == 1 else strat.name
                tid = f"{label}|{sname}|x{f:g}|seed{sd}"
                if tid in seen:
                    continue
                seen.add(tid)
                if (sname, float(f)) not in scaled:
                    scaled[(sname, float(f))] = scale_report(
                        spec, float(f), strat, rounding="exact", name=f"{label}_x{f:g}_{sname}")
                r = scaled[(sname, float(f))]
                base_flops = r.base_counts.flops
                rows.append({"id": tid, "base": label, "strategy": sname, "factor": float(f),
                             "seed": sd, "spec": r.spec.to_dict(), "flops": r.counts.flops,
                             "params": r.counts.params, "acts": r.counts.acts,
                             "resolution": r.spec.resolution, "flops_factor": r.flops_factor,
                             "params_factor": r.params_factor, "acts_factor": r.acts_factor,
                             "within_tolerance": r.within_tolerance, "_strategy": strat.name})
    with store.batch():  # one transaction: 10,000 trials are written in seconds
        _simulate(store, rows, base_flops, truth=truth, rng=rng, e0=e0, noise=noise,
                  time_noise=time_noise, time_model=time_model, batch_size=batch_size,
                  device=device, bench=bench, train=train, failed=failed, pending=pending,
                  epochs=epochs)
    store.close()
    return out


def _simulate(store: Any, rows: list[dict[str, Any]], base_flops: float | None, *,
              truth: Mapping[str, tuple[float, float]], rng: Any, e0: float, noise: float,
              time_noise: float, time_model: tuple[float, float, float], batch_size: int,
              device: str, bench: bool, train: bool, failed: Sequence[str],
              pending: Sequence[str], epochs: int) -> None:
    """Adds the trials and runs each through the store's real life cycle (running, bench,
    epochs, done or failed), with simulated outcomes."""
    store.add_trials(rows)
    t0, kf, ka = time_model
    for row in rows:
        tid = row["id"]
        if tid in pending:
            continue
        store.mark_running(tid, worker="synthetic")
        if bench:
            t = (t0 + kf * row["flops"] + ka * row["acts"]) * math.exp(
                rng.normal(0.0, time_noise))
            store.record_bench(tid, [{
                "model": row["spec"]["name"], "mode": "infer", "device": device,
                "batch_size": batch_size, "requested_batch_size": batch_size,
                "resolution": row["resolution"], "flops": row["flops"],
                "params": row["params"], "acts": row["acts"], "status": "ok",
                "time_ms": t, "note": "synthetic"}], t)
        if tid in failed:
            store.mark_error(tid, "synthetic failure", retries=0)
            continue
        if not train:
            store.mark_done(tid, {"wall_time": 0.0})
            continue
        b, c = truth.get(row["_strategy"], (0.3, 0.1))
        s = row["flops"] / float(base_flops or row["flops"])
        err = (c + (e0 - c) * s ** (-b)) * math.exp(rng.normal(0.0, noise))
        for ep in range(1, epochs + 1):  # per-epoch curve ending at the final error
            store.record_epoch(tid, ep, {"epoch": ep, "top1_err": min(
                1.0, err * (1 + 0.5 * (epochs - ep) / epochs))})
        store.mark_done(tid, {"top1_err": float(min(err, 1.0)),
                              "top5_err": float(min(err, 1.0)) / 4, "wall_time": 1.0})
